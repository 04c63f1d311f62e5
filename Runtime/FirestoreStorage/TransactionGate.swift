/// Bounds how many read-write transactions one client runs at once; the rest wait their turn,
/// first come first served.
///
/// Firestore itself resolves contention between transactions (the older wins, the younger is
/// aborted and retried), so against Firestore the bound is generous. Google's emulator does not:
/// transactions that read one document and then write it wait on each other's locks until its
/// lock timeout aborts them all, so against the emulator a client runs one at a time.
actor TransactionGate {
    /// Transactions running at once.
    let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// A gate for `limit` transactions at once (at least 1).
    init(limit: Int) { self.limit = max(1, limit) }

    /// Waits for a place and takes it; ``leave()`` gives it back.
    func enter() async {
        if running < limit {
            running += 1
        } else {
            // The place is handed over by the transaction that leaves (running stays counted).
            await withCheckedContinuation { waiting.append($0) }
        }
    }

    /// Gives a place back, to the longest waiting transaction if there is one.
    func leave() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
