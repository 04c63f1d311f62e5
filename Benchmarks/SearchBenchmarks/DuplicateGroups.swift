import BenchmarkSupport
import Foundation
import ImageAPICore
import SQLiteStorage

// `search-bench duplicates [--sizes 10000,100000] [--data DIR]` (make bench-duplicates): finding a
// team's near-duplicate groups. For each size, a seeded team of that many perceptual hashes
// (80 % unrelated pictures, 20 % in groups of 2 to 5 copies a few bits apart) is stored in a
// SQLite file under DIR (kept and reused), then timed, median of 5 (the slowest beside it):
//   read      the store's `perceptualHashes(teamID:)`: every hash of the team from SQLite
//   groups    NearDuplicateSearch.groups at distances 4, 8 (the default) and 12
//   baseline  the same groups by comparing every pair (one run at 100,000: it is slow)

struct DuplicateOptions {
    var sizes = isQuickRun ? [2_000] : [10_000, 100_000]
    var data = ".build-bench"

    init(_ arguments: [String]) throws {
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            switch argument {
            case "--sizes":
                sizes = (remaining.popFirst() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--data": data = absolutePath(remaining.popFirst() ?? data)
            default: throw BenchmarkFailure("usage: search-bench duplicates [--sizes 10000,100000] [--data DIR]")
            }
        }
    }
}

/// The seeded hashes: unrelated ones, and groups of copies with up to 6 bits flipped.
func seededHashes(count: Int) -> [UInt64] {
    var generator = SeededGenerator(state: 0xD0B1 &+ UInt64(count))
    var hashes: [UInt64] = []
    while hashes.count < count {
        let base = UInt64.random(in: .min ... .max, using: &generator)
        hashes.append(base)
        guard Int.random(in: 0..<100, using: &generator) < 7 else { continue }
        for _ in 0..<Int.random(in: 1...4, using: &generator) where hashes.count < count {
            var copy = base
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                copy ^= 1 << UInt64.random(in: 0..<64, using: &generator)
            }
            hashes.append(copy)
        }
    }
    return hashes
}

/// A SQLite store holding one team with `count` hashed images (made once, then reused).
func seededDuplicateStore(count: Int, root: String) async throws -> (SQLiteMetadataStore, TeamID) {
    let folder = URL(fileURLWithPath: root).appendingPathComponent("duplicates-\(count)")
    let marker = folder.appendingPathComponent("seeded")
    let path = folder.appendingPathComponent("metadata.sqlite").path
    if let text = try? String(contentsOf: marker, encoding: .utf8), let team = TeamID(text) {
        return (try SQLiteMetadataStore(path: path), team)
    }
    try? FileManager.default.removeItem(at: folder)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let store = try SQLiteMetadataStore(path: path)
    let now = Date()
    let team = Team(id: TeamID(), name: "Bench", description: nil, createdAt: now, updatedAt: now)
    try await store.insertTeam(team)
    let start = ContinuousClock.now
    for (index, hash) in seededHashes(count: count).enumerated() {
        var image = ImageRecord(
            id: ImageID(), teamID: team.id, uploaderID: UserID(), collectionID: nil, filename: "photo-\(index).jpg",
            contentType: "image/jpeg", format: "jpeg", fileSize: 100_000, width: 1024, height: 768, orientation: nil,
            sha256: String(format: "%064x", index), description: nil, tags: [], exif: [:],
            createdAt: now.addingTimeInterval(Double(index) / 1000))
        image.embeddingStatus = .success
        image.phash = PerceptualHash(bits: hash)
        try await store.insertImage(
            image,
            publishing: .processing(ImageProcessingRequest(imageID: image.id, teamID: team.id, reason: "bench")),
            allowDuplicate: true)
        if (index + 1) % 25_000 == 0 { print("  seeded \(index + 1) of \(count) images") }
    }
    print(String(format: "  seeded %d images in %.1f s", count, seconds(ContinuousClock.now - start)))
    try team.id.lowercasedString.write(to: marker, atomically: true, encoding: .utf8)
    return (store, team.id)
}

/// The groups found by comparing every pair: the baseline.
func groupsByEveryPair(_ entries: [HashedImage], maxDistance: Int) -> Int {
    let hashes = entries.map(\.hash.bits)
    var parents = Array(0..<hashes.count)
    func root(_ index: Int) -> Int {
        var current = index
        while parents[current] != current { current = parents[current] }
        return current
    }
    for first in hashes.indices {
        let hash = hashes[first]
        for second in (first + 1)..<hashes.count where (hash ^ hashes[second]).nonzeroBitCount <= maxDistance {
            let (a, b) = (root(first), root(second))
            if a != b { parents[max(a, b)] = min(a, b) }
        }
    }
    var sizes: [Int: Int] = [:]
    for index in hashes.indices { sizes[root(index), default: 0] += 1 }
    return sizes.values.count { $0 > 1 }
}

extension Latencies {
    /// Median and slowest of a few timed runs.
    var runs: String {
        String(
            format: "median %8.2f ms  slowest %8.2f ms  (%d runs)", percentile(0.5) * 1000, percentile(1) * 1000,
            values.count)
    }
}

/// Times `work` `runs` times and returns the latencies.
func timed(runs: Int, _ work: () async throws -> Void) async rethrows -> Latencies {
    var values: [Double] = []
    for _ in 0..<runs {
        let start = ContinuousClock.now
        try await work()
        values.append(seconds(ContinuousClock.now - start))
    }
    return Latencies(values: values)
}

func runDuplicateBenchmark(_ options: DuplicateOptions) async throws {
    print("near-duplicate groups: \(ProcessInfo.processInfo.activeProcessorCount) cores, median of 5 runs")
    for size in options.sizes {
        let (store, team) = try await seededDuplicateStore(count: size, root: options.data)
        var entries: [HashedImage] = []
        let read = try await timed(runs: 5) { entries = try await store.perceptualHashes(teamID: team) }
        guard entries.count == size else {
            throw BenchmarkFailure("the store listed \(entries.count) hashes of \(size)")
        }
        print("  \(size) hashes: read from SQLite      \(read.runs)")
        var found: [Int: Int] = [:]
        var eight = 0.0
        for distance in [4, 8, 12] {
            let groups = await timed(runs: 5) {
                found[distance] = NearDuplicateSearch.groups(entries, maxDistance: distance).count
            }
            if distance == 8 { eight = groups.percentile(0.5) }
            print(
                "  \(size) hashes: groups at distance \(String(format: "%2d", distance)) \(groups.runs), \(found[distance] ?? 0) groups"
            )
        }
        var baselineGroups = 0
        let baseline = await timed(runs: size > 20_000 ? 1 : 3) {
            baselineGroups = groupsByEveryPair(entries, maxDistance: 8)
        }
        guard baselineGroups == found[8] else {
            throw BenchmarkFailure("every pair found \(baselineGroups) groups, the sliced search \(found[8] ?? 0)")
        }
        print(
            "  \(size) hashes: every pair compared, distance 8 \(baseline.runs), \(baselineGroups) groups; "
                + String(format: "sliced %.3f× its time", eight / baseline.percentile(0.5)))
    }
}
