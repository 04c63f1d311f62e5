import Foundation
import ImageAPICore
import Locking
import Logging
import Testing

@Suite("QueryEmbeddingCache: a repeated query skips the text encoder")
struct QueryEmbeddingCacheTests {
    /// An embedder that counts the texts it encodes; each text's vector is its length on one axis.
    final class CountingEmbedder: Embedder {
        let encoded = Locked<[String]>([])
        var modelID: String { "counting" }
        var dimensions: Int { 2 }
        var supportsText: Bool { true }
        func embed(image data: Data) async throws -> [Float] { [0, 1] }
        func embed(text: String) async throws -> [Float] {
            encoded.withLock { $0.append(text) }
            return [Float(text.count), 0]
        }
    }

    @Test("a known text is answered from the cache with the same vector; hits and misses are counted")
    func repeats() async throws {
        let encoder = CountingEmbedder()
        let cache = QueryEmbeddingCache(encoder, capacity: 10, logger: Logger(label: "test"))
        let first = try await cache.embed(text: "a red car")
        let second = try await cache.embed(text: "a red car")
        #expect(first == [9, 0] && second == first)
        #expect(encoder.encoded.withLock { $0 } == ["a red car"])
        #expect(cache.statistics == QueryCacheCounts(hits: 1, misses: 1))
        // Images are never kept.
        _ = try await cache.embed(image: Data([1]))
        _ = try await cache.embed(image: Data([1]))
        #expect(cache.statistics == QueryCacheCounts(hits: 1, misses: 1))
        #expect(cache.modelID == "counting" && cache.supportsText && cache.dimensions == 2)
    }

    @Test("when full, the least recently used text is forgotten first")
    func leastRecentlyUsed() async throws {
        let encoder = CountingEmbedder()
        let cache = QueryEmbeddingCache(encoder, capacity: 2, logger: Logger(label: "test"))
        for text in ["a", "bb", "a", "ccc", "a", "bb"] { _ = try await cache.embed(text: text) }
        // "a" was read before "ccc" came in, so "bb" was the one to go, and came back as a miss.
        #expect(encoder.encoded.withLock { $0 } == ["a", "bb", "ccc", "bb"])
        #expect(cache.statistics == QueryCacheCounts(hits: 2, misses: 4))
        _ = try await cache.embed(text: "ccc")  // evicted by "bb": "a" was newer
        #expect(encoder.encoded.withLock { $0 }.last == "ccc")
    }

    @Test("a cache of one keeps the last text only")
    func capacityOne() async throws {
        let encoder = CountingEmbedder()
        let cache = QueryEmbeddingCache(encoder, capacity: 1, logger: Logger(label: "test"))
        for text in ["x", "x", "y", "x", "x"] { _ = try await cache.embed(text: text) }
        #expect(encoder.encoded.withLock { $0 } == ["x", "y", "x"])
    }
}
