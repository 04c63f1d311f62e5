import Foundation
import HTTPTypes
import ImageAPICore
import Testing

@Suite("Authentication: every refused key is a 401 with a challenge")
struct AuthenticationTests {
    func expectUnauthorized(_ reply: Reply, _ detail: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == .unauthorized, sourceLocation: sourceLocation)
        #expect(reply.detail == detail, sourceLocation: sourceLocation)
        #expect(reply.headers[.wwwAuthenticate] == #"Bearer realm="image-api""#, sourceLocation: sourceLocation)
    }

    @Test("missing, malformed, unknown and wrong-secret keys")
    func badKeys() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, _, key) = try await client.member(email: "ada@example.com")
            expectUnauthorized(
                try await client.verify(key: nil), "Missing API key: send it in X-API-Key or Authorization: Bearer")
            expectUnauthorized(try await client.verify(key: "not-a-key"), "Malformed API key")
            let parsed = try #require(APIKeyText(parsing: key))
            let unknown = APIKeyText(keyID: APIKeyID(), secret: parsed.secret).text
            expectUnauthorized(try await client.verify(key: unknown), "Invalid API key")
            let wrongSecret = APIKeyText(keyID: parsed.keyID, secret: String(repeating: "A", count: 43)).text
            expectUnauthorized(try await client.verify(key: wrongSecret), "Invalid API key")
            let basic = try await client.send(.get, "/api/v1/auth/verify", headers: [.authorization: "Basic YTpi"])
            expectUnauthorized(basic, "Authorization header must use the Bearer scheme")
        }
    }

    @Test("a key stops working when it expires (injected clock)")
    func expiry() async throws {
        let api = try TestAPI(expiryDays: 30)
        try await api.run { (client) async throws in
            let (_, _, key) = try await client.member(email: "ada@example.com")
            api.clock.advance(days: 29.9)
            #expect(try await client.verify(key: key).status == .ok)
            api.clock.advance(days: 0.2)
            expectUnauthorized(try await client.verify(key: key), "API key has expired")
        }
    }

    @Test("keys of deactivated users are refused, and work again on reactivation")
    func deactivatedUser() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, user, key) = try await client.member(email: "ada@example.com")
            _ = try await client.updateUser(user.id.lowercasedString, json: #"{"is_active": false}"#)
            expectUnauthorized(try await client.verify(key: key), "User is deactivated")
            _ = try await client.updateUser(user.id.lowercasedString, json: #"{"is_active": true}"#)
            #expect(try await client.verify(key: key).status == .ok)
        }
    }

    @Test("deleting a user revokes their keys")
    func deletedUser() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, user, key) = try await client.member(email: "ada@example.com")
            #expect(try await client.deleteUser(user.id.lowercasedString).status == .noContent)
            expectUnauthorized(try await client.verify(key: key), "Invalid API key")
            #expect(try await api.store.apiKey(id: try #require(APIKeyText(parsing: key)).keyID) == nil)
        }
    }

    @Test("last_used_at is recorded, at most once a minute")
    func lastUsed() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, _, key) = try await client.member(email: "ada@example.com")
            let id = try #require(APIKeyText(parsing: key)).keyID
            _ = try await client.verify(key: key)
            let first = try #require(try await api.store.apiKey(id: id)?.lastUsedAt)
            api.clock.advance(days: 10.0 / 86_400)
            _ = try await client.verify(key: key)
            #expect(try await api.store.apiKey(id: id)?.lastUsedAt == first)
            api.clock.advance(days: 60.0 / 86_400)
            _ = try await client.verify(key: key)
            #expect(try await api.store.apiKey(id: id)?.lastUsedAt == api.clock.now())
        }
    }
}

@Suite("Team isolation: another team's ids answer 404")
struct IsolationTests {
    @Test("a user cannot revoke another user's key; an admin revokes any team's, with an audit line for another team")
    func revokeAcrossTeams() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (teamA, _, keyA) = try await client.member(email: "a@example.com")
            let (_, _, keyB) = try await client.member(email: "b@example.com")
            let (teamB, _, adminB) = try await client.member(email: "admin-b@example.com", isAdmin: true)
            let (_, adminAUser, adminA) = try await client.member(
                of: teamA, email: "admin-a@example.com", isAdmin: true)
            let idA = try #require(APIKeyText(parsing: keyA)).keyID
            let idB = try #require(APIKeyText(parsing: keyB)).keyID

            let byOtherUser = try await client.revokeKey(idA, key: keyB)
            #expect(byOtherUser.status == .notFound)
            #expect(byOtherUser.detail == "API key not found")
            #expect(try await client.verify(key: keyA).status == .ok)
            #expect(api.logs.matching("audit", "cross_team_management").isEmpty)

