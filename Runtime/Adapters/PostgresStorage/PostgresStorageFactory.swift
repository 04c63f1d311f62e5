import ImageAPICore
import Logging
import RuntimeSupport

/// `METADATA_BACKEND=postgres`: every metadata port in the PostgreSQL database `DATABASE_URL`
/// names, in the schema `DATABASE_SCHEMA` (default `public`; see ``PostgresSettings``), through a pool of at most `DATABASE_POOL_SIZE` connections
/// (default 10), the schema migrated before the first query. Relays are woken by `NOTIFY` unless
/// `DATABASE_LISTEN=false`, when they poll the outbox every 50 ms instead.
///
/// The outbox listener runs as the adapter's background work, and closes the pool at shutdown.
public enum PostgresStorageFactory: AdapterFactory {
    /// `DATABASE_URL`, `DATABASE_SCHEMA`, `DATABASE_POOL_SIZE` and `DATABASE_LISTEN`.
    public static let variables: Set<String> = [
        "DATABASE_URL", "DATABASE_SCHEMA", "DATABASE_POOL_SIZE", "DATABASE_LISTEN",
    ]

    /// Builds the store; nothing connects until its background work runs.
    /// - Parameter variables: The variables above.
    /// - Returns: The store and its pool's work.
    /// - Throws: ``ConfigurationError`` for a missing or unusable variable.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<PostgresMetadataStore> {
        let settings = try PostgresSettings(variables)
        let listens = variables["DATABASE_LISTEN"] == nil ? true : try variables.flag("DATABASE_LISTEN")
        let store = PostgresMetadataStore(
            settings: settings, listens: listens, logger: Logger(label: "postgres"))
        return BuiltAdapter(
            store, background: [BackgroundWork(name: "PostgreSQL outbox listener") { await store.run() }])
    }
}
