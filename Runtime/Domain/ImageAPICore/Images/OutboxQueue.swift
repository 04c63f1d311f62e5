import Foundation

/// A message waiting in the outbox, as the local Pub/Sub delivers it.
public struct QueuedMessage: Sendable, Equatable {
    /// The message.
    public var message: OutboxMessage
    /// When it was published (committed).
    public var publishedAt: Date
    /// Delivery attempts so far, counting the one this claim starts.
    public var attempts: Int

    /// Creates a queued message.
    public init(message: OutboxMessage, publishedAt: Date, attempts: Int) {
        self.message = message
        self.publishedAt = publishedAt
        self.attempts = attempts
    }
}

/// What waits in the outbox.
public struct OutboxBacklog: Sendable, Equatable {
    /// Messages not yet delivered (nor dead-lettered).
    public var messages: Int
    /// When the oldest of them was published, if any waits.
    public var oldestPublishedAt: Date?

    /// Creates a backlog.
    public init(messages: Int, oldestPublishedAt: Date?) {
        self.messages = messages
        self.oldestPublishedAt = oldestPublishedAt
    }
}

/// The outbox read as a durable queue: what the emulator's Pub/Sub delivers from.
public protocol OutboxQueue: Sendable {
    /// Claims messages that are due: each gets one more attempt counted and is hidden from other
    /// claims until `leaseUntil` (so a crash mid-delivery means redelivery, never loss).
    func claimDueMessages(now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMessage]
    /// Removes a delivered message.
    func acknowledge(messageID: String) async throws
    /// Records a failed delivery and when to try again.
    func scheduleRetry(messageID: String, error: String, at date: Date) async throws
    /// Moves a message to the dead-letter queue with its last error.
    func moveToDeadLetters(messageID: String, error: String, at date: Date) async throws
    /// When the next message falls due, if any is waiting.
    func nextDueDate() async throws -> Date?
    /// How many messages wait in the outbox (leased ones included), and when the oldest was
    /// published.
    func backlog() async throws -> OutboxBacklog
    /// How many messages this process has put in the outbox since it started: a relay that
    /// found nothing due asks the store again as soon as this changes.
    var enqueuedHere: Int { get }
    /// How long a relay that found nothing due waits before asking the store again when this
    /// process enqueues nothing meanwhile: what bounds the pickup of other processes' messages
    /// and of retries, against what an empty poll costs.
    var idlePollInterval: Duration { get }
    /// Waits after a poll that found nothing due, until a new message may be waiting: at most
    /// ``idlePollInterval``, less when ``enqueuedHere`` moves past `seen` (or, for a store that
    /// hears of other processes' commits, when one commits a message).
    /// - Parameter seen: ``enqueuedHere`` as read before the poll.
    func waitForNewMessages(after seen: Int) async throws
}

extension OutboxQueue {
    /// Not counted: the relay polls every ``idlePollInterval``.
    public var enqueuedHere: Int { 0 }
    /// 50 ms: an empty poll of a local file costs next to nothing.
    public var idlePollInterval: Duration { .milliseconds(50) }

    /// Checks ``enqueuedHere`` every 50 ms (which costs no call) until it moves or
    /// ``idlePollInterval`` passes.
    public func waitForNewMessages(after seen: Int) async throws {
        let deadline = ContinuousClock.now + idlePollInterval
        repeat {
            try await Task.sleep(for: min(.milliseconds(50), deadline - ContinuousClock.now))
        } while enqueuedHere == seen && ContinuousClock.now < deadline
    }
}
