import AsyncHTTPClient
import Foundation
import GoogleCloudAuth
import ImageAPICore
import Locking
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OutboundHTTP

/// The events port on a Pub/Sub topic (`EVENTS_BACKEND=pubsub`), through the REST API.
///
/// The outbox relay hands each committed outbox message here; ``publish(_:)`` returns once Pub/Sub
/// has acknowledged it (answered with its message id), and only then is the outbox entry marked
/// delivered, so a message is never lost between the two: at worst it is published twice, which
/// processing tolerates. The message's attributes go with it, and its image id is the ordering
/// key. On an emulator (`PUBSUB_EMULATOR_HOST`) the topic is created before the first publish
/// when it is missing, and ``createPushSubscription(named:endpoint:deadLetterTopic:maxDeliveryAttempts:)``
/// sets up delivery.
public final class PubSubPublisher: EventPublisher {
    /// The project.
    public let project: String
    /// The topic every processing message goes to.
    public let topic: String
    /// Where messages go that will not be processed: `PUBSUB_DEAD_LETTER_TOPIC`, by default the
    /// topic's name and `-dead-letter`.
    public let deadLetterTopic: String
    private let endpoint: String
    private let caller: ServiceCaller
    private let createsTopic: Bool
    private let topicCreation = Locked<Task<Void, any Error>?>(nil)

    /// Creates a publisher.
    /// - Parameters:
    ///   - endpoint: `https://pubsub.googleapis.com`, or an emulator's URL.
    ///   - project: `GOOGLE_CLOUD_PROJECT`.
    ///   - topic: `PUBSUB_TOPIC`.
    ///   - createsTopic: Whether to create the topic before the first publish (an emulator).
    ///   - client: The HTTP client.
    ///   - authorization: The `Authorization` header's value; `nil` sends none (an emulator).
    ///   - deadLetterTopic: Where messages go that will not be processed; `<topic>-dead-letter` by default.
    public init(
        endpoint: String, project: String, topic: String, createsTopic: Bool = false,
        deadLetterTopic: String? = nil, client: HTTPClient = ServiceCaller.client,
        authorization: @escaping @Sendable () async throws -> String? = { nil }
    ) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.project = project
        self.topic = topic
        self.deadLetterTopic = deadLetterTopic ?? "\(topic)-dead-letter"
        self.createsTopic = createsTopic
        self.caller = ServiceCaller(api: "Pub/Sub", client: client, authorization: authorization)
    }

    private init(_ other: PubSubPublisher, topic: String) {
        self.endpoint = other.endpoint
        self.project = other.project
        self.topic = topic
        self.deadLetterTopic = other.deadLetterTopic
        self.createsTopic = other.createsTopic
        self.caller = other.caller
    }

    /// A publisher to the dead-letter topic, with the same project, endpoint and credentials.
    public var deadLetterPublisher: PubSubPublisher { PubSubPublisher(self, topic: deadLetterTopic) }

    /// Always ready: the topic's address is known from the start.
    public var isReady: Bool { true }

    /// The publish call's deadline (``publishTimeout``), and as long again for creating the
    /// topic first where the publisher does.
    public var longestPublish: Duration? {
        .nanoseconds(Self.publishTimeout.nanoseconds * (createsTopic ? 2 : 1))
    }

    /// The deadline of one publish call, its retries included.
    static let publishTimeout: TimeAmount = .seconds(30)

    /// The topic's full name, `projects/<project>/topics/<topic>`.
    public var topicName: String { "projects/\(project)/topics/\(topic)" }

    /// Publishes one message and returns when Pub/Sub has taken it.
    /// - Throws: `ServiceCallError` when Pub/Sub did not answer with a message id.
    public func publish(_ queued: QueuedMessage) async throws {
        if createsTopic { try await ensureTopic() }
        let message = queued.message
        var attributes = message.attributes
        attributes["event_id"] = message.messageID
        struct Body: Encodable {
            struct Message: Encodable {
                let data: String
                let attributes: [String: String]
                let orderingKey: String?
            }
            let messages: [Message]
        }
        let body = Body(messages: [
            Body.Message(
                data: message.data.base64EncodedString(), attributes: attributes,
                orderingKey: message.attributes["image_id"])
        ])
        let operation = "publish \(message.messageID) to \(topicName)"
        let response = try await caller.send(
            .POST, "\(endpoint)/v1/\(topicName):publish", headers: Self.json,
            body: ByteBuffer(data: try JSONEncoder().encode(body)),
            operation: operation, idempotent: true, timeout: Self.publishTimeout)
        guard response.status == .ok else { throw await caller.failure(response, operation) }
        struct Answer: Decodable { let messageIds: [String] }
        let answer = try? JSONDecoder().decode(
            Answer.self, from: Data(buffer: try await response.body.collect(upTo: 1 << 16)))
        guard answer?.messageIds.count == 1 else {
            throw ServiceCallError(
                api: "Pub/Sub", operation: operation, status: 200, detail: "no message id in the answer")
        }
    }

    /// Creates (when missing) the topic, a dead-letter topic and a push subscription that
    /// delivers to `endpoint`, with the dead-letter policy: what a local run on the Pub/Sub
    /// emulator needs before the first upload.
    /// - Parameters:
    ///   - name: The subscription's name.
    ///   - endpoint: The push endpoint (ProcessEmbedding's event route).
    ///   - deadLetterTopic: The dead-letter topic's name.
    ///   - maxDeliveryAttempts: Deliveries before a message is dead-lettered (Pub/Sub allows 5 to 100).
    public func createPushSubscription(
        named name: String, endpoint pushEndpoint: String, deadLetterTopic: String, maxDeliveryAttempts: Int
    ) async throws {
        try await createTopic(topic)
        try await createTopic(deadLetterTopic)
        let subscription: [String: Any] = [
            "topic": topicName,
            "pushConfig": ["pushEndpoint": pushEndpoint],
            "ackDeadlineSeconds": 60,
            "enableMessageOrdering": true,
            "deadLetterPolicy": [
                "deadLetterTopic": "projects/\(project)/topics/\(deadLetterTopic)",
                "maxDeliveryAttempts": max(5, min(100, maxDeliveryAttempts)),
            ],
            "retryPolicy": ["minimumBackoff": "1s", "maximumBackoff": "60s"],
        ]
        let operation = "create subscription \(name)"
        let response = try await caller.send(
            .PUT, "\(endpoint)/v1/projects/\(project)/subscriptions/\(ServiceCaller.escaped(name))",
            headers: Self.json,
            body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: subscription)), operation: operation,
            idempotent: true)
        guard response.status == .ok || response.status == .conflict else {
            throw await caller.failure(response, operation)
        }
    }

    private func ensureTopic() async throws {
        let task = topicCreation.withLock { creation in
            if let creation { return creation }
            let made = Task { try await self.createTopic(self.topic) }
            creation = made
            return made
        }
        do {
            try await task.value
        } catch {
            topicCreation.withLock { $0 = nil }
            throw error
        }
    }

    private func createTopic(_ name: String) async throws {
        let operation = "create topic \(name)"
        let response = try await caller.send(
            .PUT, "\(endpoint)/v1/projects/\(project)/topics/\(ServiceCaller.escaped(name))", operation: operation,
            idempotent: true)
        guard response.status == .ok || response.status == .conflict else {
            throw await caller.failure(response, operation)
        }
    }

    private static let json: HTTPHeaders = ["Content-Type": "application/json"]
}
