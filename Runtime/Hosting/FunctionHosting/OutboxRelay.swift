import Foundation
import ImageAPICore
import Logging
import ServiceLifecycle

/// The outbox relay: the domain's ``OutboxDelivery`` run as a service of the process, woken when
/// the process commits a message (and by the store's own signal where it has one, such as
/// PostgreSQL's `NOTIFY`), and polling for retries falling due and expired leases.
public final class OutboxRelay: Service, Sendable {
    private let queue: any OutboxQueue
    private let delivery: OutboxDelivery
    private let logger: Logger
    /// The outbox's store, for people: `the metadata store (PostgreSQL)`.
    private let storeName: String

    /// Creates the relay.
    /// - Parameters:
    ///   - queue: The outbox.
    ///   - settings: Attempts, backoff and ack deadline.
    ///   - publisher: Where messages are published.
    ///   - clock: The time source for due dates and backoff.
    ///   - logger: Where deliveries are logged.
    ///   - storeName: The outbox's store, for people, named when it does not answer.
    public init(
        queue: any OutboxQueue, settings: LocalPubSubSettings, publisher: any EventPublisher,
        clock: any TimeSource = SystemTimeSource(), logger: Logger, storeName: String = "the metadata store"
    ) {
        self.queue = queue
        self.logger = logger
        self.storeName = storeName
        self.delivery = OutboxDelivery(
            queue: queue, publisher: publisher,
            policy: OutboxDeliveryPolicy(
                leaseSeconds: Self.leaseSeconds(settings: settings, publisher: publisher),
                maxAttempts: settings.maxDeliveryAttempts,
                retryBaseSeconds: Double(settings.retryBaseMilliseconds) / 1000),
            clock: clock, logger: logger, outages: .adapters)
    }

    /// How long a claim leases its messages: what one publish may take, and 5 s more. A publisher
    /// with a deadline of its own (Pub/Sub) is covered by it; one that waits for the subscriber
    /// (the local push) by the ack deadline. A claim whose answer a store outage lost holds its
    /// messages this long before they are claimed again.
    static func leaseSeconds(settings: LocalPubSubSettings, publisher: any EventPublisher) -> Double {
        guard let longest = publisher.longestPublish else { return Double(settings.ackDeadlineSeconds) + 5 }
        let (seconds, attoseconds) = longest.components
        return Double(seconds) + Double(attoseconds) / 1e18 + 5
    }

    /// Delivers until the process shuts down: whatever is due, then waits for a new message.
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    let enqueued = queue.enqueuedHere
                    if try await delivery.deliverDueMessages() == 0 {
                        try await queue.waitForNewMessages(after: enqueued)
                    }
                } catch is CancellationError {
                    return
                } catch {
                    // What did not answer, not the loop that met it.
                    logger.error(
                        "\(storeName.prefix(1).uppercased() + storeName.dropFirst()) does not answer: the outbox is not read; trying again in 1 s",
                        metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        } onGracefulShutdown: {
        }
    }

    /// Delivers the messages due now (see ``OutboxDelivery/deliverDueMessages()``).
    /// - Returns: How many were claimed.
    @discardableResult
    public func deliverDueMessages() async throws -> Int {
        try await delivery.deliverDueMessages()
    }
}
