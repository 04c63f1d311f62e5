import Foundation
import ImageAPICore
import Logging

/// The dead letters with `EVENTS_BACKEND=pubsub`: each is kept in the metadata store (where the
/// admin endpoints list, replay and discard them) and then published to the dead-letter topic,
/// where whatever watches the subscription's dead letters sees it too.
///
/// ProcessEmbedding dead-letters a message itself on its last attempt (`PROCESSING_MAX_ATTEMPTS`,
/// 3 by default) because Pub/Sub's own dead-letter policy allows no fewer than 5 deliveries; the
/// subscription's policy stays as the backstop. A publish that fails is logged: the letter is
/// already kept.
public struct DeadLetterTopicForwarder: DeadLetterQueue {
    private let queue: any DeadLetterQueue
    private let topic: any EventPublisher
    private let logger: Logger

    /// Creates the forwarder.
    /// - Parameters:
    ///   - queue: Where letters are kept.
    ///   - topic: The dead-letter topic's publisher.
    ///   - logger: Where a failed publish is reported.
    public init(queue: any DeadLetterQueue, topic: any EventPublisher, logger: Logger) {
        self.queue = queue
        self.topic = topic
        self.logger = logger
    }

    /// Keeps the letter, then publishes its payload with `last_error`, `attempts` and `source` as
    /// attributes.
    public func deadLetter(_ letter: DeadLetter) async throws {
        try await queue.deadLetter(letter)
        let message = OutboxMessage(
            topic: letter.topic, messageID: letter.messageID, data: letter.data,
            attributes: [
                "last_error": String(letter.lastError.prefix(1024)), "attempts": String(letter.attempts),
                "source": letter.source,
            ])
        do {
            try await topic.publish(QueuedMessage(message: message, publishedAt: letter.deadAt, attempts: 1))
        } catch {
            logger.error(
                "Dead letter kept, but not published to the dead-letter topic",
                metadata: ["message_id": .string(letter.messageID), "error": "\(error)"])
        }
    }

    /// A page of one team's kept letters.
    public func deadLetters(teamID: TeamID, _ page: PageRequest) async throws -> Page<DeadLetter> {
        try await queue.deadLetters(teamID: teamID, page)
    }

    /// One kept letter.
    public func deadLetter(messageID: String) async throws -> DeadLetter? {
        try await queue.deadLetter(messageID: messageID)
    }

    /// Removes a kept letter.
    public func removeDeadLetter(messageID: String) async throws -> Bool {
        try await queue.removeDeadLetter(messageID: messageID)
    }
}
