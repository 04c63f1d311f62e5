import ImageAPICore
import RuntimeSupport

/// `BLOB_BACKEND=filesystem`: image bytes as files under `BLOB_DIR` (default `$DATA_DIR/blobs`).
public enum FileSystemStorageFactory: AdapterFactory {
    /// `DATA_DIR` and `BLOB_DIR`.
    public static let variables: Set<String> = ["DATA_DIR", "BLOB_DIR"]

    /// Opens (creating) the blobs' folder.
    /// - Parameter variables: `DATA_DIR` and `BLOB_DIR`.
    /// - Returns: The store.
    /// - Throws: When the folder cannot be created.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<FileSystemBlobStore> {
        BuiltAdapter(try FileSystemBlobStore(root: EmbeddedDataPaths(variables).blobs))
    }
}
