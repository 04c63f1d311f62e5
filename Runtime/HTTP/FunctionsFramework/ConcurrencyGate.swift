import Foundation
import HTTPTypes

/// Lets a bounded number of expensive requests (uploads) run at once; a bounded number more
/// wait their turn; beyond that, requests are answered 503 with `Retry-After` at once. Waiting
/// requests leave their bodies unread, so TCP holds the client back.
///
/// Places are shared fairly between owners (teams): one owner may hold at most half the running
/// places and half the queue (at least one of each), and a place that frees goes to the waiting
/// owner served longest ago, so one team's flood of uploads cannot keep another team's out.
public actor ConcurrencyGate {
    /// Requests running at once.
    public let limit: Int
    /// Requests that may wait for a place.
    public let queueLimit: Int
    /// Requests one owner may run at once: half of ``limit``, at least 1.
    public var ownerLimit: Int { max(1, limit / 2) }
    /// Requests one owner may have waiting: half of ``queueLimit``, at least 1 when there is a queue.
    public var ownerQueueLimit: Int { queueLimit == 0 ? 0 : max(1, queueLimit / 2) }
    /// Requests running now.
    public private(set) var running = 0
    private var runningByOwner: [String: Int] = [:]
    private var waiting: [(owner: String, turn: CheckedContinuation<Void, Never>)] = []
    /// When each owner last got a place (a running count, not a time): the longest ago goes first.
    private var lastServed: [String: Int] = [:]
    private var served = 0

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

    /// Runs `work` when a place is free for `owner`.
    /// - Parameters:
    ///   - owner: Whose request this is (a team): places are shared fairly between owners.
    ///   - work: The request's work.
    /// - Returns: What `work` returns.
    /// - Throws: ``FunctionError`` 503 with `Retry-After` when the queue, or the owner's share of
    ///   it, is full; what `work` throws.
    public func run<T: Sendable>(owner: String = "", _ work: @Sendable () async throws -> T) async throws -> T {
        if running < limit, runningByOwner[owner, default: 0] < ownerLimit {
            start(owner)
        } else {
            let ownerWaiting = waiting.count(where: { $0.owner == owner })
            guard waiting.count < queueLimit, ownerWaiting < ownerQueueLimit else {
                throw FunctionError(
                    .serviceUnavailable, "Too many uploads in progress; try again shortly",
                    headers: [.retryAfter: "1"])
            }
            // The place is taken for this request by the one that leaves (see `leave`).
            await withCheckedContinuation { waiting.append((owner, $0)) }
        }
        defer { leave(owner) }
        return try await work()
    }

    private func start(_ owner: String) {
        running += 1
        runningByOwner[owner, default: 0] += 1
        served += 1
        lastServed[owner] = served
    }

    private func leave(_ owner: String) {
        running -= 1
        runningByOwner[owner, default: 1] -= 1
        if runningByOwner[owner] == 0 { runningByOwner[owner] = nil }
        // The next waiter whose owner is under its share, the owner served longest ago first.
        let eligible = waiting.indices.filter { runningByOwner[waiting[$0].owner, default: 0] < ownerLimit }
        guard
            let next = eligible.min(by: {
                (lastServed[waiting[$0].owner] ?? 0, $0) < (lastServed[waiting[$1].owner] ?? 0, $1)
            })
        else {
            if running == 0 { lastServed.removeAll() }
            return
        }
        let waiter = waiting.remove(at: next)
        start(waiter.owner)
        waiter.turn.resume()
    }
}
