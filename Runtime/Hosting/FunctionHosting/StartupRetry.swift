import Foundation
import Logging

/// Retries the work a process does once as it starts (registering the bootstrap key), when a
/// dependency is not ready yet: on a fresh deployment an IAM grant can take a minute or two to be
/// seen, and a process that exited at its first refusal would fail the whole rollout. Waits
/// double from `initialWait` up to 15 s; after `limit` the last error is thrown.
public struct StartupRetry: Sendable {
    /// How long failures are retried.
    public var limit: Duration
    /// The first wait.
    public var initialWait: Duration

    /// Creates the policy.
    /// - Parameters:
    ///   - limit: How long failures are retried (default 180 s, within Cloud Run's 240 s start-up probe).
    ///   - initialWait: The first wait (default 1 s).
    public init(limit: Duration = .seconds(180), initialWait: Duration = .seconds(1)) {
        self.limit = limit
        self.initialWait = initialWait
    }

    /// Runs `work` until it succeeds, throws an error `isFinal` accepts, or `limit` passes.
    /// - Parameters:
    ///   - what: What is being done, for the log ("registering BOOTSTRAP_ADMIN_KEY").
    ///   - logger: Where each retry is reported.
    ///   - isFinal: Errors no retry can mend (a refusal of the configuration), thrown at once.
    ///   - work: The work.
    /// - Returns: What `work` returns.
    /// - Throws: A final error, or the last error once `limit` has passed.
    public func run<T: Sendable>(
        _ what: String, logger: Logger, isFinal: (any Error) -> Bool = { _ in false },
        _ work: () async throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + limit
        var wait = initialWait
        while true {
            do {
                return try await work()
            } catch {
                guard !isFinal(error), ContinuousClock.now + wait < deadline else { throw error }
                logger.warning(
                    "\(what): not possible yet; retrying",
                    metadata: ["error": "\(error)", "retry_in": "\(wait)"])
                try await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(15))
            }
        }
    }
}
