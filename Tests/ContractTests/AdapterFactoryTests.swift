import CloudStorage
import EmbeddedVectorIndex
import FileSystemStorage
import Foundation
import ImageAPICore
import MemoryStorage
import QdrantVectorIndex
import RuntimeSupport
import SQLiteStorage
import Testing

/// Each adapter target's factory: built from its own variables alone.
@Suite("Adapter factories")
struct AdapterFactoryTests {
    /// A factory that keeps what it was given.
    enum RecordingFactory: AdapterFactory {
        static let variables: Set<String> = ["MINE", "ALSO_MINE"]

        static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<[String: String]> {
            BuiltAdapter(
                variables.values,
                background: [BackgroundWork(name: "loop") { try await Task.sleep(for: .seconds(3600)) }])
        }
    }

    @Test("a factory is given the variables it declares and no other")
    func scopedVariables() throws {
        let all = EnvironmentVariables(["MINE": "1", "ALSO_MINE": "2", "API_KEY_SECRET": "not for adapters"])
        let built = try RecordingFactory.build(from: all)
        #expect(built.adapter == ["MINE": "1", "ALSO_MINE": "2"])
        #expect(built.background.map(\.name) == ["loop"])
        #expect(built.map(\.count).adapter == 2, "the port view keeps the background work")
        #expect(built.map(\.count).background.count == 1)
    }

    @Test("the embedded factories put their files where DATA_DIR, DATABASE_PATH and BLOB_DIR say")
    func embeddedPaths() async throws {
        try await TemporaryFolder.with { folder in
            let database = folder.appendingPathComponent("elsewhere/metadata.sqlite").path
            let blobs = folder.appendingPathComponent("bytes").path
            let variables = EnvironmentVariables([
                "DATA_DIR": folder.appendingPathComponent("data").path, "DATABASE_PATH": database, "BLOB_DIR": blobs,
            ])
            let store = try SQLiteStorageFactory.build(from: variables).adapter
            try await store.insertTeam(Make.team())
            #expect(FileManager.default.fileExists(atPath: database))
            let index = try EmbeddedVectorIndexFactory.build(from: variables).adapter
            #expect(try await index.vector(imageID: ImageID(), teamID: TeamID()) == nil)
            let blobStore = try FileSystemStorageFactory.build(from: variables).adapter
            try await blobStore.put(Data("bytes".utf8), at: "a/b")
            #expect(FileManager.default.fileExists(atPath: blobs + "/a/b"))
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("data").path))
        }
    }

    @Test("without DATABASE_PATH or BLOB_DIR, files go under DATA_DIR")
    func defaultsUnderDataDirectory() {
        let paths = EmbeddedDataPaths(EnvironmentVariables(["DATA_DIR": "/srv/images"]))
        #expect(paths.database == "/srv/images/imagedb.sqlite")
        #expect(paths.blobs == "/srv/images/blobs")
        #expect(EmbeddedDataPaths(EnvironmentVariables([:])).database == "./data/imagedb.sqlite")
    }

    @Test("the Cloud Storage factory needs a valid bucket name, and a usable key file when one is named")
    func cloudStorageSettings() throws {
        let missing = #expect(throws: ConfigurationError.self) {
            try CloudStorageFactory.build(from: EnvironmentVariables(["STORAGE_EMULATOR_HOST": "127.0.0.1:1"]))
        }
        #expect(missing?.variable == "GCS_BUCKET_NAME")
        let malformed = #expect(throws: ConfigurationError.self) {
            try CloudStorageFactory.build(
                from: EnvironmentVariables(["GCS_BUCKET_NAME": "Not A Bucket", "STORAGE_EMULATOR_HOST": "127.0.0.1:1"]))
        }
        #expect(malformed?.variable == "GCS_BUCKET_NAME")
        let unreadableKey = #expect(throws: ConfigurationError.self) {
            try CloudStorageFactory.build(
                from: EnvironmentVariables([
                    "GCS_BUCKET_NAME": "images", "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json",
                ]))
        }
        #expect(unreadableKey?.variable == "GOOGLE_APPLICATION_CREDENTIALS")
        #expect(unreadableKey?.reason.contains("/nonexistent/key.json") == true)
        // Without an emulator or a key file: the metadata server's credentials, asked on first use.
        _ = try CloudStorageFactory.build(from: EnvironmentVariables(["GCS_BUCKET_NAME": "images"]))
        _ = try CloudStorageFactory.build(
            from: EnvironmentVariables(["GCS_BUCKET_NAME": "images", "STORAGE_EMULATOR_HOST": "127.0.0.1:1"]))
    }

    @Test("the Qdrant factory reads the previous service's variable names and refuses impossible cluster settings")
    func qdrantSettings() throws {
        let defaults = try QdrantVectorIndexFactory.settings(EnvironmentVariables([:]))
        #expect(defaults == QdrantSettings())
        #expect(defaults.baseURL == "http://localhost:6333")
        let cluster = try QdrantVectorIndexFactory.settings(
            EnvironmentVariables([
                "QDRANT_HOST": "10.0.0.7", "QDRANT_PORT": "6334", "QDRANT_HTTPS": "true", "QDRANT_API_KEY": "k",
                "QDRANT_COLLECTION": "photos", "QDRANT_SHARDS": "6", "QDRANT_REPLICATION_FACTOR": "2",
                "QDRANT_WRITE_CONSISTENCY": "2", "QDRANT_QUANTIZATION": "int8", "QDRANT_PREFER_GRPC": "yes",
            ]))
        #expect(
            cluster
                == QdrantSettings(
                    host: "10.0.0.7", port: 6334, https: true, apiKey: "k", collectionPrefix: "photos", shards: 6,
                    replicationFactor: 2, writeConsistency: 2, quantization: .int8))
        #expect(cluster.baseURL == "https://10.0.0.7:6334")
        // One collection per model, named from the model id.
        #expect(
            cluster.collection(for: "clip/clip-vit-base-patch32@3f2a9c") == "photos-clip-clip-vit-base-patch32-3f2a9c")
        #expect(cluster.owns(collection: "photos-visual-features-v1") && !cluster.owns(collection: "photosynth"))

        for (name, value) in [
            ("QDRANT_WRITE_CONSISTENCY", "3"), ("QDRANT_QUANTIZATION", "pq"), ("QDRANT_PORT", "0"),
            ("QDRANT_HOST", "http://qdrant"), ("QDRANT_COLLECTION", "my images"), ("QDRANT_HTTPS", "maybe"),
        ] {
            let error = #expect(throws: ConfigurationError.self) {
                try QdrantVectorIndexFactory.settings(EnvironmentVariables([name: value]))
            }
            #expect(error?.variable == name)
        }
    }
}
