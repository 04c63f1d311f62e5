import Foundation
import HTTPTypes

/// Lets a bounded number of expensive requests (uploads) run at once; a bounded number more
/// wait their turn; beyond that, requests are answered 503 with `Retry-After` at once. Waiting
/// requests leave their bodies unread, so TCP holds the client back.
///
/// Places are shared fairly between owners (teams): one owner may wait in at most half the queue
/// (at least one place), and a place that frees goes first to a waiting owner holding less than
/// half the places, the one served longest ago, so one team's flood of uploads cannot keep
/// another team's out. No place stays idle for fairness: a team alone may use every place.
public actor ConcurrencyGate {
    /// Requests running at once.
    public let limit: Int
    /// Requests that may wait for a place.
    public let queueLimit: Int
    /// Places one owner holds before the other owners' waiting requests go first: half of
    /// ``limit``, at least 1.
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
        // A free place has no one waiting for it: each freed place is handed to a waiter at once.
        if running < limit {
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
        // A waiter whose owner holds less than its share goes first, the owner served longest ago
        // first; when every waiting owner holds its share, the longest waiting.
        let underShare = waiting.indices.filter { runningByOwner[waiting[$0].owner, default: 0] < ownerLimit }
        let next =
            underShare.min(by: {
                (lastServed[waiting[$0].owner] ?? 0, $0) < (lastServed[waiting[$1].owner] ?? 0, $1)
            }) ?? waiting.indices.first
        guard let next else {
            if running == 0 { lastServed.removeAll() }
            return
        }
        let waiter = waiting.remove(at: next)
        start(waiter.owner)
        waiter.turn.resume()
    }
}
