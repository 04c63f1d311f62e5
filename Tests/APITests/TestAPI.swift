import EmbeddedVectorIndex
import Emulator
import FileSystemStorage
import FirestoreStorage
import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ImageAPICore
import ImageProcessing
import LocalPush
import Locking
import Logging
import MemoryStorage
import PostgresStorage
import SQLiteStorage
import Testing

/// A clock tests move by hand.
final class ManualClock: TimeSource {
    private let current: Locked<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = Locked(start) }

    func now() -> Date { current.withLock { $0 } }

    func advance(days: Double) { current.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }

    func advance(seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Every log line the router wrote during a test, as Cloud Logging JSON.
final class LogLines: Sendable {
    private let lines = Locked<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var all: [String] { lines.withLock { $0 } }

    /// The lines whose JSON has `field` equal to `value`.
    func matching(_ field: String, _ value: String) -> [[String: Any]] {
        all.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }.filter { $0[field] as? String == value }
    }
}

/// Removes a test's data folder once every `TestAPI` over it is gone.
final class FolderRemovedWhenDone: Sendable {
    let path: String

    init(_ path: String) { self.path = path }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The API wired as the emulator wires it, over the in-memory metadata store (or a real SQLite
/// file), a real vector index and blob folder and the real libvips codec, in a fresh temporary folder.
struct TestAPI {
    /// The metadata backends the tests that run on each of them take: memory, SQLite, and
    /// Firestore on Google's emulator and PostgreSQL when the test command started them.
    static var metadataBackends: [BackendSelection.Metadata] {
        [.memory, .sqlite]
            + (ProcessInfo.processInfo.environment["TEST_FIRESTORE_EMULATOR_HOST"] == nil ? [] : [.firestore])
            + (ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] == nil ? [] : [.postgres])
    }

    /// Every metadata port: in memory (the default, fast) or the SQLite file, for the tests of
    /// durability and of what SQLite itself stores.
    let store: any MetadataStore & ImageStore & OutboxQueue & DeadLetterQueue
    let services: APIServices
    let images: ImageServices
    let vectors: SQLiteVectorIndex
    let clock: ManualClock
    let databasePath: String
    let blobFolder: String
    /// The data folder (a second `TestAPI` can reopen it, as a restarted process would).
    let folder: String
    /// Removes the folder after the last `TestAPI` over it.
    let folderRemoval: FolderRemovedWhenDone
    let pubSubSettings = LocalPubSubSettings(maxDeliveryAttempts: 3, retryBaseMilliseconds: 1000)
    /// Who may deliver events (`nil`: anyone, as in development).
    let eventAuthenticator: (any EventAuthenticator)?
    /// What the router logged.
    let logs = LogLines()

    init(
        environment: DeploymentEnvironment = .development, expiryDays: Int = 365, embedder: (any Embedder)? = nil,
        imageSettings: ((String) -> ImageSettings)? = nil, reopening earlier: TestAPI? = nil,
        eventAuthenticator: (any EventAuthenticator)? = nil, authFailureLimit: Int = 20,
        metadata: BackendSelection.Metadata = .memory,
        apiKeySecret: String = "test-secret-of-at-least-thirty-two-characters", previousAPIKeySecret: String? = nil
    ) throws {
        self.eventAuthenticator = eventAuthenticator
        let folder =
            earlier.map { URL(fileURLWithPath: $0.folder) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("image-api-tests-\(UUID())")
        self.folder = folder.path
        self.folderRemoval = earlier?.folderRemoval ?? FolderRemovedWhenDone(folder.path)
        let settings = APISettings(
            environment: environment, apiKeySecret: apiKeySecret, previousAPIKeySecret: previousAPIKeySecret,
            apiKeyExpiryDays: expiryDays, dataDirectory: folder.path, authFailureLimit: authFailureLimit)
        databasePath = settings.databasePath
        blobFolder = folder.appendingPathComponent("blobs").path
        switch earlier == nil ? metadata : .sqlite {
        case .sqlite: store = try SQLiteMetadataStore(path: settings.databasePath)
        case .memory: store = MemoryMetadataStore()
        case .firestore:
            // A project of its own on the emulator the test command started.
            let host = try #require(ProcessInfo.processInfo.environment["TEST_FIRESTORE_EMULATOR_HOST"])
            store = FirestoreMetadataStore(
                client: FirestoreClient(
                    endpoint: "http://\(host)", project: "api-\(UUID().uuidString.prefix(12).lowercased())",
                    concurrentTransactions: 1))
        case .postgres:
            // A schema of its own on the server the test command started, created by the first query.
            store = PostgresMetadataStore(
                settings: try PostgresSettings(
                    url: try #require(ProcessInfo.processInfo.environment["TEST_DATABASE_URL"]),
                    schema: "api_\(UUID().uuidString.prefix(13).lowercased().replacingOccurrences(of: "-", with: ""))",
                    poolSize: 40))
        }
        clock = ManualClock()
        services = APIServices(store: store, settings: settings, clock: clock)
        vectors = try SQLiteVectorIndex(path: settings.databasePath)
        images = ImageServices(
            store: store, blobs: try FileSystemBlobStore(root: blobFolder), codec: VipsImageCodec(),
            embedder: embedder ?? VisualFeaturesEmbedder(), vectors: vectors, deadLetters: store,
            settings: imageSettings?(blobFolder) ?? ImageSettings(blobDirectory: blobFolder))
    }

    /// Runs `body` with a client of the real router serving every function. The client's
    /// `deliver()` runs the local Pub/Sub once, pushing through the same router.
    func run<T: Sendable>(_ body: @Sendable (APIClient) async throws -> T) async throws -> T {
        let hosted = HostedServices(
            configuration: try HostConfiguration(EnvironmentVariables(["DATA_DIR": folder])), api: services,
            imageStore: store, deadLetters: store, outbox: store, logger: Logger(label: "test-api"),
            eventAuthenticator: eventAuthenticator)
        let (router, _) = FunctionServer.buildRouter(
            functions: Emulator.functions(hosted, images: images), configuration: ServerConfiguration(),
            readiness: { [store] in try await store.checkReady() })
        let logs = logs
        let logger = Logger(label: "test-api") { label in
            CloudLoggingLogHandler(label: label, level: .info) { line in logs.append(line) }
        }
        return try await Application(router: router, logger: logger).test(.router) { client in
            let pubSub = OutboxRelay(
                queue: store, settings: pubSubSettings,
                publisher: LocalPushPublisher(transport: RouterPushTransport(client: client)), clock: clock,
                logger: Logger(label: "test-pubsub"))
            return try await body(APIClient(client: client, pubSub: pubSub))
        }
    }

    /// Creates an administrator directly, as `emulator bootstrap-admin` does.
    func bootstrapAdmin(email: String = "root@example.com") async throws -> (user: User, key: String) {
        let (user, key) = try await AdministratorBootstrap(services: services)
            .createAdministratorKey(email: email, name: "Root", teamName: "Operators")
        return (user, try #require(key.key))
    }
}

/// A response, with helpers to read its JSON.
struct Reply: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: Data

    func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        do {
            return try JSONCoding.makeDecoder().decode(T.self, from: body)
        } catch {
            Issue.record("could not decode \(T.self) from \(status.code) \(String(decoding: body, as: UTF8.self))")
            throw error
        }
    }

    /// The `detail` of an error answer.
    var detail: String? { try? JSONDecoder().decode([String: String].self, from: body)["detail"] }

    /// The issues of a 422 answer.
    var issues: [ValidationError.Issue] {
        (try? JSONDecoder().decode([String: [ValidationError.Issue]].self, from: body)["detail"]) ?? []
    }
}

/// Test-side views of answers whose production types only encode.
struct KeyVerificationReply: Decodable, Equatable {
    let user_id: UserID
    let team_id: TeamID
    let is_admin: Bool
    let key_id: APIKeyID
    let expires_at: Date
}

struct ListReply<Item: Decodable>: Decodable {
    let items: [Item]
    let total: Int
    let skip: Int
    let limit: Int

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let itemsKey = try #require(container.allKeys.first { !["total", "skip", "limit"].contains($0.stringValue) })
        items = try container.decode([Item].self, forKey: itemsKey)
        total = try container.decode(Int.self, forKey: Key(stringValue: "total")!)
        skip = try container.decode(Int.self, forKey: Key(stringValue: "skip")!)
        limit = try container.decode(Int.self, forKey: Key(stringValue: "limit")!)
    }
}

