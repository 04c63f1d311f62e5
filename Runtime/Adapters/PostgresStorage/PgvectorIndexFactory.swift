import ImageAPICore
import Logging
import RuntimeSupport

/// `VECTOR_BACKEND=pgvector`: the vector index in the PostgreSQL database
/// `VECTOR_DATABASE_URL` names (default: `DATABASE_URL`, the metadata's), in `DATABASE_SCHEMA`,
/// through a pool of at most `DATABASE_POOL_SIZE` connections. The database needs the pgvector
/// extension (0.8 or newer for iterative index scans) installed, or a role that may create it.
/// Searches over at most `PGVECTOR_EXACT_SEARCH_LIMIT` candidates (default 10,000) are exact;
/// larger ones walk the HNSW index.
public enum PgvectorIndexFactory: AdapterFactory {
    /// The database's variables.
    public static let variables: Set<String> = [
        "VECTOR_DATABASE_URL", "DATABASE_URL", "DATABASE_SCHEMA", "DATABASE_POOL_SIZE", "PGVECTOR_EXACT_SEARCH_LIMIT",
    ]

    /// Builds the index; nothing connects until its first call.
    /// - Parameter variables: The variables above.
    /// - Returns: The index.
    /// - Throws: ``ConfigurationError`` for a missing or unusable variable.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<PgvectorIndex> {
        guard let url = variables["VECTOR_DATABASE_URL"] ?? variables["DATABASE_URL"] else {
            throw ConfigurationError(
                variable: "VECTOR_DATABASE_URL",
                reason: "must be set (or DATABASE_URL) when VECTOR_BACKEND=pgvector")
        }
        let settings = try PostgresSettings(
            url: url, schema: variables["DATABASE_SCHEMA"] ?? "public",
            poolSize: try variables.integer("DATABASE_POOL_SIZE", default: 10, in: 2...500))
        return BuiltAdapter(
            PgvectorIndex(
                settings: settings,
                exactSearchLimit: try variables.integer(
                    "PGVECTOR_EXACT_SEARCH_LIMIT", default: 10_000, in: 0...10_000_000),
                logger: Logger(label: "pgvector")))
    }
}
