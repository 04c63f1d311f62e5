import Foundation
import Testing

@Suite("Locks")
struct LockingTests {
    @Test("shared values are locked with Locked, which ThreadSanitizer sees, never with Synchronization's Mutex")
    func noMutex() throws {
        let files = try PackageGraph.swiftSources(in: ["Runtime", "Functions", "Tests", "Benchmarks"])
        #expect(files.count > 100, "the sources were not found under \(PackageGraph.root.path)")
        let mutex = try Regex(#"\bMutex\s*[<(]"#)
        for (path, text) in files where path != "Tests/ArchitectureTests/LockingTests.swift" {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                let usesMutex = line.contains(mutex)
                #expect(!usesMutex, "\(path):\(number + 1) uses Mutex: use Locked (Runtime/Support/Locking)")
            }
        }
    }
}
