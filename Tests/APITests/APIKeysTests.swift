import Crypto
import Foundation
import FunctionHosting
import GRDB
import HTTPTypes
import ImageAPICore
import Testing

@Suite("API keys")
struct APIKeysTests {
    @Test("a created key is shown once, works, and is listed without its secret")
    func createListVerify() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.createTeam("A").decode(Team.self)
            let user = try await client.createUser(email: "ada@example.com", teamID: team.id).decode(User.self)
            let created = try await client.createKey(userID: user.id, teamID: team.id, name: "ci")
            #expect(created.status == .created)
            let key = try created.decode(APIKeyView.self)
            let text = try #require(key.key)
            let parsed = try #require(APIKeyText(parsing: text))
            #expect(parsed.keyID == key.id)
            #expect(text.hasPrefix(key.prefix) && key.prefix.count == 12 && key.prefix.hasPrefix("imk_"))
            #expect(key.expiresAt == api.clock.now().addingTimeInterval(365 * 86_400))
            #expect(key.isActive && key.lastUsedAt == nil && key.name == "ci")

            let verified = try await client.verify(key: text).decode(KeyVerificationReply.self)
            #expect(
                verified
                    == KeyVerificationReply(
                        user_id: user.id, team_id: team.id, is_admin: false, key_id: key.id, expires_at: key.expiresAt))

            let listed = try await client.listKeys(key: text)
            let page = try listed.decode(ListReply<APIKeyView>.self)
            #expect(page.total == 1 && page.items.first?.id == key.id)
            #expect(page.items.first?.key == nil)
            #expect(page.items.first?.lastUsedAt == api.clock.now())
            #expect(!String(decoding: listed.body, as: UTF8.self).contains(parsed.secret))
        }
    }

    @Test(
        "100 concurrent key creations for one user all succeed, and every key verifies",
        arguments: TestAPI.metadataBackends)
    func concurrentKeyCreations(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let team = try await client.createTeam("Busy").decode(Team.self)
            let user = try await client.createUser(email: "busy@example.com", teamID: team.id).decode(User.self)
            let keys = try await withThrowingTaskGroup(of: String?.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let reply = try await client.createKey(userID: user.id, teamID: team.id, name: "key \(index)")
                        #expect(
                            reply.status == .created, "\(reply.status): \(String(decoding: reply.body, as: UTF8.self))")
                        return try? reply.decode(APIKeyView.self).key
                    }
                }
                return try await group.reduce(into: [String]()) { keys, key in if let key { keys.append(key) } }
            }
            #expect(Set(keys).count == 100)
            let verified = try await withThrowingTaskGroup(of: Bool.self) { group in
                for key in keys { group.addTask { try await client.verify(key: key).status == .ok } }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(verified == 100)
            #expect(
                try await client.listKeys("?limit=100", key: keys[0]).decode(ListReply<APIKeyView>.self).total == 100)
        }
    }

    @Test("Authorization: Bearer works like X-API-Key")
    func bearer() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, user, key) = try await client.member(email: "ada@example.com")
            let reply = try await client.send(.get, "/api/v1/auth/verify", headers: [.authorization: "Bearer \(key)"])
            #expect(try reply.decode(KeyVerificationReply.self).user_id == user.id)
        }
    }

    @Test("only an HMAC of the secret is stored in the SQLite file")
    func storedHash() async throws {
        let api = try TestAPI(metadata: .sqlite)
        let text = try await api.run { try await $0.member(email: "ada@example.com").key }
        let parsed = try #require(APIKeyText(parsing: text))
        let queue = try DatabaseQueue(path: api.databasePath)
        let stored = try await queue.read { db in
            try Data.fetchOne(
                db, sql: "SELECT secret_hash FROM api_keys WHERE id = ?", arguments: [parsed.keyID.lowercasedString])
        }
        let expected = HMAC<SHA256>.authenticationCode(
            for: Data(parsed.secret.utf8),
            using: SymmetricKey(data: Data("test-secret-of-at-least-thirty-two-characters".utf8)))
        #expect(stored == Data(expected))
        let dump = try await queue.read { db in
            try String.fetchAll(db, sql: "SELECT quote(secret_hash) || name || prefix FROM api_keys")
        }
        #expect(!dump.joined().contains(parsed.secret))
    }

    @Test("key creation checks the user belongs to the team, and the query parameters")
    func creationChecks() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (teamA, userA, _) = try await client.member(email: "ada@example.com")
            let (teamB, _, _) = try await client.member(email: "bob@example.com")
            let wrongTeam = try await client.createKey(userID: userA.id, teamID: teamB.id)
            #expect(wrongTeam.status == .notFound)
            #expect(try await client.createKey(userID: UserID(), teamID: teamA.id).status == .notFound)
            #expect(try await client.createKey(userID: userA.id, teamID: TeamID()).status == .notFound)
            let missing = try await client.send(
                .post, "/api/v1/auth/api-keys?user_id=\(userA.id.lowercasedString)", json: #"{"name": "x"}"#)
            #expect(missing.status == .unprocessableContent)
            #expect(missing.issues.first?.loc == ["query", "team_id"])
            let noName = try await client.send(
                .post,
                "/api/v1/auth/api-keys?user_id=\(userA.id.lowercasedString)&team_id=\(teamA.id.lowercasedString)",
                json: #"{"name": ""}"#)
            #expect(noName.status == .unprocessableContent)
        }
    }

    @Test("revoking a key makes it fail; revoking again is harmless")
    func revoke() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (team, user, first) = try await client.member(email: "ada@example.com")
            let second = try await client.createKey(userID: user.id, teamID: team.id).decode(APIKeyView.self)
            #expect(try await client.revokeKey(second.id, key: first).status == .noContent)
            let refused = try await client.verify(key: second.key)
            #expect(refused.status == .unauthorized)
            #expect(refused.detail == "API key has been revoked")
            #expect(try await client.revokeKey(second.id, key: first).status == .noContent)
            let listed = try await client.listKeys(key: first).decode(ListReply<APIKeyView>.self)
            #expect(listed.items.first { $0.id == second.id }?.isActive == false)
            #expect(try await client.revokeKey(APIKeyID(), key: first).status == .notFound)
        }
    }

    @Test("an admin creates keys for any user; others get 403")
    func adminCreation() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, admin, adminKey) = try await client.member(email: "root@example.com", isAdmin: true)
            let (_, user, userKey) = try await client.member(email: "ada@example.com")
            let issued = try await client.createKeyAsAdmin(for: user.id, key: adminKey)
            #expect(issued.status == .created)
            let view = try issued.decode(APIKeyView.self)
            #expect(view.userID == user.id && view.teamID == user.teamID)
            #expect(try await client.verify(key: view.key).status == .ok)
            let forbidden = try await client.createKeyAsAdmin(for: admin.id, key: userKey)
            #expect(forbidden.status == .forbidden)
            #expect(forbidden.detail == "Admin privileges required")
            #expect(try await client.createKeyAsAdmin(for: UserID(), key: adminKey).status == .notFound)
        }
    }

    @Test("a deactivated user cannot be given a key (409)")
    func deactivatedUserKey() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.createTeam("A").decode(Team.self)
            let user = try await client.createUser(email: "ada@example.com", teamID: team.id).decode(User.self)
            _ = try await client.updateUser(user.id.lowercasedString, json: #"{"is_active": false}"#)
            #expect(try await client.createKey(userID: user.id, teamID: team.id).status == .conflict)
        }
    }
}
