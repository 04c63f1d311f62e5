import Locking

/// A counter of changes that tasks can wait on: ``signal()`` counts one and wakes every waiter
/// at once, so a waiter hears of a change the moment it happens instead of at its next poll.
public final class ChangeSignal: Sendable {
    private struct State {
        var count = 0
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Locked(State())

    /// A signal that has counted nothing.
    public init() {}

    /// The changes counted so far.
    public var count: Int { state.withLock { $0.count } }

    /// Counts a change and wakes every waiter.
    public func signal() {
        let woken = state.withLock { state in
            state.count += 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Waits until the count differs from `seen`, `timeout` passes, or the task is cancelled.
    /// - Parameters:
    ///   - seen: The count the caller last read.
    ///   - timeout: The longest wait.
    public func wait(after seen: Int, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForChange(after: seen) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForChange(after seen: Int) async {
        let ticket = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.count != seen || Task.isCancelled { return true }
                    state.waiters[ticket] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: ticket) }?.resume()
        }
    }
}
