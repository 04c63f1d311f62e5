import Foundation
import Testing

@Suite("Locks")
struct LockingTests {
    /// The Swift sources under `folders`, relative to the package root, with their text.
    static func sources(in folders: [String]) throws -> [(path: String, text: String)] {
        try folders.flatMap { folder -> [(path: String, text: String)] in
            let root = PackageGraph.root.appendingPathComponent(folder)
            let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }
                .filter { $0.hasSuffix(".swift") }
            return try files.map { file in
                ("\(folder)/\(file)", try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8))
            }
        }
    }

    @Test("shared values are locked with Locked, which ThreadSanitizer sees, never with Synchronization's Mutex")
    func noMutex() throws {
        let files = try Self.sources(in: ["Runtime", "Functions", "Tests", "Benchmarks"])
        #expect(files.count > 100, "the sources were not found under \(PackageGraph.root.path)")
        let mutex = try Regex(#"\bMutex\s*[<(]"#)
        for (path, text) in files where path != "Tests/ArchitectureTests/LockingTests.swift" {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                let usesMutex = line.contains(mutex)
                #expect(!usesMutex, "\(path):\(number + 1) uses Mutex: use Locked (Runtime/Locking)")
            }
        }
    }
}
