import Foundation
import ImageAPICore
import TestSupport
import Testing

@Suite("Perceptual hashes and near-duplicate groups")
struct NearDuplicateTests {
    @Test("a hash is written as 16 lower-case hex digits and read back; other text is refused")
    func hexForm() throws {
        let hash = PerceptualHash(bits: 0x00ab_cdef_0123_4567)
        #expect(hash.hex == "00abcdef01234567")
        #expect(PerceptualHash(hex: "00ABCDEF01234567") == hash)
        for bad in ["", "abc", "00abcdef0123456", "00abcdef012345678", "+0abcdef01234567", "00abcdef0123456g"] {
            #expect(PerceptualHash(hex: bad) == nil, "\(bad)")
        }
        let encoded = try JSONEncoder().encode(["phash": hash])
        #expect(String(decoding: encoded, as: UTF8.self) == #"{"phash":"00abcdef01234567"}"#)
        #expect(try JSONDecoder().decode([String: PerceptualHash].self, from: encoded)["phash"] == hash)
    }

    @Test("the mean level is the first and highest bit; brightness alone changes nothing")
    func brightness() throws {
        #expect(PerceptualHash.of(grey: [UInt8](repeating: 90, count: 1000)) == nil)
        var generator = SeededGenerator(seed: 7)
        let picture = (0..<1024).map { _ in UInt8.random(in: 20...200, using: &generator) }
        let brighter = picture.map { $0 + 40 }
        let hashed = try #require(PerceptualHash.of(grey: picture))
        #expect(hashed == PerceptualHash.of(grey: brighter))
        #expect(hashed.bits >> 63 == 1)
        // A left-to-right gradient: only horizontal frequencies carry energy.
        let gradient = (0..<1024).map { UInt8(($0 % 32) * 8) }
        let bits = try #require(PerceptualHash.of(grey: gradient)).bits
        #expect(bits != 0 && bits.nonzeroBitCount < 64)
    }

    @Test("PIL's grey weights, rounded as it rounds")
    func greyWeights() {
        #expect(PerceptualHash.grey(red: 255, green: 255, blue: 255) == 255)
        #expect(PerceptualHash.grey(red: 0, green: 0, blue: 0) == 0)
        #expect(PerceptualHash.grey(red: 255, green: 0, blue: 0) == 76)
        #expect(PerceptualHash.grey(red: 0, green: 255, blue: 0) == 150)
        #expect(PerceptualHash.grey(red: 0, green: 0, blue: 255) == 29)
    }

    static func entries(_ hashes: [UInt64]) -> [HashedImage] {
        hashes.enumerated().map { index, bits in
            HashedImage(
                id: ImageID(), hash: PerceptualHash(bits: bits), createdAt: Date(timeIntervalSince1970: Double(index)))
        }
    }

    @Test("groups equal the connected components that comparing every pair finds", arguments: [0, 1, 3, 6, 8, 12])
    func groupsMatchEveryPair(maxDistance: Int) {
        var generator = SeededGenerator(seed: UInt64(100 + maxDistance))
        // Clusters of copies (a few bits flipped each) among unrelated hashes.
        var hashes: [UInt64] = []
        for _ in 0..<60 {
            let base = UInt64.random(in: .min ... .max, using: &generator)
            hashes.append(base)
            for _ in 0..<Int.random(in: 0...4, using: &generator) {
                var copy = base
                for _ in 0..<Int.random(in: 0...6, using: &generator) {
                    copy ^= 1 << UInt64.random(in: 0..<64, using: &generator)
                }
                hashes.append(copy)
            }
        }
        let entries = Self.entries(hashes)
        var component = Array(0..<entries.count)
        func root(_ index: Int) -> Int { component[index] == index ? index : root(component[index]) }
        for first in entries.indices {
            for second in entries.indices
            where second > first
                && entries[first].hash.distance(to: entries[second].hash) <= maxDistance
            {
                component[max(root(first), root(second))] = min(root(first), root(second))
            }
        }
        let expected = Set(
            Dictionary(grouping: entries.indices, by: root).values.filter { $0.count > 1 }
                .map { Set($0.map { entries[$0].id }) })
        let groups = NearDuplicateSearch.groups(entries, maxDistance: maxDistance)
        #expect(Set(groups.map { Set($0.map(\.id)) }) == expected)
        #expect(!groups.isEmpty)
        #expect(zip(groups, groups.dropFirst()).allSatisfy { $0.count >= $1.count })
        #expect(groups.allSatisfy { group in zip(group, group.dropFirst()).allSatisfy { $0.createdAt < $1.createdAt } })
    }

    @Test("a chain of close pairs is one group; neighbours are listed nearest first")
    func chainsAndNeighbours() {
        let entries = Self.entries([0, 0b1111, 0b1111_1111, 0b1111_1111_1111, ~0])
        let groups = NearDuplicateSearch.groups(entries, maxDistance: 4)
        #expect(groups.map { $0.map(\.id) } == [Array(entries.prefix(4).map(\.id))])
        let near = NearDuplicateSearch.neighbours(of: PerceptualHash(bits: 0), among: entries, maxDistance: 8)
        #expect(near.map(\.distance) == [0, 4, 8])
    }
}
