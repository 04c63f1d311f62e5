import Foundation
import ImageAPICore
import Logging
import ServiceLifecycle

/// The outbox relay: publishes the transactional outbox through the events port.
///
/// A message the publisher takes is acknowledged (removed from the outbox). A failure, or no
/// answer within the ack deadline, schedules a retry after `base × 2^(attempt-1)`; after the last
/// attempt the message moves to the dead letters with the last error. Messages live in the
/// metadata store, so pending deliveries survive a restart, and one cut short by a crash is
/// retried once its lease runs out. Any number of relays may share one outbox: each claim leases
/// its messages.
public final class OutboxRelay: Service, Sendable {
    private let queue: any OutboxQueue
    private let settings: LocalPubSubSettings
    private let publisher: any EventPublisher
    private let clock: any TimeSource
    private let logger: Logger
    private let batchSize = 4

    /// Creates the relay.
    /// - Parameters:
    ///   - queue: The outbox.
    ///   - settings: Attempts, backoff and ack deadline.
    ///   - publisher: Where messages are published.
    ///   - clock: The time source for due dates and backoff.
    ///   - logger: Where deliveries are logged.
    public init(
        queue: any OutboxQueue, settings: LocalPubSubSettings, publisher: any EventPublisher,
        clock: any TimeSource = SystemTimeSource(), logger: Logger
    ) {
        self.queue = queue
        self.settings = settings
        self.publisher = publisher
        self.clock = clock
        self.logger = logger
    }

    /// The local Pub/Sub: a relay that pushes each message to `transport` (``LocalPushPublisher``).
    /// - Parameters:
    ///   - queue: The outbox.
    ///   - settings: Attempts, backoff and ack deadline.
    ///   - transport: Where deliveries go.
    ///   - clock: The time source for due dates and backoff.
    ///   - logger: Where deliveries are logged.
    /// - Returns: The relay.
    public static func localPush(
        queue: any OutboxQueue, settings: LocalPubSubSettings, transport: any PushTransport,
        clock: any TimeSource = SystemTimeSource(), logger: Logger
    ) -> OutboxRelay {
        OutboxRelay(
            queue: queue, settings: settings, publisher: LocalPushPublisher(transport: transport), clock: clock,
            logger: logger)
    }

    /// Delivers until the service group shuts down.
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    let enqueued = queue.enqueuedHere
                    if try await deliverDueMessages() == 0 { try await queue.waitForNewMessages(after: enqueued) }
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
        guard publisher.isReady else { return 0 }
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
            let began = ContinuousClock.now
            try await publisher.publish(queued)
            let took = ContinuousClock.now - began
            try await queue.acknowledge(messageID: message.messageID)
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
}
