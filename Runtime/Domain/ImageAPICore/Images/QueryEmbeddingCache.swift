import Foundation
import Locking
import Logging

/// An embedder that remembers the embeddings of the texts it was last asked for (least recently
/// used first out), so that a repeated or popular query skips the text encoder. Images pass
/// through. One cache per process and per model (it wraps one embedder); hits and misses are
/// counted and logged at debug.
public final class QueryEmbeddingCache: Embedder {
    private let embedder: any Embedder
    private let entries: Locked<LeastRecentlyUsed<String, [Float]>>
    private let counts = Locked(QueryCacheCounts())
    private let logger: Logger

    /// Wraps an embedder.
    /// - Parameters:
    ///   - embedder: The embedder whose text embeddings are kept.
    ///   - capacity: How many texts are kept (`QUERY_CACHE_SIZE`), at least 1.
    ///   - logger: Where each lookup is logged, at debug.
    public init(_ embedder: any Embedder, capacity: Int, logger: Logger) {
        self.embedder = embedder
        self.entries = Locked(LeastRecentlyUsed(capacity: max(1, capacity)))
        self.logger = logger
    }

    /// The lookups so far.
    public var statistics: QueryCacheCounts { counts.withLock { $0 } }

    /// The wrapped embedder's model.
    public var modelID: String { embedder.modelID }
    /// The wrapped embedder's vector length.
    public var dimensions: Int { embedder.dimensions }
    /// Whether the wrapped embedder reads text.
    public var supportsText: Bool { embedder.supportsText }
    /// The wrapped embedder's text scale.
    public var textRelevance: RelevanceScale { embedder.textRelevance }
    /// The wrapped embedder's image scale.
    public var imageRelevance: RelevanceScale { embedder.imageRelevance }

    /// The wrapped embedder's image embedding (never kept).
    /// - Parameter data: The image's bytes.
    /// - Returns: The embedding.
    public func embed(image data: Data) async throws -> [Float] {
        try await embedder.embed(image: data)
    }

    /// The text's embedding: remembered, or computed by the wrapped embedder and then remembered.
    /// Two concurrent misses of one text both compute it.
    /// - Parameter text: The query text, as searched.
    /// - Returns: The embedding.
    public func embed(text: String) async throws -> [Float] {
        if let known = entries.withLock({ $0.value(for: text) }) {
            record(hit: true)
            return known
        }
        let vector = try await embedder.embed(text: text)
        entries.withLock { $0.insert(vector, for: text) }
        record(hit: false)
        return vector
    }

    /// Prepares the wrapped embedder.
    public func prepare() async throws {
        try await embedder.prepare()
    }

    private func record(hit: Bool) {
        PipelineMetrics.queryCache(hit: hit)
        let now = counts.withLock { counts in
            if hit { counts.hits += 1 } else { counts.misses += 1 }
            return counts
        }
        logger.debug(
            "Query embedding cache", metadata: ["hit": "\(hit)", "hits": "\(now.hits)", "misses": "\(now.misses)"])
    }
}

/// How often a ``QueryEmbeddingCache`` knew the text, and how often not.
public struct QueryCacheCounts: Sendable, Equatable {
    /// Lookups answered from the cache.
    public var hits = 0
    /// Lookups that ran the encoder.
    public var misses = 0

    /// Counts lookups.
    /// - Parameters:
    ///   - hits: Lookups answered from the cache.
    ///   - misses: Lookups that ran the encoder.
    public init(hits: Int = 0, misses: Int = 0) {
        self.hits = hits
        self.misses = misses
    }
}

/// A map of at most `capacity` entries that forgets the least recently read or written one to
/// make room: a doubly linked list over array slots, so every operation is O(1).
struct LeastRecentlyUsed<Key: Hashable, Value> {
    private struct Slot {
        var key: Key
        var value: Value
        var newer: Int?
        var older: Int?
    }

    private let capacity: Int
    private var slots: [Slot] = []
    private var index: [Key: Int] = [:]
    private var newest: Int?
    private var oldest: Int?

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// How many entries are kept.
    var count: Int { index.count }

    /// The value of `key`, which becomes the most recently used; `nil` when not kept.
    mutating func value(for key: Key) -> Value? {
        guard let slot = index[key] else { return nil }
        moveToNewest(slot)
        return slots[slot].value
    }

    /// Keeps `value` for `key` as the most recently used, forgetting the least recently used
    /// entry when full.
    mutating func insert(_ value: Value, for key: Key) {
        if let slot = index[key] {
            slots[slot].value = value
            moveToNewest(slot)
            return
        }
        let slot: Int
        if slots.count < capacity {
            slots.append(Slot(key: key, value: value))
            slot = slots.count - 1
        } else {
            // Reuse the oldest entry's slot.
            guard let reused = oldest else { return }
            unlink(reused)
            index[slots[reused].key] = nil
            slots[reused] = Slot(key: key, value: value)
            slot = reused
        }
        index[key] = slot
        linkAsNewest(slot)
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard newest != slot else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let newer = slots[slot].newer
        let older = slots[slot].older
        if let newer { slots[newer].older = older } else { newest = older }
        if let older { slots[older].newer = newer } else { oldest = newer }
        slots[slot].newer = nil
        slots[slot].older = nil
    }

    private mutating func linkAsNewest(_ slot: Int) {
        slots[slot].older = newest
        slots[slot].newer = nil
        if let newest { slots[newest].newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
    }
}
