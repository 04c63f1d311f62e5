import CloudStorage
import EmbeddedVectorIndex
import FileSystemStorage
import FirestoreStorage
import Foundation
import ImageAPICore
import MemoryStorage
import PostgresNIO
import PostgresStorage
import QdrantVectorIndex
import SQLiteStorage
import Testing

/// Everything a metadata backend implements: one object per backend serves every metadata port.
typealias MetadataBackendStore = MetadataStore & ImageStore & OutboxQueue & DeadLetterQueue

/// The metadata backends every metadata contract runs against. A new backend adds a case here.
enum MetadataBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case sqlite
    /// Firestore's REST API on Google's Firestore emulator, when the test command started it.
    case firestore
    /// A PostgreSQL server from Debian's packages, when the test command started it.
    case postgres

    /// Every backend whose server is here.
    static var allCases: [MetadataBackend] {
        [.memory, .sqlite] + (TestServers.firestoreEmulator == nil ? [] : [.firestore])
            + (TestServers.postgres == nil ? [] : [.postgres])
    }

    var testDescription: String {
        switch self {
        case .firestore: "firestore (Google's emulator)"
        case .postgres: "postgres (PostgreSQL 15)"
        default: rawValue
        }
    }

    /// Runs `body` with a fresh, empty store; its files (if any) are removed afterwards.
    func withStore<T: Sendable>(_ body: (any MetadataBackendStore) async throws -> T) async throws -> T {
        switch self {
        case .memory:
            return try await body(MemoryMetadataStore())
        case .sqlite:
            return try await TemporaryFolder.with { folder in
                try await body(try SQLiteMetadataStore(path: folder.appendingPathComponent("metadata.sqlite").path))
            }
        case .firestore:
            // A project of its own per store: an empty database no other test writes to.
            return try await body(FirestoreMetadataStore(client: try TestServers.firestoreClient()))
        case .postgres:
            // A database of its own per store, dropped afterwards.
            return try await TestServers.withPostgresDatabase { settings in
                try await PostgresMetadataStore.withRunningStore(settings) { store in try await body(store) }
            }
        }
    }
}

/// The vector backends every vector-index contract runs against. A new backend adds a case here.
enum VectorBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case embedded
    /// Qdrant's REST API on the Qdrant test double (Qdrant's engine, qdrant-edge-py), when the
    /// test command started it.
    case qdrant
    /// PostgreSQL 18 with pgvector, when the test command started it.
    case pgvector

    /// Every backend whose server is here.
    static var allCases: [VectorBackend] {
        [.memory, .embedded] + (TestServers.qdrant == nil ? [] : [.qdrant])
            + (TestServers.pgvector == nil ? [] : [.pgvector])
    }

    var testDescription: String {
        switch self {
        case .qdrant: "qdrant (REST test double on Qdrant's engine)"
        case .pgvector: "pgvector (PostgreSQL 18, pgvector 0.8)"
        default: rawValue
        }
    }

    /// Runs `body` with a fresh, empty index; its files (if any) are removed afterwards.
    func withIndex<T: Sendable>(_ body: (any VectorIndex) async throws -> T) async throws -> T {
        switch self {
        case .memory:
            return try await body(MemoryVectorIndex())
        case .embedded:
            return try await TemporaryFolder.with { folder in
                try await body(try SQLiteVectorIndex(path: folder.appendingPathComponent("vectors.sqlite").path))
            }
        case .qdrant:
            // Collections of their own per test (a fresh prefix).
            return try await body(QdrantVectorIndex(settings: try TestServers.qdrantSettings()))
        case .pgvector:
            // A database of its own per index, dropped afterwards.
            return try await TestServers.withPostgresDatabase(server: TestServers.pgvector) { settings in
                try await PgvectorIndex.withIndex(settings) { try await body($0) }
            }
        }
    }
}

