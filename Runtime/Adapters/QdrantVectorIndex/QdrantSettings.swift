import Foundation

/// Where the Qdrant server is and how the index's collections are made.
public struct QdrantSettings: Sendable, Equatable {
    /// Scalar quantisation of stored vectors.
    public enum Quantization: String, Sendable, CaseIterable {
        /// Full 32-bit floats only.
        case none
        /// An int8 copy of each vector kept in memory and searched first, the best candidates
        /// rescored with the full vectors: about a quarter of the memory for search.
        case int8
    }

    /// `QDRANT_HOST`.
    public var host: String
    /// `QDRANT_PORT` (6333).
    public var port: Int
    /// `QDRANT_HTTPS`: whether to use TLS.
    public var https: Bool
    /// `QDRANT_API_KEY`, sent as the `api-key` header.
    public var apiKey: String?
    /// `QDRANT_COLLECTION`: the prefix of the index's collections, one per embedding model
    /// (`images` gives `images-visual-features-v1`).
    public var collectionPrefix: String
    /// `QDRANT_SHARDS`: shards of each new collection (spread over a cluster's nodes).
    public var shards: Int
    /// `QDRANT_REPLICATION_FACTOR`: copies of each shard, on as many nodes.
    public var replicationFactor: Int
    /// `QDRANT_WRITE_CONSISTENCY`: copies that must confirm a write before it is acknowledged.
    public var writeConsistency: Int
    /// `QDRANT_QUANTIZATION`.
    public var quantization: Quantization

    /// Creates settings; the defaults are a single local node.
    public init(
        host: String = "localhost", port: Int = 6333, https: Bool = false, apiKey: String? = nil,
        collectionPrefix: String = "images", shards: Int = 1, replicationFactor: Int = 1, writeConsistency: Int = 1,
        quantization: Quantization = .none
    ) {
        self.host = host
        self.port = port
        self.https = https
        self.apiKey = apiKey
        self.collectionPrefix = collectionPrefix
        self.shards = shards
        self.replicationFactor = replicationFactor
        self.writeConsistency = writeConsistency
        self.quantization = quantization
    }

    /// The server's base URL, `http(s)://host:port`.
    public var baseURL: String { "\(https ? "https" : "http")://\(host):\(port)" }

    /// The collection that holds one model's vectors: the prefix, a dash, and the model id with
    /// every character outside `a-z 0-9 . _ -` replaced by `-` (`clip/vit@3f2a` gives
    /// `images-clip-vit-3f2a`). Two models that map to one name share the collection; searches
    /// still filter by the model, so their vectors never mix in results.
    /// - Parameter model: The model id.
    /// - Returns: The collection's name.
    public func collection(for model: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789._-")
        let slug = String(model.lowercased().map { allowed.contains($0) ? $0 : "-" })
        return String("\(collectionPrefix)-\(slug)".prefix(255))
    }

    /// Whether a collection name is one of this index's.
    /// - Parameter name: The collection's name.
    public func owns(collection name: String) -> Bool { name.hasPrefix("\(collectionPrefix)-") }
}
