import Foundation

/// A benchmark's failure in its own words: what went wrong, printed as the benchmark's last line.
public struct BenchmarkFailure: Error, CustomStringConvertible {
    public let description: String

    /// - Parameter description: The sentence printed when the benchmark stops on this failure.
    public init(_ description: String) { self.description = description }
}

/// Runs a benchmark's work and exits: 0 when it finished, 1 with one line on standard error naming
/// the cause when it threw (no crash report, unlike an error thrown at the top level). The work is
/// isolated to the main actor, as top-level code is.
/// - Parameters:
///   - name: The executable's name, which starts the failure line.
///   - work: The benchmark.
@MainActor
public func runBenchmark(_ name: String, _ work: @MainActor () async throws -> Void) async -> Never {
    do {
        try await work()
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
        exit(1)
    }
}

/// A path given on the command line as an absolute path: a relative one is taken from the current
/// folder, so that it still names the same file for a process started in another folder.
/// - Parameter path: The path as given.
/// - Returns: The absolute, standardized path.
public func absolutePath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}

/// Whether `BENCH_QUICK` is set: the smallest sizes and one short round, to check that the
/// benchmark runs and prints its table, not to measure.
public var isQuickRun: Bool {
    !(ProcessInfo.processInfo.environment["BENCH_QUICK"] ?? "").isEmpty
}

/// The value `make` returns, or the end of the benchmark with one line naming why it could not be
/// made (for benchmarks whose work runs at the top level of `main.swift`).
/// - Parameters:
///   - name: The executable's name, which starts the failure line.
///   - make: What makes the value.
/// - Returns: The value.
public func orExit<Value>(_ name: String, _ make: () throws -> Value) -> Value {
    do {
        return try make()
    } catch {
        FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
        exit(1)
    }
}
