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
    /// Only candidates are compared, by the pigeonhole principle: split into `m` disjoint slices,
    /// two hashes at most `d` bits apart differ in at most `⌊d / m⌋` bits of one slice. Up to a
    /// distance of 5 the hashes are split into `d + 1` slices and an entry is compared with those
    /// that agree exactly on a slice; from 6 on, into `⌊d / 2⌋ + 1` slices of 9 to 16 bits, and an
    /// entry is compared with those within one bit on a slice (its own value and each value one bit
    /// away), which compares several times fewer pairs than exact agreement on twice as many,
    /// narrower slices. Either way far fewer than the `n²/2` pairs of comparing every one.
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
        let probesNeighbours = maxDistance >= 6
        let slices = probesNeighbours ? maxDistance / 2 + 1 : maxDistance + 1
        var start = 0
        for slice in 0..<slices {
            let end = 64 * (slice + 1) / slices
            let width = end - start
            let mask: UInt64 = width >= 64 ? .max : (1 << UInt64(width)) - 1
            let shift = UInt64(start)
            start = end
            let keys = hashes.map { ($0 >> shift) & mask }
            let buckets = SliceBuckets(keys: keys, width: width)
            // The hashes in bucket order, side by side, so that a bucket's comparisons read
            // memory in order.
            let sorted = buckets.order.map { hashes[$0] }
            var pairs: [(Int, Int)] = []
            sorted.withUnsafeBufferPointer { sorted in
                buckets.order.withUnsafeBufferPointer { order in
                    for index in 0..<count {
                        let hash = hashes[index]
                        let key = keys[index]
                        for flipped in -1..<(probesNeighbours ? width : 0) {
                            let probe = flipped < 0 ? key : key ^ (1 << UInt64(flipped))
                            for position in buckets.range(of: probe) where order[position] > index {
                                if (hash ^ sorted[position]).nonzeroBitCount <= maxDistance {
                                    pairs.append((index, order[position]))
                                }
                            }
                        }
                    }
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
}

/// The entries of one slice grouped by the slice's value: `order` lists entry indices bucket by
/// bucket, and a value's bucket is a range of it.
private struct SliceBuckets {
    let order: [Int]
    /// Narrow slices: where each value's bucket starts (counting sort), one more than values.
    private let starts: [Int]
    /// Wide slices: each value present, with its bucket.
    private let ranges: [UInt64: Range<Int>]

    init(keys: [UInt64], width: Int) {
        if width <= 16 {
            var starts = [Int](repeating: 0, count: (1 << width) + 1)
            for key in keys { starts[Int(key) + 1] += 1 }
            for value in 1..<starts.count { starts[value] += starts[value - 1] }
            var next = starts
            var order = [Int](repeating: 0, count: keys.count)
            for (index, key) in keys.enumerated() {
                order[next[Int(key)]] = index
                next[Int(key)] += 1
            }
            self.order = order
            self.starts = starts
            self.ranges = [:]
        } else {
            let order = keys.indices.sorted { keys[$0] < keys[$1] }
            var ranges: [UInt64: Range<Int>] = [:]
            var runStart = 0
            while runStart < order.count {
                var runEnd = runStart + 1
                while runEnd < order.count && keys[order[runEnd]] == keys[order[runStart]] { runEnd += 1 }
                ranges[keys[order[runStart]]] = runStart..<runEnd
                runStart = runEnd
            }
            self.order = order
            self.starts = []
            self.ranges = ranges
        }
    }

    /// The positions in `order` of the entries whose slice holds `key`.
    func range(of key: UInt64) -> Range<Int> {
        starts.isEmpty ? ranges[key] ?? 0..<0 : starts[Int(key)]..<starts[Int(key) + 1]
    }
}
