import AsyncHTTPClient
import Foundation
import FunctionsFramework
import ImageAPICore
import Locking
import NIOCore

// The local push subscription: the events port delivered by HTTP pushes in Pub/Sub's push format,
// as binary CloudEvents, for runs without Google Pub/Sub (the emulator, make run-distributed).

/// A push subscription's endpoint: where the local Pub/Sub sends each delivery.
public protocol PushTransport: Sendable {
    /// Whether deliveries can be sent yet (the emulator learns its own port only once listening).
    var isReady: Bool { get }
    /// Sends one delivery.
    /// - Returns: The HTTP status and (the start of) the body of the answer.
    /// - Throws: When no answer came (connection refused, timeout).
    func push(headers: [(String, String)], body: Data) async throws -> (status: Int, body: String)
}

/// Pushes over HTTP with AsyncHTTPClient, to a configured URL or, in the emulator, to the
/// process's own ProcessEmbedding route once its port is known.
public final class HTTPPushTransport: PushTransport {
    /// The push URLs, and how many deliveries were sent (which URL is next).
    private let endpoints: Locked<(urls: [URL], sent: Int)>
    private let timeout: TimeAmount
    private let bearerToken: String?

    /// Creates the transport.
    /// - Parameters:
    ///   - endpoints: The push URLs, taking deliveries in turn; none until ``useIfUnset(_:)``.
    ///   - timeout: How long a delivery may take.
    ///   - bearerToken: The push token sent as `Authorization: Bearer`, if any.
    public init(endpoints: [URL], timeout: TimeAmount, bearerToken: String? = nil) {
        self.endpoints = Locked((endpoints, 0))
        self.timeout = timeout
        self.bearerToken = bearerToken
    }

    /// Sets the endpoint when none was configured.
    public func useIfUnset(_ url: URL) {
        endpoints.withLock { if $0.urls.isEmpty { $0.urls = [url] } }
    }

    /// Whether an endpoint is known.
    public var isReady: Bool { endpoints.withLock { !$0.urls.isEmpty } }

    /// POSTs the delivery to the next endpoint in turn.
    public func push(headers: [(String, String)], body: Data) async throws -> (status: Int, body: String) {
        let next = endpoints.withLock { state -> URL? in
            guard !state.urls.isEmpty else { return nil }
            defer { state.sent &+= 1 }
            return state.urls[state.sent % state.urls.count]
        }
        guard let url = next else { throw PushError("no push endpoint yet") }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let bearerToken { request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(bearerToken)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let answer = try await response.body.collect(upTo: 64 * 1024)
        return (Int(response.status.code), String(buffer: answer))
    }
}

/// A delivery that could not be sent.
public struct PushError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    /// Creates the error.
    public init(_ description: String) { self.description = description }
}

/// The local push subscription: delivers each message to a push endpoint as a binary-mode
/// CloudEvent (`google.cloud.pubsub.topic.v1.messagePublished`), as a Pub/Sub push subscription
/// through Eventarc does. A 2xx answer means the message was taken; anything else, or no answer,
/// is an error, so the relay retries it.
public struct LocalPushPublisher: EventPublisher {
    private let transport: any PushTransport

    /// Creates the publisher.
    /// - Parameter transport: Where deliveries go.
    public init(transport: any PushTransport) {
        self.transport = transport
    }

    /// Whether the endpoint is known.
    public var isReady: Bool { transport.isReady }

    /// Pushes the message and checks the answer: 429 and 503 (the handler could not reach a
    /// dependency, such as its metadata store) are the domain's `unavailable`, so that the relay
    /// keeps the message through the outage instead of spending its delivery attempts.
    public func publish(_ queued: QueuedMessage) async throws {
        let answer = try await transport.push(headers: Self.headers(for: queued), body: try Self.body(for: queued))
        if answer.status == 429 || answer.status == 503 {
            throw DomainError(
                .unavailable, "The push endpoint is unavailable: HTTP \(answer.status): \(answer.body.prefix(500))")
        }
        guard (200..<300).contains(answer.status) else {
            throw PushError("HTTP \(answer.status): \(answer.body.prefix(500))")
        }
    }

    /// The binary-mode CloudEvent headers Eventarc sends with a Pub/Sub message.
    public static func headers(for queued: QueuedMessage) -> [(String, String)] {
        [
            ("content-type", "application/json"),
            ("ce-specversion", "1.0"),
            ("ce-id", queued.message.messageID),
            ("ce-type", PubSubMessagePublished.eventType),
            ("ce-source", "//pubsub.googleapis.com/projects/local/topics/\(queued.message.topic)"),
            ("ce-time", JSONCoding.timestamp(queued.publishedAt)),
        ]
    }

    /// The Pub/Sub push body: the message with base64 data, plus subscription and attempt.
    public static func body(for queued: QueuedMessage) throws -> Data {
        let message = queued.message
        let payload: [String: JSONValue] = [
            "message": [
                "data": .string(message.data.base64EncodedString()),
                "attributes": .object(message.attributes.mapValues(JSONValue.string)),
                "messageId": .string(message.messageID),
                "publishTime": .string(JSONCoding.timestamp(queued.publishedAt)),
            ],
            "subscription": .string("projects/local/subscriptions/\(message.topic)-push"),
            "deliveryAttempt": .number(queued.attempts),
        ]
        return try JSONCoding.makeEncoder().encode(JSONValue.object(payload))
    }
}

/// Builds the local push subscription for a host: the publisher the outbox relay publishes
/// through, and how the host tells it the process's own push URL once it listens.
public enum LocalPushFactory {
    /// The ProcessEmbedding route the emulator pushes to by default.
    public static let defaultPushPath = "/events/process-embedding"

    /// The local push subscription.
    /// - Parameters:
    ///   - endpoints: The push URLs (`PUBSUB_PUSH_ENDPOINT`), taking deliveries in turn; none
    ///     until `useEndpointIfUnset` gives one.
    ///   - timeout: How long a delivery may take (the ack deadline).
    ///   - bearerToken: The push token sent as `Authorization: Bearer`, if any.
    /// - Returns: The publisher, and a function that sets the endpoint when none was configured.
    public static func build(
        endpoints: [URL], timeout: TimeAmount, bearerToken: String?
    ) -> (publisher: any EventPublisher, useEndpointIfUnset: @Sendable (URL) -> Void) {
        let transport = HTTPPushTransport(endpoints: endpoints, timeout: timeout, bearerToken: bearerToken)
        return (LocalPushPublisher(transport: transport), { transport.useIfUnset($0) })
    }
}