/// Pushes Pub/Sub deliveries through the in-process router, as the emulator does over HTTP.
struct RouterPushTransport: PushTransport {
    let client: any TestClientProtocol

    var isReady: Bool { true }

    func push(headers: [(String, String)], body: Data) async throws -> (status: Int, body: String) {
        var fields: HTTPFields = [:]
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        let response = try await client.executeRequest(
            uri: LocalPushFactory.defaultPushPath, method: .post, headers: fields, body: ByteBuffer(bytes: body))
        return (Int(response.status.code), String(buffer: response.body))
    }
}

/// One async helper per endpoint, over the in-process router.
struct APIClient: Sendable {
    let client: any TestClientProtocol
    let pubSub: OutboxRelay

    func send(
        _ method: HTTPRequest.Method, _ uri: String, key: String? = nil, json: String? = nil
    ) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let key { headers[HTTPField.Name("X-API-Key")!] = key }
        if json != nil { headers[.contentType] = "application/json" }
        return try await send(method, uri, headers: headers, json: json)
    }

    func send(
        _ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields, json: String? = nil
    ) async throws -> Reply {
        let response = try await client.executeRequest(
            uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        return Reply(status: response.status, headers: response.headers, body: Data(buffer: response.body))
    }

    static func body(_ fields: [String: Any?]) -> String {
        let present = fields.compactMapValues { $0 }
        let data = try! JSONSerialization.data(withJSONObject: present, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    // Teams
    func createTeam(_ name: String, description: String? = nil, key: String? = nil) async throws -> Reply {
        try await send(.post, "/api/v1/teams", key: key, json: Self.body(["name": name, "description": description]))
    }
    func listTeams(_ query: String = "", key: String? = nil) async throws -> Reply {
        try await send(.get, "/api/v1/teams\(query)", key: key)
    }
    func getTeam(_ id: String, key: String? = nil) async throws -> Reply {
        try await send(.get, "/api/v1/teams/\(id)", key: key)
    }
    func updateTeam(_ id: String, json: String, key: String? = nil) async throws -> Reply {
        try await send(.put, "/api/v1/teams/\(id)", key: key, json: json)
    }
    func deleteTeam(_ id: String, key: String? = nil) async throws -> Reply {
        try await send(.delete, "/api/v1/teams/\(id)", key: key)
    }

    // Users
    func createUser(
        email: String, name: String = "Someone", teamID: TeamID, isAdmin: Bool? = nil, key: String? = nil
    ) async throws -> Reply {
        try await send(
            .post, "/api/v1/users", key: key,
            json: Self.body(["email": email, "name": name, "team_id": teamID.lowercasedString, "is_admin": isAdmin]))
    }
    func listUsers(_ query: String = "", key: String? = nil) async throws -> Reply {
        try await send(.get, "/api/v1/users\(query)", key: key)
    }
    func getUser(_ id: String, key: String? = nil) async throws -> Reply {
        try await send(.get, "/api/v1/users/\(id)", key: key)
    }
    func updateUser(_ id: String, json: String, key: String? = nil) async throws -> Reply {
        try await send(.put, "/api/v1/users/\(id)", key: key, json: json)
    }
    func deleteUser(_ id: String, key: String? = nil) async throws -> Reply {
        try await send(.delete, "/api/v1/users/\(id)", key: key)
    }
    func getMe(_ query: String = "", key: String? = nil) async throws -> Reply {
        try await send(.get, "/api/v1/users/me\(query)", key: key)
    }
    func updateMe(_ query: String = "", json: String, key: String? = nil) async throws -> Reply {
        try await send(.put, "/api/v1/users/me\(query)", key: key, json: json)
    }

    // API keys
    func createKey(userID: UserID, teamID: TeamID, name: String = "laptop", key: String? = nil) async throws -> Reply {
        try await send(
            .post, "/api/v1/auth/api-keys?user_id=\(userID.lowercasedString)&team_id=\(teamID.lowercasedString)",
            key: key, json: Self.body(["name": name]))
    }
    func listKeys(_ query: String = "", key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/auth/api-keys\(query)", key: key)
    }
    func revokeKey(_ id: APIKeyID, key: String?) async throws -> Reply {
        try await send(.delete, "/api/v1/auth/api-keys/\(id.lowercasedString)", key: key)
    }
    func createKeyAsAdmin(for userID: UserID, name: String = "issued", key: String?) async throws -> Reply {
        try await send(
            .post, "/api/v1/auth/admin/api-keys/\(userID.lowercasedString)", key: key,
            json: Self.body(["name": name]))
    }
    func verify(key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/auth/verify", key: key)
    }

    // Flows

    /// Creates a team, a user in it and a key for that user (development mode, or with an admin key).
    func member(
        of team: Team? = nil, email: String, isAdmin: Bool = false, adminKey: String? = nil
    ) async throws -> (team: Team, user: User, key: String) {
        let team = try await { () async throws -> Team in
            if let team { return team }
            return try await createTeam("Team of \(email)", key: adminKey).decode(Team.self)
        }()
        let user = try await createUser(email: email, teamID: team.id, isAdmin: isAdmin, key: adminKey)
            .decode(User.self)
        let created = try await createKey(userID: user.id, teamID: team.id, key: adminKey).decode(APIKeyView.self)
        return (team, user, try #require(created.key))
    }
}
