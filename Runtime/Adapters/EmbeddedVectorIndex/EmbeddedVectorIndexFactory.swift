import ImageAPICore
import RuntimeSupport

/// `VECTOR_BACKEND=embedded`: vectors in the SQLite file `DATABASE_PATH` (default
/// `$DATA_DIR/imagedb.sqlite`), loaded into this process's memory when it opens.
public enum EmbeddedVectorIndexFactory: AdapterFactory {
    /// `DATA_DIR` and `DATABASE_PATH`.
    public static let variables: Set<String> = ["DATA_DIR", "DATABASE_PATH"]

    /// Opens the index and loads its vectors.
    /// - Parameter variables: `DATA_DIR` and `DATABASE_PATH`.
    /// - Returns: The index.
    /// - Throws: When the file cannot be opened.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<SQLiteVectorIndex> {
        BuiltAdapter(try SQLiteVectorIndex(path: EmbeddedDataPaths(variables).database))
    }
}
