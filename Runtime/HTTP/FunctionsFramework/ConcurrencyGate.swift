import Foundation
import HTTPTypes

/// Lets a bounded number of expensive requests (uploads) run at once; a bounded number more
/// wait their turn, first come first served; beyond that, requests are answered 503 with
/// `Retry-After` at once. Waiting requests leave their bodies unread, so TCP holds the client back.
public actor ConcurrencyGate {
    /// Requests running at once.
    public let limit: Int
    /// Requests that may wait for a place.
    public let queueLimit: Int
    /// Requests running now.
    public private(set) var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Creates a gate.
    /// - Parameters:
    ///   - limit: Requests running at once (at least 1).
    ///   - queueLimit: Requests that may wait.
    public init(limit: Int, queueLimit: Int) {
        self.limit = max(1, limit)
        self.queueLimit = max(0, queueLimit)
    }

    /// Requests waiting now.
    public var queued: Int { waiting.count }

    /// Runs `work` when a place is free.
    /// - Parameter work: The request's work.
    /// - Returns: What `work` returns.
    /// - Throws: ``FunctionError`` 503 with `Retry-After` when the queue is full; what `work` throws.
    public func run<T: Sendable>(_ work: @Sendable () async throws -> T) async throws -> T {
        if running < limit {
            running += 1
        } else {
            guard waiting.count < queueLimit else {
                throw FunctionError(
                    .serviceUnavailable, "Too many uploads in progress; try again shortly",
                    headers: [.retryAfter: "1"])
            }
            // The place is handed over by the request that leaves (running stays counted).
            await withCheckedContinuation { waiting.append($0) }
        }
        defer { leave() }
        return try await work()
    }

    private func leave() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
