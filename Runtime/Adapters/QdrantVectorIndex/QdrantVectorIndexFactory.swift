import Foundation
import Logging
import RuntimeSupport

/// `VECTOR_BACKEND=qdrant`: vectors in a Qdrant server or cluster, shared by every process.
public enum QdrantVectorIndexFactory: AdapterFactory {
    /// The server, its key, the collections' prefix and the settings of new collections.
    public static let variables: Set<String> = [
        "QDRANT_HOST", "QDRANT_PORT", "QDRANT_HTTPS", "QDRANT_API_KEY", "QDRANT_COLLECTION", "QDRANT_PREFER_GRPC",
        "QDRANT_SHARDS", "QDRANT_REPLICATION_FACTOR", "QDRANT_WRITE_CONSISTENCY", "QDRANT_QUANTIZATION",
    ]

    /// Reads the settings.
    /// - Parameter variables: The variables above.
    /// - Returns: The settings.
    /// - Throws: ``ConfigurationError`` naming the first invalid variable.
    public static func settings(_ variables: EnvironmentVariables) throws -> QdrantSettings {
        let prefix = variables["QDRANT_COLLECTION"] ?? "images"
        guard prefix.range(of: "^[A-Za-z0-9_.-]{1,200}$", options: .regularExpression) != nil else {
            throw ConfigurationError(
                variable: "QDRANT_COLLECTION",
                reason: "must be 1 to 200 letters, digits, '.', '_' or '-' (got \"\(prefix)\")")
        }
        let host = variables["QDRANT_HOST"] ?? "localhost"
        guard !host.contains("/"), !host.contains(" ") else {
            throw ConfigurationError(
                variable: "QDRANT_HOST", reason: "must be a host name or address, without a scheme (got \"\(host)\")")
        }
        let replication = try variables.integer("QDRANT_REPLICATION_FACTOR", default: 1, in: 1...16)
        let consistency = try variables.integer("QDRANT_WRITE_CONSISTENCY", default: 1, in: 1...16)
        guard consistency <= replication else {
            throw ConfigurationError(
                variable: "QDRANT_WRITE_CONSISTENCY",
                reason: "must be at most QDRANT_REPLICATION_FACTOR (\(replication)), got \(consistency)")
        }
        return QdrantSettings(
            host: host, port: try variables.integer("QDRANT_PORT", default: 6333, in: 1...65_535),
            https: try variables.flag("QDRANT_HTTPS"), apiKey: variables["QDRANT_API_KEY"], collectionPrefix: prefix,
            shards: try variables.integer("QDRANT_SHARDS", default: 1, in: 1...256), replicationFactor: replication,
            writeConsistency: consistency,
            quantization: QdrantSettings.Quantization(
                rawValue: try variables.choice(
                    "QDRANT_QUANTIZATION", default: "none",
                    allowed: QdrantSettings.Quantization.allCases.map(\.rawValue))) ?? .none)
    }

    /// Builds the index; it calls Qdrant from the first use on.
    /// - Parameter variables: The variables above.
    /// - Returns: The index; it needs no background work.
    /// - Throws: ``ConfigurationError`` for an invalid variable.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<QdrantVectorIndex> {
        let settings = try settings(variables)
        if try variables.flag("QDRANT_PREFER_GRPC") {
            Logger(label: "qdrant").notice(
                "QDRANT_PREFER_GRPC is set, but this index speaks Qdrant's REST API only; using REST",
                metadata: ["endpoint": .string(settings.baseURL)])
        }
        return BuiltAdapter(QdrantVectorIndex(settings: settings))
    }
}
