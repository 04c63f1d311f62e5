import ImageAPICore
import RuntimeSupport

/// `METADATA_BACKEND=memory`: every metadata port in this process's memory. Reads no variable.
public enum MemoryMetadataStoreFactory: AdapterFactory {
    /// None.
    public static let variables: Set<String> = []

    /// Makes an empty store.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<MemoryMetadataStore> {
        BuiltAdapter(MemoryMetadataStore())
    }
}

/// `BLOB_BACKEND=memory`: image bytes in this process's memory. Reads no variable.
public enum MemoryBlobStoreFactory: AdapterFactory {
    /// None.
    public static let variables: Set<String> = []

    /// Makes an empty store.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<MemoryBlobStore> {
        BuiltAdapter(MemoryBlobStore())
    }
}

/// `VECTOR_BACKEND=memory`: vectors in this process's memory. Reads no variable.
public enum MemoryVectorIndexFactory: AdapterFactory {
    /// None.
    public static let variables: Set<String> = []

    /// Makes an empty index.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<MemoryVectorIndex> {
        BuiltAdapter(MemoryVectorIndex())
    }
}
