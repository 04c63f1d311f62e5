/// Bounds how many units of work (a store's transactions) run at once in this process; the rest
/// wait their turn without holding a thread, first come first served.
///
/// The SQLite store lets one transaction at a time wait for the file's write lock (the others
/// wait here instead of each blocking a thread in SQLite's busy handler); the Firestore client
/// runs one at a time against Google's emulator, whose locks deadlock transactions that read and
/// write one document together.
public actor AsyncGate {
    /// Units running at once.
    public let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// A gate for `limit` units at once (at least 1).
    public init(limit: Int) { self.limit = max(1, limit) }

    /// Runs `work` once a place is free, and gives the place back however it ends.
    /// - Parameter work: The unit of work.
    /// - Returns: What `work` returns.
    public nonisolated func run<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        await enter()
        do {
            let result = try await work()
            await leave()
            return result
        } catch {
            await leave()
            throw error
        }
    }

    /// Waits for a place and takes it; ``leave()`` gives it back.
    private func enter() async {
        if running < limit {
            running += 1
        } else {
            // The place is handed over by the unit that leaves (running stays counted).
            await withCheckedContinuation { waiting.append($0) }
        }
    }

    /// Gives a place back, to the longest waiting unit if there is one.
    private func leave() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
