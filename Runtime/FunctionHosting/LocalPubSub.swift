import AsyncHTTPClient
import Foundation
import FunctionsFramework
import ImageAPICore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Settings of the local Pub/Sub that delivers the outbox.
public struct LocalPubSubSettings: Sendable {
    /// `PUBSUB_PUSH_ENDPOINT`: where messages are pushed. The emulator pushes to its own
    /// ProcessEmbedding route when this is unset; a standalone function delivers nothing then.
    public var pushEndpoint: String?
    /// `PUBSUB_MAX_DELIVERY_ATTEMPTS`: deliveries before a message is dead-lettered (default 3).
    public var maxDeliveryAttempts: Int
    /// `PUBSUB_RETRY_BASE_MS`: the first retry's delay; each next one doubles (default 1000).
    public var retryBaseMilliseconds: Int
    /// `PUBSUB_ACK_DEADLINE_SECONDS`: how long a delivery may take before it counts as failed and
    /// the message is offered again (default 120).
    public var ackDeadlineSeconds: Int

    /// Creates settings.
    public init(
        pushEndpoint: String? = nil, maxDeliveryAttempts: Int = 3, retryBaseMilliseconds: Int = 1000,
        ackDeadlineSeconds: Int = 120
    ) {
        self.pushEndpoint = pushEndpoint
        self.maxDeliveryAttempts = maxDeliveryAttempts
        self.retryBaseMilliseconds = retryBaseMilliseconds
        self.ackDeadlineSeconds = ackDeadlineSeconds
    }

    /// Reads the settings from the environment.
    public init(_ variables: EnvironmentVariables) throws {
        let endpoint = variables["PUBSUB_PUSH_ENDPOINT"]
        if let endpoint, URL(string: endpoint)?.scheme?.hasPrefix("http") != true {
            throw ConfigurationError(variable: "PUBSUB_PUSH_ENDPOINT", reason: "must be an http(s) URL")
        }
        self.init(
            pushEndpoint: endpoint,
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
    private let endpoint: Mutex<URL?>
    private let timeout: TimeAmount
    private let bearerToken: String?

    /// Creates the transport.
    /// - Parameters:
    ///   - endpoint: The push URL, if configured.
    ///   - timeout: How long a delivery may take.
    ///   - bearerToken: The push token sent as `Authorization: Bearer`, if any.
    public init(endpoint: URL?, timeout: TimeAmount, bearerToken: String? = nil) {
        self.endpoint = Mutex(endpoint)
        self.timeout = timeout
        self.bearerToken = bearerToken
    }

    /// Sets the endpoint when none was configured.
    public func useIfUnset(_ url: URL) {
        endpoint.withLock { if $0 == nil { $0 = url } }
    }

    /// Whether an endpoint is known.
    public var isReady: Bool { endpoint.withLock { $0 != nil } }

    /// POSTs the delivery.
    public func push(headers: [(String, String)], body: Data) async throws -> (status: Int, body: String) {
        guard let url = endpoint.withLock({ $0 }) else { throw PushError("no push endpoint yet") }
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

/// The emulator's Pub/Sub: delivers outbox messages to a push endpoint as binary-mode
/// CloudEvents (`google.cloud.pubsub.topic.v1.messagePublished`), as a Pub/Sub push subscription
/// through Eventarc does.
///
/// A 2xx answer acknowledges the message. Anything else, or no answer within the ack deadline,
/// schedules a retry after `base × 2^(attempt-1)`; after the last attempt the message moves to
/// the dead-letter table with the last error. Messages live in SQLite, so pending deliveries
/// survive a restart, and a delivery cut short by a crash is retried once its lease runs out.
public final class LocalPubSub: Service, Sendable {
    /// The ProcessEmbedding route the emulator pushes to by default.
    public static let defaultPushPath = "/events/process-embedding"

    private let queue: any OutboxQueue
    private let settings: LocalPubSubSettings
    private let transport: any PushTransport
    private let clock: any TimeSource
    private let logger: Logger
    private let pollInterval: Duration = .milliseconds(50)
    private let batchSize = 4

    /// Creates the relay.
    /// - Parameters:
    ///   - queue: The outbox.
    ///   - settings: Attempts, backoff and ack deadline.
    ///   - transport: Where deliveries go.
    ///   - clock: The time source for due dates and backoff.
    ///   - logger: Where deliveries are logged.
    public init(
        queue: any OutboxQueue, settings: LocalPubSubSettings, transport: any PushTransport,
        clock: any TimeSource = SystemTimeSource(), logger: Logger
    ) {
        self.queue = queue
        self.settings = settings
        self.transport = transport
        self.clock = clock
        self.logger = logger
    }

    /// Delivers until the service group shuts down.
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    if try await deliverDueMessages() == 0 { try await Task.sleep(for: pollInterval) }
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("Pub/Sub delivery loop failed", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        } onGracefulShutdown: {
        }
    }

    /// Claims the messages that are due and delivers them, concurrently.
    /// - Returns: How many deliveries were attempted.
    @discardableResult
    public func deliverDueMessages() async throws -> Int {
        guard transport.isReady else { return 0 }
        let now = clock.now()
        guard let due = try await queue.nextDueDate(), due <= now else { return 0 }
        let claimed = try await queue.claimDueMessages(
            now: now, leaseUntil: now.addingTimeInterval(Double(settings.ackDeadlineSeconds) + 5), limit: batchSize)
        await withTaskGroup(of: Void.self) { group in
            for message in claimed {
                group.addTask { await self.deliver(message) }
            }
        }
        return claimed.count
    }

    private func deliver(_ queued: QueuedMessage) async {
        let message = queued.message
        let reason: String
        do {
            let answer = try await transport.push(headers: Self.headers(for: queued), body: try Self.body(for: queued))
            if (200..<300).contains(answer.status) {
                try await queue.acknowledge(messageID: message.messageID)
                logger.debug("Delivered", metadata: ["message_id": .string(message.messageID)])
                return
            }
            reason = "HTTP \(answer.status): \(answer.body.prefix(500))"
        } catch {
            reason = "\(error)"
        }
        do {
            if queued.attempts >= settings.maxDeliveryAttempts {
                try await queue.moveToDeadLetters(messageID: message.messageID, error: reason, at: clock.now())
                logger.error(
                    "Message dead-lettered",
                    metadata: [
                        "message_id": .string(message.messageID), "attempts": .stringConvertible(queued.attempts),
                        "error": .string(reason),
                    ])
            } else {
                let delay = Double(settings.retryBaseMilliseconds) / 1000 * pow(2, Double(queued.attempts - 1))
                try await queue.scheduleRetry(
                    messageID: message.messageID, error: reason, at: clock.now().addingTimeInterval(delay))
                logger.warning(
                    "Delivery failed; will retry",
                    metadata: [
                        "message_id": .string(message.messageID), "attempt": .stringConvertible(queued.attempts),
                        "retry_in_seconds": .stringConvertible(delay), "error": .string(reason),
                    ])
            }
        } catch {
            logger.error("Could not record a failed delivery", metadata: ["error": "\(error)"])
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
