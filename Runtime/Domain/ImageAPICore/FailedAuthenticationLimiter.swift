import Foundation
import Locking

/// Limits failed authentications per client: each client has a bucket of ``capacity`` failures
/// that refills over ``window``; a client whose bucket is empty is answered 429 with
/// `Retry-After` for each further invalid key. Requests with a valid key are never limited, so a
/// stranger sending bad keys from a shared address (an office, a carrier's NAT) cannot lock
/// out the people behind it. At most ``maximumClients`` buckets are kept (the fullest are dropped first).
public final class FailedAuthenticationLimiter: Sendable {
    /// Failures a client may make in a row (`AUTH_FAILURE_LIMIT`).
    public let capacity: Int
    /// The time in which an empty bucket refills (`AUTH_FAILURE_WINDOW_SECONDS`).
    public let window: Double
    /// The most clients tracked at once.
    public let maximumClients: Int

    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private let buckets = Locked<[String: Bucket]>([:])
    private let now: @Sendable () -> Double

    /// Creates a limiter.
    /// - Parameters:
    ///   - capacity: Failures allowed in a row.
    ///   - window: Seconds for an empty bucket to refill.
    ///   - maximumClients: The most clients tracked.
    ///   - now: Seconds on a monotonic clock (tests move it).
    public init(
        capacity: Int = 20, window: Double = 60, maximumClients: Int = 10_000,
        now: @escaping @Sendable () -> Double = FailedAuthenticationLimiter.monotonicSeconds
    ) {
        self.capacity = capacity
        self.window = window
        self.maximumClients = maximumClients
        self.now = now
    }

    /// Seconds since an arbitrary start, never going back.
    public static func monotonicSeconds() -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
    private static let start = ContinuousClock.now

    /// How long a client must wait before its next attempt, or `nil` when it may try now.
    /// - Parameter client: The client's address.
    /// - Returns: Seconds to wait (at least 1), or `nil`.
    public func retryAfter(client: String) -> Int? {
        let time = now()
        return buckets.withLock { buckets -> Int? in
            guard let bucket = buckets[client] else { return nil }
            let tokens = refilled(bucket, at: time)
            guard tokens < 1 else { return nil }
            return max(1, Int(((1 - tokens) * window / Double(capacity)).rounded(.up)))
        }
    }

    /// Records a failed authentication.
    /// - Parameter client: The client's address.
    public func recordFailure(client: String) {
        let time = now()
        buckets.withLock { buckets in
            let tokens = buckets[client].map { refilled($0, at: time) } ?? Double(capacity)
            buckets[client] = Bucket(tokens: max(0, tokens - 1), updated: time)
            if buckets.count > maximumClients {
                // Drop the clients closest to a full bucket: they are the least suspicious.
                let fullest = buckets.sorted { refilled($0.value, at: time) > refilled($1.value, at: time) }
                for (key, _) in fullest.prefix(buckets.count - maximumClients) { buckets[key] = nil }
            }
        }
    }

    private func refilled(_ bucket: Bucket, at time: Double) -> Double {
        min(Double(capacity), bucket.tokens + (time - bucket.updated) * Double(capacity) / window)
    }
}
