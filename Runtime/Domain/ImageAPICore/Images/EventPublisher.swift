import Foundation

/// The events port: hands an outbox message to whatever carries events to their subscribers
/// (the local push delivery today; a Pub/Sub topic later).
///
/// The outbox relay (an application service of the host) reads due messages from the
/// ``OutboxQueue``, publishes each through this port, acknowledges it when `publish` returns and
/// retries it with backoff, up to a limit and then into the dead letters, when it throws. A
/// publisher therefore only says whether one message was taken: it keeps no state of its own.
public protocol EventPublisher: Sendable {
    /// Whether messages can be published yet (an emulator learns its own address only once it
    /// listens).
    var isReady: Bool { get }
    /// Publishes one message.
    /// - Parameter queued: The message, when it was committed and which attempt this is.
    /// - Throws: When the message was not taken; the relay tries again later.
    func publish(_ queued: QueuedMessage) async throws
    /// The longest one ``publish(_:)`` takes, where the publisher bounds it with a deadline of its
    /// own (a call to a broker); `nil` where publishing waits for the subscriber's answer, so that
    /// the relay's lease must cover the transport's ack deadline. A claim whose answer was lost
    /// leaves its messages leased for that long.
    var longestPublish: Duration? { get }
}

extension EventPublisher {
    /// Unbounded unless the publisher says otherwise: the lease covers the ack deadline.
    public var longestPublish: Duration? { nil }
}
