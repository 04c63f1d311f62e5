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

extension SQLiteStorageFactory {
    /// Copies the database (metadata and the embedded vectors beside it) to `path` with SQLite's
    /// online backup: a consistent copy of one moment, taken while other processes read and
    /// write it.
    /// - Parameters:
    ///   - variables: `DATA_DIR` and `DATABASE_PATH`: the database to copy.
    ///   - path: Where the copy goes (a new file).
    /// - Throws: When either file cannot be opened, or the copy fails.
    public static func snapshot(of variables: EnvironmentVariables, to path: String) throws {
        try SQLiteMetadataStore.snapshot(from: EmbeddedDataPaths(variables).database, to: path)
    }
}
