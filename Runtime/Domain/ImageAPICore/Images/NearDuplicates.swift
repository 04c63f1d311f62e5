import Foundation

/// An image's perceptual hash, as the store lists a team's hashes.
public struct HashedImage: Sendable, Equatable {
    /// The image.
    public var id: ImageID
    /// Its perceptual hash.
    public var hash: PerceptualHash
    /// When it was uploaded: a group lists its oldest image first.
    public var createdAt: Date

    /// Creates an entry.
    public init(id: ImageID, hash: PerceptualHash, createdAt: Date) {
        self.id = id
        self.hash = hash
        self.createdAt = createdAt
    }
}

/// Finds near-duplicates among perceptual hashes: the images within a Hamming distance of one
/// image, and the groups that closeness connects.
public enum NearDuplicateSearch {
    /// The distance when none is asked for: a resized, recompressed or slightly cropped copy
    /// stays within it; unrelated pictures (about 32 bits apart) do not.
    public static let defaultMaxDistance = 8
    /// The largest distance accepted: beyond it, unrelated pictures start to match, and finding
    /// groups costs nearly as much as comparing every pair.
    public static let maxDistanceLimit = 12

    /// The entries within `maxDistance` of `hash`, nearest first (then oldest first).
    public static func neighbours(
        of hash: PerceptualHash, among entries: [HashedImage], maxDistance: Int
    ) -> [(entry: HashedImage, distance: Int)] {
        entries.compactMap { entry -> (entry: HashedImage, distance: Int)? in
            let distance = entry.hash.distance(to: hash)
            return distance <= maxDistance ? (entry, distance) : nil
        }
        .sorted { left, right in
            (left.distance, left.entry.createdAt, left.entry.id) < (
                right.distance, right.entry.createdAt, right.entry.id
            )
        }
    }

    /// The groups of entries connected by distances of at most `maxDistance` (a chain of close
    /// pairs joins a group even where its ends are further apart), each of two entries or more:
    /// the largest first, each listing its entries oldest first.
    ///
    /// Two hashes at most `d` bits apart agree exactly on at least one of `d + 1` disjoint slices
    /// of their bits (the pigeonhole principle), so only entries that share a slice's value are
    /// compared: about `n² (d + 1) / 2^(64 / (d + 1))` comparisons for hashes spread evenly,
    /// rather than `n²`.
    public static func groups(_ entries: [HashedImage], maxDistance: Int) -> [[HashedImage]] {
        let count = entries.count
        guard count > 1 else { return [] }
        let hashes = entries.map(\.hash.bits)
        var parents = Array(0..<count)
        func root(_ index: Int) -> Int {
            var current = index
            while parents[current] != current {
                parents[current] = parents[parents[current]]
                current = parents[current]
            }
            return current
        }
        let slices = maxDistance + 1
        var start = 0
        for slice in 0..<slices {
            let end = 64 * (slice + 1) / slices
            let width = end - start
            let mask: UInt64 = width >= 64 ? .max : (1 << UInt64(width)) - 1
            let shift = UInt64(start)
            start = end
            let keys = hashes.map { ($0 >> shift) & mask }
            let order = width <= 16 ? countingSort(keys, width: width) : (0..<count).sorted { keys[$0] < keys[$1] }
            // The hashes in the slice's order, side by side, so that the comparisons within a run
            // read memory in order.
            let sorted = order.map { hashes[$0] }
            var pairs: [(Int, Int)] = []
            sorted.withUnsafeBufferPointer { sorted in
                var runStart = 0
                while runStart < count {
                    let key = keys[order[runStart]]
                    var runEnd = runStart + 1
                    while runEnd < count && keys[order[runEnd]] == key { runEnd += 1 }
                    if runEnd - runStart > 1 {
                        for position in runStart..<(runEnd - 1) {
                            let hash = sorted[position]
                            for other in (position + 1)..<runEnd
                            where (hash ^ sorted[other]).nonzeroBitCount <= maxDistance {
                                pairs.append((order[position], order[other]))
                            }
                        }
                    }
                    runStart = runEnd
                }
            }
            for (first, second) in pairs {
                let (a, b) = (root(first), root(second))
                if a != b { parents[max(a, b)] = min(a, b) }
            }
        }
        var members: [Int: [HashedImage]] = [:]
        for index in 0..<count { members[root(index), default: []].append(entries[index]) }
        return members.values.filter { $0.count > 1 }
            .map { group in group.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }
            .sorted { left, right in
                left.count != right.count
                    ? left.count > right.count : (left[0].createdAt, left[0].id) < (right[0].createdAt, right[0].id)
            }
    }

    /// The indices of `keys` ordered by key, each below `2^width`.
    private static func countingSort(_ keys: [UInt64], width: Int) -> [Int] {
        var starts = [Int](repeating: 0, count: (1 << width) + 1)
        for key in keys { starts[Int(key) + 1] += 1 }
        for value in 1..<starts.count { starts[value] += starts[value - 1] }
        var order = [Int](repeating: 0, count: keys.count)
        for (index, key) in keys.enumerated() {
            order[starts[Int(key)]] = index
            starts[Int(key)] += 1
        }
        return order
    }
}