/// The servers the test command starts for the contract suites, found through the variables it
/// exports. Run outside it (`swift test` alone), the backends that need one are left out, and
/// ``TestServerTests`` fails when `REQUIRE_TEST_SERVERS=1` (set by `.ci/run`) says they must run.
enum TestServers {
    /// fake-gcs-server's URL (`TEST_STORAGE_EMULATOR_HOST`).
    static var storageEmulator: String? { ProcessInfo.processInfo.environment["TEST_STORAGE_EMULATOR_HOST"] }
    /// Google's Pub/Sub emulator (`TEST_PUBSUB_EMULATOR_HOST`, `host:port`).
    static var pubSubEmulator: String? { ProcessInfo.processInfo.environment["TEST_PUBSUB_EMULATOR_HOST"] }
    /// Google's Firestore emulator (`TEST_FIRESTORE_EMULATOR_HOST`, `host:port`).
    static var firestoreEmulator: String? { ProcessInfo.processInfo.environment["TEST_FIRESTORE_EMULATOR_HOST"] }
    /// A client of the Firestore emulator, running one transaction at a time as the emulator
    /// needs: in a project no other test uses unless `project` names one (a second client of
    /// the same database, as a second process would have).
    static func firestoreClient(
        project: String = "contract-\(UUID().uuidString.prefix(12).lowercased())",
        queryObserver: (@Sendable (FirestoreQuery) -> Void)? = nil
    ) throws -> FirestoreClient {
        let host = try #require(firestoreEmulator)
        return FirestoreClient(
            endpoint: "http://\(host)", project: project, concurrentTransactions: 1, queryObserver: queryObserver)
    }

    /// The project of a client's database (`projects/{project}/databases/…`).
    static func project(of client: FirestoreClient) -> String {
        String(client.database.split(separator: "/")[1])
    }
    /// The PostgreSQL server's `postgres` database (`TEST_DATABASE_URL`).
    static var postgres: String? { ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] }
    /// The pgvector server's `postgres` database (`TEST_PGVECTOR_URL`).
    static var pgvector: String? { ProcessInfo.processInfo.environment["TEST_PGVECTOR_URL"] }

    /// Runs `body` with settings for a new, empty database on the PostgreSQL server, which is
    /// dropped afterwards (with whatever is still connected to it).
    static func withPostgresDatabase<T: Sendable>(
        server url: String? = postgres, poolSize: Int = 10, _ body: (PostgresSettings) async throws -> T
    ) async throws -> T {
        let server = try PostgresSettings(url: try #require(url))
        let name = "contract_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try await PostgresMetadataStore.administer(server, "CREATE DATABASE \(name)")
        var settings = server
        settings.database = name
        settings.poolSize = poolSize
        do {
            let result = try await body(settings)
            try await PostgresMetadataStore.administer(server, "DROP DATABASE \(name) WITH (FORCE)")
            return result
        } catch {
            try? await PostgresMetadataStore.administer(server, "DROP DATABASE \(name) WITH (FORCE)")
            throw error
        }
    }

    /// The Qdrant REST test double (`TEST_QDRANT_HOST`, `host:port`).
    static var qdrant: String? { ProcessInfo.processInfo.environment["TEST_QDRANT_HOST"] }
    /// Settings for the Qdrant test double with a collection prefix no other test uses.
    static func qdrantSettings(quantization: QdrantSettings.Quantization = .none) throws -> QdrantSettings {
        let address = try #require(qdrant).split(separator: ":")
        return QdrantSettings(
            host: String(address[0]), port: Int(address[1]) ?? 6333,
            collectionPrefix: "contract-\(UUID().uuidString.prefix(8).lowercased())", quantization: quantization)
    }
    /// Whether a missing server is a failure rather than a skipped backend.
    static var required: Bool { ProcessInfo.processInfo.environment["REQUIRE_TEST_SERVERS"] == "1" }
}