            // Administrators manage every team's keys: B's admin revokes a key of team A.
            #expect(try await client.revokeKey(idA, key: adminB).status == .noContent)
            #expect(try await client.verify(key: keyA).status == .unauthorized)
            let audit = try #require(api.logs.matching("audit", "cross_team_management").first)
            #expect(audit["action"] as? String == "revoke_api_key")
            #expect(audit["key_id"] as? String == idA.lowercasedString)
            #expect(audit["target_team_id"] as? String == teamA.id.lowercasedString)
            #expect(audit["actor_team_id"] as? String == teamB.id.lowercasedString)
            #expect(audit["actor_key_id"] as? String == APIKeyText(parsing: adminB)?.keyID.lowercasedString)

            // And the other way round; an admin acting in their own team leaves no audit line.
            #expect(try await client.revokeKey(idB, key: adminA).status == .noContent)
            #expect(api.logs.matching("audit", "cross_team_management").count == 2)
            let ownKey = try await client.createKey(userID: adminAUser.id, teamID: teamA.id)
            #expect(ownKey.status == .created)
            let ownID = try ownKey.decode(APIKeyView.self).id
            #expect(try await client.revokeKey(ownID, key: adminA).status == .noContent)
            #expect(api.logs.matching("audit", "cross_team_management").count == 2)

            // A key an administrator mints for another team's user reaches that team's images:
            // the audit line says so.
            let userA = try await client.createUser(email: "member-a@example.com", teamID: teamA.id, key: adminA)
                .decode(User.self)
            let minted = try await client.send(
                .post, "/api/v1/auth/admin/api-keys/\(userA.id.lowercasedString)", key: adminB, json: #"{"name": "x"}"#)
            #expect(minted.status == .created)
            let mintedKey = try minted.decode(APIKeyView.self).key ?? ""
            #expect(try await client.listImages(key: mintedKey).status == .ok)
            let grant = try #require(api.logs.matching("action", "create_api_key").last)
            #expect(grant["reaches"] as? String == "team_data")
            #expect(grant["target_team_id"] as? String == teamA.id.lowercasedString)
            #expect(grant["actor_team_id"] as? String == teamB.id.lowercasedString)
        }
    }

    @Test("an admin lists any user's keys with user_id; others may list only their own")
    func adminListsKeysOfAnyTeam() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, userB, keyB) = try await client.member(email: "b@example.com")
            let (_, userA, adminA) = try await client.member(email: "admin-a@example.com", isAdmin: true)
            let listed = try await client.listKeys("?user_id=\(userB.id.lowercasedString)", key: adminA)
            #expect(listed.status == .ok)
            #expect(try listed.decode(ListReply<APIKeyView>.self).items.map(\.userID) == [userB.id])
            #expect(api.logs.matching("action", "list_api_keys").count == 1)
            #expect(try await client.listKeys("?user_id=\(userA.id.lowercasedString)", key: keyB).status == .forbidden)
            #expect(try await client.listKeys("?user_id=\(userB.id.lowercasedString)", key: keyB).status == .ok)
            #expect(try await client.listKeys("?user_id=\(UUID().uuidString)", key: adminA).status == .notFound)
        }
    }

    @Test("administrators never see another team's data: images, search and dead letters stay with the key's team")
    func adminDataStaysInTeam() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, _, keyB) = try await client.member(email: "b@example.com")
            let (_, _, adminA) = try await client.member(email: "admin-a@example.com", isAdmin: true)
            let image = try await client.uploadProcessed("sunset.jpg", key: keyB)
            #expect(try await client.getImage(image.id, key: adminA).status == .notFound)
            #expect(try await client.listImages(key: adminA).decode(ListReply<ImageRecord>.self).total == 0)
            let search = try await client.search(json: #"{"image_id": "\#(image.id.lowercasedString)"}"#, key: adminA)
            #expect(search.status == .notFound)
            #expect(try await client.deleteImage(image.id, key: adminA).status == .notFound)
            #expect(try await client.getImage(image.id, key: keyB).status == .ok)
        }
    }

    @Test("listing shows only the caller's own keys")
    func listingIsOwn() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (team, _, keyA) = try await client.member(email: "a@example.com")
            let (_, _, keyB) = try await client.member(of: team, email: "b@example.com")
            let listA = try await client.listKeys(key: keyA).decode(ListReply<APIKeyView>.self)
            let listB = try await client.listKeys(key: keyB).decode(ListReply<APIKeyView>.self)
            #expect(listA.items.map(\.id) == [try #require(APIKeyText(parsing: keyA)).keyID])
            #expect(listB.items.map(\.id) == [try #require(APIKeyText(parsing: keyB)).keyID])
        }
    }

    @Test("a user moved to another team takes their keys along")
    func moveTeam() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, user, key) = try await client.member(email: "a@example.com")
            let other = try await client.createTeam("Other").decode(Team.self)
            _ = try await client.updateUser(
                user.id.lowercasedString, json: #"{"team_id": "\#(other.id.lowercasedString)"}"#)
            #expect(try await client.verify(key: key).decode(KeyVerificationReply.self).team_id == other.id)
            #expect(
                try await client.listKeys(key: key).decode(ListReply<APIKeyView>.self).items.first?.teamID == other.id)
        }
    }
}
