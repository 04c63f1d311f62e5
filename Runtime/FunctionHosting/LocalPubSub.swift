import AsyncHTTPClient
import Foundation
import FunctionsFramework
import ImageAPICore
import Logging
import NIOCore
import NIOHTTP1
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

/// The emulator's Pub/Sub: delivers outbox messages to a push endpoint as binary-mode
/// CloudEvents (`google.cloud.pubsub.topic.v1.messagePublished`), as a Pub/Sub push subscription
/// through Eventarc does.
///
/// A 2xx answer acknowledges the message. Anything else, or no answer within the ack deadline,
/// schedules a retry after `base × 2^(attempt-1)`; after the last attempt the message moves to
/// the dead-letter table with the last error. Messages live in SQLite, so pending deliveries
/// survive a restart, and a delivery cut short by a crash is retried once its lease runs out.
public final class LocalPubSub: Service, Sendable {
    private let queue: any OutboxQueue
    private let settings: LocalPubSubSettings
    private let logger: Logger
    private let endpoint: Mutex<URL?>
    private let pollInterval: Duration = .milliseconds(50)
    private let batchSize = 4

    /// Creates the relay.
    /// - Parameters:
    ///   - queue: The outbox.
    ///   - settings: Endpoint, attempts, backoff.
    ///   - logger: Where deliveries are logged.
    public init(queue: any OutboxQueue, settings: LocalPubSubSettings, logger: Logger) {
        self.queue = queue
        self.settings = settings
        self.logger = logger
        self.endpoint = Mutex(settings.pushEndpoint.flatMap(URL.init(string:)))
    }

    /// The ProcessEmbedding route the emulator pushes to by default.
    public static let defaultPushPath = "/events/process-embedding"

    /// Sets the push endpoint once the server's port is known (when none was configured).
    public func pushToDefault(_ url: URL) {
        endpoint.withLock { if $0 == nil { $0 = url } }
    }

    /// Delivers until the service group shuts down.
    public func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        await withGracefulShutdownHandler {
            await deliverLoop(client)
        } onGracefulShutdown: {
        }
        try await client.shutdown()
    }

    private func deliverLoop(_ client: HTTPClient) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                guard let url = endpoint.withLock({ $0 }) else {
                    try await Task.sleep(for: pollInterval)
                    continue
                }
                let now = Date()
                let due = try await queue.nextDueDate()
                guard let due, due <= now else {
                    try await Task.sleep(for: pollInterval)
                    continue
                }
                let claimed = try await queue.claimDueMessages(
                    now: now, leaseUntil: now.addingTimeInterval(Double(settings.ackDeadlineSeconds) + 5),
                    limit: batchSize)
                await withTaskGroup(of: Void.self) { group in
                    for message in claimed {
                        group.addTask { await self.deliver(message, to: url, client: client) }
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                logger.error("Pub/Sub delivery loop failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func deliver(_ queued: QueuedMessage, to url: URL, client: HTTPClient) async {
        let message = queued.message
        var failure: String?
        do {
            var request = HTTPClientRequest(url: url.absoluteString)
            request.method = .POST
            for (name, value) in Self.headers(for: queued) { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: try Self.body(for: queued)))
            let response = try await client.execute(request, timeout: .seconds(Int64(settings.ackDeadlineSeconds)))
            let body = try await response.body.collect(upTo: 64 * 1024)
            if (200..<300).contains(response.status.code) {
                try await queue.acknowledge(messageID: message.messageID)
                logger.debug("Delivered", metadata: ["message_id": .string(message.messageID)])
                return
            }
            failure = "HTTP \(response.status.code): \(String(buffer: body).prefix(500))"
        } catch {
            failure = "\(error)"
        }
        let reason = failure ?? "unknown failure"
        do {
            if queued.attempts >= settings.maxDeliveryAttempts {
                try await queue.moveToDeadLetters(messageID: message.messageID, error: reason, at: Date())
                logger.error(
                    "Message dead-lettered",
                    metadata: [
                        "message_id": .string(message.messageID), "attempts": .stringConvertible(queued.attempts),
                        "error": .string(reason),
                    ])
            } else {
                let delay = Double(settings.retryBaseMilliseconds) / 1000 * pow(2, Double(queued.attempts - 1))
                try await queue.scheduleRetry(
                    messageID: message.messageID, error: reason, at: Date().addingTimeInterval(delay))
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
    static func headers(for queued: QueuedMessage) -> [(String, String)] {
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
    static func body(for queued: QueuedMessage) throws -> Data {
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
