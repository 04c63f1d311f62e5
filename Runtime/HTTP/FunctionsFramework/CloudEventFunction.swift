import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// A function triggered by CloudEvents, such as Pub/Sub messages delivered by Eventarc or a push
/// subscription.
///
/// The runtime decodes the request (binary or structured mode, or a plain push body), refuses
/// unknown event types and malformed envelopes with 400, decodes the data to ``EventData`` and
/// calls ``handle(_:context:)``. Returning acknowledges the event (204); throwing answers 500 so
/// the sender delivers it again, unless the error is a ``FunctionError`` with its own status.
public protocol CloudEventFunction: Sendable {
    /// The type the event data decodes to.
    associatedtype EventData: Decodable & Sendable

    /// The service name, as deployed (`process-embedding`).
    var name: String { get }
    /// The path events are delivered to (`/` on Cloud Run).
    var eventPath: String { get }
    /// The event types this function accepts; any other type answers 400.
    var acceptedEventTypes: Set<String> { get }

    /// Handles one event.
    /// - Parameters:
    ///   - event: The event with its decoded data.
    ///   - context: The request context, whose logger is tagged with the event id.
    /// - Throws: Any error to have the event delivered again.
    func handle(_ event: CloudEvent<EventData>, context: FunctionContext) async throws

    /// Handles a delivery whose envelope, event type or data cannot be read. The default refuses
    /// it (400 with the reason). A function behind a Pub/Sub push subscription keeps it instead
    /// (as a dead letter, say) and returns, so that the delivery is acknowledged: Pub/Sub delivers
    /// every answer but 2xx again, for days, and a redelivery cannot make it readable.
    /// - Parameters:
    ///   - body: The request body as it came.
    ///   - reason: Why it cannot be read.
    ///   - context: The request context.
    /// - Throws: ``FunctionError`` to answer with it instead of 204.
    func handleUnreadable(body: Data, reason: String, context: FunctionContext) async throws
}

extension CloudEventFunction {
    /// Refuses the delivery with 400 and the reason.
    public func handleUnreadable(body: Data, reason: String, context: FunctionContext) async throws {
        throw FunctionError.badRequest(reason)
    }
}

/// A function that receives events, whose route must be closed to strangers in production.
public protocol EventRoute {
    /// Who may deliver events; `nil` accepts any caller.
    var authenticator: (any EventAuthenticator)? { get }
}

/// Serves a ``CloudEventFunction`` as an ``HTTPFunction`` at its event path.
public struct CloudEventEndpoint<Function: CloudEventFunction>: HTTPFunction, EventRoute {
    /// The wrapped function.
    public let function: Function
    /// Who may deliver events; `nil` accepts any caller (development, tests).
    public let authenticator: (any EventAuthenticator)?

    /// Wraps a CloudEvent function.
    /// - Parameters:
    ///   - function: The function.
    ///   - authenticator: Who may deliver events; `nil` accepts any caller.
    public init(_ function: Function, authenticator: (any EventAuthenticator)? = nil) {
        self.function = function
        self.authenticator = authenticator
    }

    /// The wrapped function's name.
    public var name: String { function.name }

    /// Registers `POST` at the function's event path.
    /// - Parameter routes: The route table.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let function = self.function
        let authenticator = self.authenticator
        routes.on(.post, function.eventPath) { call -> NoContent in
            if let authenticator { try await authenticator.authenticate(EventCaller(call)) }
            let body = Data(try await call.request.body.collect(upTo: call.context.maxUploadSize).readableBytesView)
            let event: CloudEvent<Function.EventData>
            do {
                event = try Self.decodeEvent(headers: call.headers, body: body, accepting: function.acceptedEventTypes)
            } catch let refusal as FunctionError where refusal.status == .badRequest {
                try await function.handleUnreadable(body: body, reason: refusal.detail, context: call.context)
                return NoContent()
            }
            var context = call.context
            context.logger[metadataKey: "event.id"] = .string(event.id)
            context.logger[metadataKey: "event.type"] = .string(event.type)
            try await function.handle(event, context: context)
            return NoContent()
        }
    }

    /// Decodes and checks an event: its envelope, its type, then its data.
    /// - Parameters:
    ///   - headers: The request headers.
    ///   - body: The request body.
    ///   - accepting: The accepted event types.
    /// - Returns: The typed event.
    /// - Throws: ``FunctionError`` 400 with the reason the event was refused.
    public static func decodeEvent(
        headers: HTTPFields, body: Data, accepting: Set<String>
    ) throws -> CloudEvent<Function.EventData> {
        let raw: CloudEvent<Data>
        do {
            raw = try CloudEventHTTPDecoder.decode(headers: headers, body: body)
        } catch let error as CloudEventDecodingError {
            throw FunctionError.badRequest(error.reason)
        }
        guard accepting.contains(raw.type) else {
            let known = accepting.sorted().joined(separator: ", ")
            throw FunctionError.badRequest("unsupported event type '\(raw.type)' (accepted: \(known))")
        }
        do {
            let data = try JSONCoding.makeDecoder().decode(Function.EventData.self, from: raw.data)
            return raw.withData(data)
        } catch let error as DecodingError {
            throw FunctionError.badRequest("event data is malformed: \(Self.describe(error))")
        } catch {
            throw FunctionError.badRequest("event data is malformed: \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        let issue = ValidationError.fromDecoding(error).issues[0]
        let location = issue.loc.dropFirst().joined(separator: ".")
        return location.isEmpty ? issue.msg : "\(location): \(issue.msg)"
    }
}
