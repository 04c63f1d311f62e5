import AsyncHTTPClient
import Foundation
import FunctionsFramework
import ImageAPICore
import Locking
import Logging
import NIOCore
import ServiceLifecycle

/// Settings of the local Pub/Sub that delivers the outbox.
public struct LocalPubSubSettings: Sendable {
    /// `PUBSUB_PUSH_ENDPOINT`: where messages are pushed; several URLs, separated by commas,
    /// take the deliveries in turn (replicas of ProcessEmbedding). The emulator pushes to its own
    /// ProcessEmbedding route when this is unset; a standalone function delivers nothing then.
    public var pushEndpoints: [String]
    /// `PUBSUB_MAX_DELIVERY_ATTEMPTS`: deliveries before a message is dead-lettered (default 3).
    public var maxDeliveryAttempts: Int
    /// `PUBSUB_RETRY_BASE_MS`: the first retry's delay; each next one doubles (default 1000).
    public var retryBaseMilliseconds: Int
    /// `PUBSUB_ACK_DEADLINE_SECONDS`: how long a delivery may take before it counts as failed and
    /// the message is offered again (default 120).
    public var ackDeadlineSeconds: Int

    /// Creates settings.
    public init(
        pushEndpoints: [String] = [], maxDeliveryAttempts: Int = 3, retryBaseMilliseconds: Int = 1000,
        ackDeadlineSeconds: Int = 120
    ) {
        self.pushEndpoints = pushEndpoints
        self.maxDeliveryAttempts = maxDeliveryAttempts
        self.retryBaseMilliseconds = retryBaseMilliseconds
        self.ackDeadlineSeconds = ackDeadlineSeconds
    }

    /// Reads the settings from the environment.
    public init(_ variables: EnvironmentVariables) throws {
        let endpoints = try variables.list("PUBSUB_PUSH_ENDPOINT")
        if endpoints.contains(where: { URL(string: $0)?.scheme?.hasPrefix("http") != true }) {
            throw ConfigurationError(
                variable: "PUBSUB_PUSH_ENDPOINT", reason: "must be an http(s) URL, or several separated by commas")
        }
        self.init(
            pushEndpoints: endpoints,
            maxDeliveryAttempts: try variables.integer("PUBSUB_MAX_DELIVERY_ATTEMPTS", default: 3, in: 1...100),
            retryBaseMilliseconds: try variables.integer("PUBSUB_RETRY_BASE_MS", default: 1000, in: 1...3_600_000),
            ackDeadlineSeconds: try variables.integer("PUBSUB_ACK_DEADLINE_SECONDS", default: 120, in: 1...3600))
    }
}

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
    /// The ProcessEmbedding route the emulator pushes to by default.
    public static let defaultPushPath = "/events/process-embedding"

    private let transport: any PushTransport

    /// Creates the publisher.
    /// - Parameter transport: Where deliveries go.
    public init(transport: any PushTransport) {
        self.transport = transport
    }

    /// Whether the endpoint is known.
    public var isReady: Bool { transport.isReady }

    /// Pushes the message and checks the answer.
    public func publish(_ queued: QueuedMessage) async throws {
        let answer = try await transport.push(headers: Self.headers(for: queued), body: try Self.body(for: queued))
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

/// Where a process's local Pub/Sub pushes when `PUBSUB_PUSH_ENDPOINT` is not set, and the token
/// it presents there: given by a host that serves the event route itself (the emulator, whose
/// target makes it); the function binaries have none.
public struct LocalDeliveryTarget: Sendable {
    /// The token presented on each push (checked by the process's own event route), if any.
    public let token: String?
    /// The push URL, once the server's bound address is known.
    public let endpoint: @Sendable (_ host: String, _ port: Int) -> URL?

    /// Creates a target.
    /// - Parameters:
    ///   - token: The token presented on each push.
    ///   - endpoint: The push URL for the bound address.
    public init(token: String?, endpoint: @escaping @Sendable (_ host: String, _ port: Int) -> URL?) {
        self.token = token
        self.endpoint = endpoint
    }
}
