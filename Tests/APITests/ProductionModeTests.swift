import Emulator
import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import SQLiteStorage
import TestSupport
import Testing

@Suite("Production: management needs an admin key")
struct ProductionModeTests {
    @Test("management endpoints answer 401 without a key and 403 with a non-admin key")
    func managementIsProtected() async throws {
        let api = try TestAPI(environment: .production)
        let (admin, adminKey) = try await api.bootstrapAdmin()
        try await api.run { (client) async throws in
            let (team, user, userKey) = try await client.member(email: "ada@example.com", adminKey: adminKey)
            let teamID = team.id.lowercasedString
            let userID = user.id.lowercasedString
            let management: [(String, @Sendable (String?) async throws -> Reply)] = [
                ("POST /teams", { try await client.createTeam("X", key: $0) }),
                ("GET /teams", { try await client.listTeams(key: $0) }),
                ("GET /teams/{id}", { try await client.getTeam(teamID, key: $0) }),
                ("PUT /teams/{id}", { try await client.updateTeam(teamID, json: #"{"name": "Y"}"#, key: $0) }),
                ("DELETE /teams/{id}", { try await client.deleteTeam(teamID, key: $0) }),
                ("POST /users", { try await client.createUser(email: "new@example.com", teamID: team.id, key: $0) }),
                ("GET /users", { try await client.listUsers(key: $0) }),
                ("GET /users/{id}", { try await client.getUser(userID, key: $0) }),
                ("PUT /users/{id}", { try await client.updateUser(userID, json: #"{"is_admin": true}"#, key: $0) }),
                ("DELETE /users/{id}", { try await client.deleteUser(userID, key: $0) }),
                ("POST /auth/api-keys", { try await client.createKey(userID: user.id, teamID: team.id, key: $0) }),
                ("POST /auth/admin/api-keys/{id}", { try await client.createKeyAsAdmin(for: user.id, key: $0) }),
            ]
            for (name, call) in management {
                let anonymous = try await call(nil)
                #expect(anonymous.status == .unauthorized, "\(name) without a key")
                #expect(anonymous.headers[.wwwAuthenticate] != nil, "\(name) challenge")
                let forbidden = try await call(userKey)
                #expect(forbidden.status == .forbidden, "\(name) with a non-admin key")
                #expect(forbidden.detail == "Admin privileges required")
            }
            #expect(try await client.getUser(userID, key: adminKey).decode(User.self) == user)
            #expect(try await client.getTeam(admin.teamID.lowercasedString, key: adminKey).status == .ok)
            #expect(try await client.listUsers(key: adminKey).decode(ListReply<User>.self).total == 2)
        }
    }

    @Test("/users/me uses the key's owner; another user_id is 403")
    func meInProduction() async throws {
        let api = try TestAPI(environment: .production)
        let (admin, adminKey) = try await api.bootstrapAdmin()
        try await api.run { (client) async throws in
            let (_, user, key) = try await client.member(email: "ada@example.com", adminKey: adminKey)
            #expect(try await client.getMe(key: key).decode(User.self) == user)
            #expect(try await client.getMe("?user_id=\(user.id.lowercasedString)", key: key).status == .ok)
            #expect(try await client.getMe("?user_id=\(admin.id.lowercasedString)", key: key).status == .forbidden)
            #expect(try await client.getMe("?user_id=\(user.id.lowercasedString)").status == .unauthorized)
            let renamed = try await client.updateMe(json: #"{"name": "Ada L."}"#, key: key)
            #expect(try renamed.decode(User.self).name == "Ada L.")
        }
    }

    @Test("every /api/v1 operation in the OpenAPI document answers 401 without a key, before reading its body")
    func everyOperationNeedsAKey() async throws {
        let api = try TestAPI(environment: .production)
        try await api.run { (client) async throws in
            let operations = OpenAPIDocument.operations.filter { $0.contains(" /api/v1/") }
            #expect(operations.count >= 25)
            for operation in operations.sorted() {
                let parts = operation.split(separator: " ", maxSplits: 1).map(String.init)
                let path = parts[1].replacingOccurrences(
                    of: #"\{[a-z_]+\}"#, with: UUID().uuidString.lowercased(), options: .regularExpression)
                let method = HTTPRequest.Method(parts[0])!
                // A body the handlers would refuse: authentication must answer first.
                let reply = try await client.send(method, path, json: method == .get ? nil : "not json")
                #expect(reply.status == .unauthorized, "\(operation): \(reply.status)")
            }
        }
    }
}

@Suite("Settings and administrator bootstrap")
struct SettingsTests {
    @Test(
        "production refuses a missing, default or short API_KEY_SECRET",
        arguments: [
            nil, APISettings.developmentKeySecret, "too-short",
        ])
    func productionSecret(_ secret: String?) {
        var values = ["ENVIRONMENT": "production"]
        values["API_KEY_SECRET"] = secret
        let error = #expect(throws: ConfigurationError.self) { try APISettings(EnvironmentVariables(values)) }
        #expect(error?.variable == "API_KEY_SECRET")
    }

    @Test("defaults, and every variable read")
    func variables() throws {
        let defaults = try APISettings(EnvironmentVariables([:]))
        #expect(defaults.environment == .development)
        #expect(defaults.apiKeyExpiryDays == 365)
        #expect(defaults.databasePath == "./data/imagedb.sqlite")
        let set = try APISettings(
            EnvironmentVariables([
                "ENVIRONMENT": "Production", "API_KEY_SECRET": String(repeating: "s", count: 40),
                "API_KEY_EXPIRY_DAYS": "90", "DATA_DIR": "/var/lib/images", "BOOTSTRAP_ADMIN_EMAIL": "Ops@Example.com",
            ]))
        #expect(set.environment == .production && set.apiKeyExpiryDays == 90)
        #expect(set.databasePath == "/var/lib/images/imagedb.sqlite")
        #expect(set.bootstrapAdminEmail == "ops@example.com")
        #expect(throws: ConfigurationError.self) { try APISettings(EnvironmentVariables(["API_KEY_EXPIRY_DAYS": "0"])) }
        #expect(throws: ConfigurationError.self) { try APISettings(EnvironmentVariables(["ENVIRONMENT": "staging"])) }
        #expect(throws: ConfigurationError.self) { try APISettings(EnvironmentVariables(["BOOTSTRAP_ADMIN_KEY": "x"])) }
    }

    @Test(
        "rotating API_KEY_SECRET: keys made before still authenticate while API_KEY_PREVIOUS_SECRET names the old secret, and only then"
    )
    func keySecretRotation() async throws {
        let api = try TestAPI()
        let (_, user, before) = try await api.run { try await $0.member(email: "ada@example.com") }
        let oldSecret = "test-secret-of-at-least-thirty-two-characters"
        let newSecret = String(repeating: "n", count: 40)
        let rotating = APIKeyService(
            store: api.store, secret: newSecret, previousSecret: oldSecret, expiryDays: 30, clock: SystemTimeSource())
        #expect(try await rotating.authenticate(presented: before).user.id == user.id)
        let after = try #require(try await rotating.issueKey(for: user, name: "after", description: nil).key)
        #expect(try await rotating.authenticate(presented: after).user.id == user.id)

        // The rotation over (API_KEY_PREVIOUS_SECRET removed): keys made since work, those made before do not.
        let rotated = APIKeyService(store: api.store, secret: newSecret, expiryDays: 30, clock: SystemTimeSource())
        #expect(try await rotated.authenticate(presented: after).user.id == user.id)
        await #expect(throws: DomainError.self) { try await rotated.authenticate(presented: before) }
        // A wrong secret is not let in by the previous one.
        let other = APIKeyService(
            store: api.store, secret: newSecret, previousSecret: String(repeating: "x", count: 40), expiryDays: 30,
            clock: SystemTimeSource())
        await #expect(throws: DomainError.self) { try await other.authenticate(presented: before) }

        let read = try APISettings(
            EnvironmentVariables(["API_KEY_SECRET": newSecret, "API_KEY_PREVIOUS_SECRET": oldSecret]))
        #expect(read.previousAPIKeySecret == oldSecret)
        for refused in ["short", newSecret] {
            let error = #expect(throws: ConfigurationError.self) {
                try APISettings(
                    EnvironmentVariables(["API_KEY_SECRET": newSecret, "API_KEY_PREVIOUS_SECRET": refused]))
            }
            #expect(error?.variable == "API_KEY_PREVIOUS_SECRET")
        }
    }

    @Test(
        "BOOTSTRAP_ADMIN_KEY during a rotation of API_KEY_SECRET: accepted while the previous secret is set, refused (naming it) once it is not"
    )
    func bootstrapKeyDuringRotation() async throws {
        let oldSecret = "test-secret-of-at-least-thirty-two-characters"
        let newSecret = String(repeating: "n", count: 40)
        let api = try TestAPI(environment: .production, metadata: .sqlite)
        var generator = SeededGenerator(seed: 99)
        let text = APIKeyText.generate(using: &generator)
        #expect(try await AdministratorBootstrap(services: api.services).ensureKey(text, email: "ops@example.com"))

        let rotating = try TestAPI(
            environment: .production, reopening: api, apiKeySecret: newSecret, previousAPIKeySecret: oldSecret)
        #expect(
            try await AdministratorBootstrap(services: rotating.services).ensureKey(text, email: "ops@example.com")
                == false)
        let verified = try await rotating.run { try await $0.verify(key: text.text) }
        #expect(verified.status == .ok)

        let rotated = try TestAPI(environment: .production, reopening: api, apiKeySecret: newSecret)
        await #expect(throws: AdministratorBootstrap.Refusal.self) {
            try await AdministratorBootstrap(services: rotated.services).ensureKey(text, email: "ops@example.com")
        }
    }

    @Test("BOOTSTRAP_ADMIN_KEY is registered once, then accepted; a clashing secret is refused")
    func bootstrapKey() async throws {
        let api = try TestAPI(environment: .production, metadata: .sqlite)
        var generator = SeededGenerator(seed: 98)
        let text = APIKeyText.generate(using: &generator)
        let bootstrap = AdministratorBootstrap(services: api.services)
        #expect(try await bootstrap.ensureKey(text, email: "ops@example.com"))
        #expect(try await bootstrap.ensureKey(text, email: "ops@example.com") == false)
        let clash = APIKeyText(keyID: text.keyID, secret: String(repeating: "B", count: 43))
        await #expect(throws: AdministratorBootstrap.Refusal.self) {
            try await bootstrap.ensureKey(clash, email: "ops@example.com")
        }
        let verified = try await api.run { try await $0.verify(key: text.text).decode(KeyVerificationReply.self) }
        #expect(verified.is_admin)

        // Deleted by its owners, it stays deleted: the next start does not bring it back, even
        // from a reopened store as a restarted process would.
        #expect(try await api.services.users.delete(id: verified.user_id))
        let restarted = try TestAPI(environment: .production, reopening: api)
        #expect(
            try await AdministratorBootstrap(services: restarted.services).ensureKey(text, email: "ops@example.com")
                == false)
        #expect(try await restarted.store.user(email: "ops@example.com") == nil)
        let refused = try await restarted.run { try await $0.verify(key: text.text) }
        #expect(refused.status == .unauthorized)
    }

    @Test("bootstrapping an e-mail that belongs to a non-admin is refused")
    func bootstrapNonAdmin() async throws {
        let api = try TestAPI()
        _ = try await api.run { try await $0.member(email: "ada@example.com") }
        await #expect(throws: AdministratorBootstrap.Refusal.self) {
            try await AdministratorBootstrap(services: api.services)
                .createAdministratorKey(email: "ADA@example.com", name: "A", teamName: "T")
        }
    }
}

@Suite("SQLite metadata store")
struct SQLiteStoreTests {
    @Test("data survives closing and reopening the file; migrations run once")
    func persistence() async throws {
        let api = try TestAPI(metadata: .sqlite)
        let (team, user, key) = try await api.run { try await $0.member(email: "ada@example.com") }
        let reopened = try SQLiteMetadataStore(path: api.databasePath)
        #expect(try await reopened.team(id: team.id) == team)
        #expect(try await reopened.user(email: "ada@example.com") == user)
        #expect(try await reopened.apiKey(id: try #require(APIKeyText(parsing: key)).keyID)?.userID == user.id)
        try await reopened.checkReady()
    }

    @Test("stores opened at once on a fresh file all migrate it (processes starting together)")
    func concurrentOpening() async throws {
        for _ in 0..<10 {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("race-\(UUID()).sqlite").path
            defer {
                for suffix in ["", "-wal", "-shm", ".migration-lock"] {
                    try? FileManager.default.removeItem(atPath: path + suffix)
                }
            }
            let opened = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let store = try SQLiteMetadataStore(path: path)
                        return try await store.teams(PageRequest()).total == 0
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(opened == 6)
        }
    }

    @Test("the database runs in WAL mode")
    func walMode() throws {
        let api = try TestAPI(metadata: .sqlite)
        #expect(FileManager.default.fileExists(atPath: api.databasePath + "-wal"))
    }

    @Test("an administrator's team, user and key are written together or not at all")
    func administratorIsAtomic() async throws {
        let api = try TestAPI(metadata: .sqlite)
        let before = try await api.store.teams(PageRequest()).total
        // Eight first starts at once: each finds no such user and writes team, user and key; the
        // e-mail lets one win, and the others' teams go with their failed transactions.
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do {
                        _ = try await AdministratorBootstrap(services: api.services)
                            .createAdministratorKey(email: "root@example.com", name: "R", teamName: "T")
                        return true
                    } catch let error as MetadataStoreError where error == .emailTaken {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.contains(true))
        #expect(try await api.store.teams(PageRequest()).total == before + 1, "only the winner's team")
        #expect(try await api.store.users(teamID: nil, PageRequest()).total == 1)
    }
}
