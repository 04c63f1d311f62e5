import ImageAPICore
import RuntimeSupport

/// `METADATA_BACKEND=sqlite`: every metadata port in one SQLite file, `DATABASE_PATH` (default
/// `$DATA_DIR/imagedb.sqlite`), migrated when it opens. Needs no background work: GRDB's pool
/// opens connections on demand.
public enum SQLiteStorageFactory: AdapterFactory {
    /// `DATA_DIR` and `DATABASE_PATH`.
    public static let variables: Set<String> = ["DATA_DIR", "DATABASE_PATH"]

    /// Opens (creating and migrating) the database.
    /// - Parameter variables: `DATA_DIR` and `DATABASE_PATH`.
    /// - Returns: The store.
    /// - Throws: When the file cannot be opened or a migration fails.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<SQLiteMetadataStore> {
        BuiltAdapter(try SQLiteMetadataStore(path: EmbeddedDataPaths(variables).database))
    }
}
