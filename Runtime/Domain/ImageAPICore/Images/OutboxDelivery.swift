import Foundation
import Logging

/// How the outbox is delivered: the lease a claim takes, the attempts a message gets and the
/// backoff between them.
public struct OutboxDeliveryPolicy: Sendable, Equatable {
    /// How long a claimed message is leased to the relay that claimed it, in seconds (the
    /// transport's ack deadline and a margin); a delivery cut short by a crash is retried after it.
    public var leaseSeconds: Double
    /// Attempts before a message moves to the dead letters.
    public var maxAttempts: Int
    /// The wait before the second attempt, in seconds; each later one waits twice as long.
    public var retryBaseSeconds: Double
    /// Messages claimed at once.
    public var batchSize: Int

    /// Describes a policy.
    /// - Parameters:
    ///   - leaseSeconds: The lease a claim takes.
    ///   - maxAttempts: Attempts before the dead letters.
    ///   - retryBaseSeconds: The first backoff.
    ///   - batchSize: Messages claimed at once.
    public init(leaseSeconds: Double, maxAttempts: Int, retryBaseSeconds: Double, batchSize: Int = 4) {
        self.leaseSeconds = leaseSeconds
        self.maxAttempts = maxAttempts
        self.retryBaseSeconds = retryBaseSeconds
        self.batchSize = batchSize
    }
}

/// The use case of delivering the transactional outbox through the events port.
///
/// A message the publisher takes is acknowledged (removed from the outbox). A failure schedules a
/// retry after `base × 2^(attempt-1)`; after the last attempt the message moves to the dead
/// letters with the last error, unless the transport was unavailable (no answer, 429, 5xx from
/// Pub/Sub): then the message stays, retried at most every 10 minutes, for as long as it takes. Messages live in the metadata store, so pending deliveries survive
/// a restart, and one cut short by a crash is retried once its lease runs out. Any number of
/// relays may share one outbox: each claim leases its messages.
public struct OutboxDelivery: Sendable {
    private let queue: any OutboxQueue
    private let publisher: any EventPublisher
    private let policy: OutboxDeliveryPolicy
    private let clock: any TimeSource
    private let logger: Logger
    private let outages: OutageClassifier

    /// The longest wait between deliveries of a message whose transport is unavailable, in
    /// seconds (10 minutes): such a message stays in the outbox, however many attempts it takes.
    public static let longestOutageRetry: Double = 600

    /// Creates the service.
    /// - Parameters:
    ///   - queue: The outbox.
    ///   - publisher: Where messages are published.
    ///   - policy: Lease, attempts and backoff.
    ///   - clock: The time source for due dates and backoff.
    ///   - logger: Where deliveries are logged.
    ///   - outages: Which failures mean the transport is unavailable (retried without a limit)
    ///     rather than that the delivery was refused (dead-lettered after the last attempt).
    public init(
        queue: any OutboxQueue, publisher: any EventPublisher, policy: OutboxDeliveryPolicy,
        clock: any TimeSource = SystemTimeSource(), logger: Logger, outages: OutageClassifier = OutageClassifier()
    ) {
        self.outages = outages
        self.queue = queue
        self.publisher = publisher
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    /// Claims the messages due now (a batch) and delivers them concurrently.
    /// - Returns: How many were claimed (0 when none is due, or the publisher is not ready).
    /// - Throws: The queue's errors while claiming.
    @discardableResult
    public func deliverDueMessages() async throws -> Int {
        guard publisher.isReady else { return 0 }
        let now = clock.now()
        guard let due = try await queue.nextDueDate(), due <= now else { return 0 }
        let claimed = try await queue.claimDueMessages(
            now: now, leaseUntil: now.addingTimeInterval(policy.leaseSeconds), limit: policy.batchSize)
        await withTaskGroup(of: Void.self) { group in
            for message in claimed {
                group.addTask { await deliver(message) }
            }
        }
        return claimed.count
    }

    private func deliver(_ queued: QueuedMessage) async {
        let message = queued.message
        let reason: String
        let outage: Bool
        do {
            let began = ContinuousClock.now
            try await publisher.publish(queued)
            let took = ContinuousClock.now - began
            try await queue.acknowledge(messageID: message.messageID)
            PipelineMetrics.published(took)
            logger.debug(
                "Delivered",
                metadata: [
                    "message_id": .string(message.messageID),
                    "publish_ms": .string(
                        String(
                            format: "%.1f",
                            Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15)),
                    "after_commit_ms": .string(
                        String(format: "%.1f", clock.now().timeIntervalSince(queued.publishedAt) * 1000)),
                ])
            return
        } catch {
            reason = "\(error)"
            outage = outages.isOutage(error)
        }
        do {
            if queued.attempts >= policy.maxAttempts, !outage {
                try await queue.moveToDeadLetters(messageID: message.messageID, error: reason, at: clock.now())
                PipelineMetrics.deadLettered(source: "transport")
                PipelineMetrics.delivery("dead_lettered")
                logger.error(
                    "Message dead-lettered",
                    metadata: [
                        "message_id": .string(message.messageID), "attempts": .stringConvertible(queued.attempts),
                        "error": .string(reason),
                    ])
            } else {
                // An unavailable transport keeps the message, retried at most every 10 minutes.
                let delay = min(
                    policy.retryBaseSeconds * pow(2, Double(queued.attempts - 1)),
                    outage ? Self.longestOutageRetry : .infinity)
                try await queue.scheduleRetry(
                    messageID: message.messageID, error: reason, at: clock.now().addingTimeInterval(delay))
                PipelineMetrics.delivery(outage ? "waiting" : "retried")
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
}