/// The blob backends every blob-store contract runs against. A new backend adds a case here.
enum BlobBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case filesystem
    case memory
    /// Cloud Storage's JSON API on fake-gcs-server, when the test command started it.
    case gcs

    /// Every backend whose server is here.
    static var allCases: [BlobBackend] { [.filesystem, .memory] + (TestServers.storageEmulator == nil ? [] : [.gcs]) }

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, empty store; its files are removed afterwards.
    func withStore<T: Sendable>(_ body: (any BlobStore) async throws -> T) async throws -> T {
        switch self {
        case .filesystem:
            return try await TemporaryFolder.with { folder in
                try await body(try FileSystemBlobStore(root: folder.appendingPathComponent("blobs").path))
            }
        case .memory:
            return try await body(MemoryBlobStore(chunkSize: 64 * 1024))
        case .gcs:
            // A bucket of its own per test, created on the first write.
            let endpoint = try #require(TestServers.storageEmulator)
            return try await body(
                CloudStorageBlobStore(
                    endpoint: endpoint, bucket: "contract-\(UUID().uuidString.prefix(8).lowercased())",
                    createBucketInProject: "test-project"))
        }
    }
}

/// A folder that exists for one test and is removed after it.
enum TemporaryFolder {
    static func with<T>(_ body: (URL) async throws -> T) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("contract-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try await body(folder)
    }
}

/// Records with fixed, whole-second dates (every backend stores at least millisecond precision).
enum Make {
    static let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    static func date(_ seconds: Int) -> Date { epoch.addingTimeInterval(TimeInterval(seconds)) }

    static func team(_ name: String = "Team", at seconds: Int = 0) -> Team {
        Team(id: TeamID(), name: name, description: nil, createdAt: date(seconds), updatedAt: date(seconds))
    }

    static func user(_ email: String, team: Team, at seconds: Int = 0, admin: Bool = false) -> User {
        User(
            id: UserID(), email: email, name: "Someone", teamID: team.id, isAdmin: admin, isActive: true,
            createdAt: date(seconds), updatedAt: date(seconds))
    }

    static func key(for user: User, at seconds: Int = 0) -> APIKey {
        APIKey(
            id: APIKeyID(), name: "key", description: nil, prefix: "prefix", userID: user.id, teamID: user.teamID,
            secretHash: Data(repeating: 7, count: 32), createdAt: date(seconds), expiresAt: date(seconds + 86_400),
            lastUsedAt: nil, isActive: true)
    }

    static func image(
        team: Team, sha256: String? = nil, filename: String = "photo.jpg", description: String? = nil,
        tags: [String] = [], collection: UUID? = nil, at seconds: Int = 0
    ) -> ImageRecord {
        ImageRecord(
            id: ImageID(), teamID: team.id, uploaderID: UserID(), collectionID: collection, filename: filename,
            contentType: "image/jpeg", format: "jpeg", fileSize: 1000, width: 10, height: 10, orientation: nil,
            sha256: sha256 ?? UUID().lowercasedString, description: description, tags: tags, exif: [:],
            createdAt: date(seconds))
    }

    static func message(for image: ImageRecord) -> OutboxMessage {
        .processing(ImageProcessingRequest(imageID: image.id, teamID: image.teamID, reason: "upload"))
    }

    /// Inserts 20 images of the same bytes into a team concurrently, the n-th through
    /// `stores[n % stores.count]` (several stores stand for several processes), and returns how
    /// many were stored; the others must be refused as duplicates.
    static func contendedInserts(_ stores: [any MetadataBackendStore], team: Team) async throws -> Int {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                group.addTask {
                    let image = Make.image(team: team, sha256: "contended", at: index)
                    do {
                        try await stores[index % stores.count].insertImage(
                            image, publishing: Make.message(for: image), allowDuplicate: false)
                        return true
                    } catch is DuplicateImageError {
                        return false
                    }
                }
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
    }
}
