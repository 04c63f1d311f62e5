import Foundation

/// Where "now" comes from. Injected so key expiry can be tested without waiting.
public protocol TimeSource: Sendable {
    /// The current instant.
    func now() -> Date
}

/// The system clock, truncated to milliseconds so stored and returned timestamps round-trip.
public struct SystemTimeSource: TimeSource {
    /// Creates the system clock.
    public init() {}

    /// The current instant, to the millisecond.
    public func now() -> Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}
