import Foundation
import ImageAPICore
import ImageProcessing
import Testing

/// Our perceptual hashes against the `imagehash` library's own (`imagehash.phash`, PyPI), on the
/// images `scripts/phash-reference.py` writes: generated pictures with resized, recompressed and
/// cropped copies, and the committed fixtures. The test command writes them and sets
/// `PHASH_REFERENCE` to their `reference.json`.
@Suite("Perceptual hashes against imagehash")
struct PerceptualHashReferenceTests {
    struct Entry: Decodable {
        var file: String
        var phash: String
        var copies: [String]
    }

    /// Whether the test command said the reference must be there (`REQUIRE_TEST_SERVERS=1`).
    static var required: Bool { ProcessInfo.processInfo.environment["REQUIRE_TEST_SERVERS"] == "1" }

    static func reference() throws -> [Entry]? {
        guard let path = ProcessInfo.processInfo.environment["PHASH_REFERENCE"] else { return nil }
        return try JSONDecoder().decode([Entry].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func hash(_ path: String) async throws -> PerceptualHash {
        let grey = try await VipsImageCodec().greyLevels(
            of: try Data(contentsOf: URL(fileURLWithPath: path)), side: PerceptualHash.side)
        return try #require(PerceptualHash.of(grey: grey))
    }

    @Test("every image's hash is at most 2 bits from imagehash.phash's")
    func matchesImagehash() async throws {
        guard let entries = try Self.reference() else {
            #expect(!Self.required, "PHASH_REFERENCE is not set: scripts/phash-reference.py did not run")
            return
        }
        #expect(entries.count >= 60)
        var distances: [Int] = []
        for entry in entries {
            let expected = try #require(PerceptualHash(hex: entry.phash))
            let ours = try await Self.hash(entry.file)
            distances.append(ours.distance(to: expected))
            #expect(
                ours.distance(to: expected) <= 2,
                "\(URL(fileURLWithPath: entry.file).lastPathComponent): ours \(ours), imagehash \(expected)")
        }
        print("phash against imagehash over \(entries.count) images: distances \(distances.sorted())")
    }

    @Test("a resized, recompressed or cropped copy is within the default distance; unrelated pictures are not")
    func copiesAndStrangers() async throws {
        guard let entries = try Self.reference()?.filter({ !$0.copies.isEmpty }) else {
            #expect(!Self.required, "PHASH_REFERENCE is not set: scripts/phash-reference.py did not run")
            return
        }
        let limit = NearDuplicateSearch.defaultMaxDistance
        var originals: [PerceptualHash] = []
        var farthestCopy = 0
        for entry in entries {
            let original = try await Self.hash(entry.file)
            originals.append(original)
            for copy in entry.copies {
                let distance = try await Self.hash(copy).distance(to: original)
                farthestCopy = max(farthestCopy, distance)
                #expect(distance <= limit, "\(URL(fileURLWithPath: copy).lastPathComponent): \(distance) bits")
            }
        }
        var closest = 64
        for (index, first) in originals.enumerated() {
            for second in originals[(index + 1)...] { closest = min(closest, first.distance(to: second)) }
        }
        #expect(closest > limit, "two unrelated pictures are \(closest) bits apart")
        print(
            "phash copies: the farthest copy \(farthestCopy) bits from its original; the closest strangers \(closest)")
    }
}
