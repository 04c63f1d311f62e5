import Foundation
import ImageAPICore
import Testing

/// The contract of the metadata-store port (teams, users, keys, administrators), run against
/// every backend in ``MetadataBackend``.
@Suite("Metadata store contract")
struct MetadataStoreContractTests {
    @Test("teams list oldest first, page by page, with the total", arguments: MetadataBackend.allCases)
    func teamPages(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let teams = (0..<5).map { Make.team("Team \($0)", at: 10 - $0) }
            for team in teams { try await store.insertTeam(team) }
            let first = try await store.teams(PageRequest(skip: 0, limit: 2))
            let rest = try await store.teams(PageRequest(skip: 2, limit: 10))
            #expect(first.total == 5 && rest.total == 5)
            #expect((first.items + rest.items).map(\.name) == ["Team 4", "Team 3", "Team 2", "Team 1", "Team 0"])
            let beyond = try await store.teams(PageRequest(skip: 7, limit: 2))
            #expect(beyond.items.isEmpty && beyond.total == 5)
        }
    }

    @Test(
        "a team is updated, and deleted only when no user and no image belongs to it",
        arguments: MetadataBackend.allCases)
    func teamDeletion(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            var team = Make.team()
            try await store.insertTeam(team)
            team.name = "Renamed"
            #expect(try await store.updateTeam(team))
            #expect(try await store.team(id: team.id)?.name == "Renamed")
            #expect(try await store.updateTeam(Make.team()) == false)

            let user = Make.user("a@example.com", team: team)
            try await store.insertUser(user)
            #expect(try await store.deleteTeam(id: team.id) == .inUse)
            #expect(try await store.deleteUser(id: user.id))
            let image = Make.image(team: team)
            try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            #expect(try await store.deleteTeam(id: team.id) == .inUse)
            _ = try await store.deleteImage(id: image.id, teamID: team.id)
            #expect(try await store.deleteTeam(id: team.id) == .deleted)
            #expect(try await store.team(id: team.id) == nil)
            #expect(try await store.deleteTeam(id: team.id) == .notFound)
        }
    }

    @Test("users need an existing team and a free e-mail, on insert and on update", arguments: MetadataBackend.allCases)
    func userRules(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            await #expect(throws: MetadataStoreError.teamNotFound) {
                try await store.insertUser(Make.user("a@example.com", team: Make.team()))
            }
            let first = Make.user("a@example.com", team: team)
            try await store.insertUser(first)
            await #expect(throws: MetadataStoreError.emailTaken) {
                try await store.insertUser(Make.user("a@example.com", team: team))
            }
            var second = Make.user("b@example.com", team: team, at: 1)
            try await store.insertUser(second)
            second.email = "a@example.com"
            await #expect(throws: MetadataStoreError.emailTaken) { _ = try await store.updateUser(second) }
            second.email = "b@example.com"
            second.teamID = UUID()
            await #expect(throws: MetadataStoreError.teamNotFound) { _ = try await store.updateUser(second) }
            #expect(try await store.user(id: second.id)?.teamID == team.id)
            #expect(try await store.user(email: "A@Example.com")?.id == first.id)
            #expect(try await store.updateUser(Make.user("c@example.com", team: team)) == false)
        }
    }

    @Test("users list oldest first, by team, with totals", arguments: MetadataBackend.allCases)
    func userPages(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let red = Make.team("Red")
            let blue = Make.team("Blue")
            try await store.insertTeam(red)
            try await store.insertTeam(blue)
            for index in 0..<4 {
                try await store.insertUser(
                    Make.user("u\(index)@example.com", team: index < 3 ? red : blue, at: 5 - index))
            }
            let reds = try await store.users(teamID: red.id, PageRequest(skip: 1, limit: 1))
            #expect(reds.total == 3)
            #expect(reds.items.map(\.email) == ["u1@example.com"])
            let everyone = try await store.users(teamID: nil, PageRequest())
            #expect(everyone.total == 4)
            #expect(
                everyone.items.map(\.email) == ["u3@example.com", "u2@example.com", "u1@example.com", "u0@example.com"])
        }
    }

    @Test("of 20 concurrent creations of one e-mail exactly one succeeds", arguments: MetadataBackend.allCases)
    func concurrentEmail(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        do {
                            try await store.insertUser(Make.user("same@example.com", team: team))
                            return true
                        } catch let error as MetadataStoreError where error == .emailTaken {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 1)
            #expect(outcomes.filter { !$0 }.count == 19)
            #expect(try await store.users(teamID: team.id, PageRequest()).total == 1)
        }
    }

    @Test(
        "keys need their user, follow the user to a new team and go with the user", arguments: MetadataBackend.allCases)
    func keysFollowTheirUser(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let red = Make.team("Red")
            let blue = Make.team("Blue")
            try await store.insertTeam(red)
            try await store.insertTeam(blue)
            var user = Make.user("a@example.com", team: red)
            try await store.insertUser(user)
            await #expect(throws: MetadataStoreError.userNotFound) {
                try await store.insertAPIKey(Make.key(for: Make.user("x@example.com", team: red)))
            }
            let keys = [Make.key(for: user, at: 2), Make.key(for: user, at: 1)]
            for key in keys { try await store.insertAPIKey(key) }
            await #expect(throws: MetadataStoreError.keyIDTaken) { try await store.insertAPIKey(keys[0]) }
            #expect(
                try await store.apiKeys(userID: user.id, PageRequest()).items.map(\.id) == [keys[1].id, keys[0].id])

            user.teamID = blue.id
            #expect(try await store.updateUser(user))
            #expect(try await store.apiKey(id: keys[0].id)?.teamID == blue.id)
            #expect(try await store.apiKey(id: keys[1].id)?.teamID == blue.id)

            #expect(try await store.revokeAPIKey(id: keys[0].id))
            #expect(try await store.apiKey(id: keys[0].id)?.isActive == false)
            #expect(try await store.revokeAPIKey(id: UUID()) == false)
            try await store.recordAPIKeyUse(id: keys[1].id, at: Make.date(60))
            #expect(try await store.apiKey(id: keys[1].id)?.lastUsedAt == Make.date(60))

            #expect(try await store.deleteUser(id: user.id))
            #expect(try await store.apiKey(id: keys[0].id) == nil)
            #expect(try await store.apiKey(id: keys[1].id) == nil)
            #expect(try await store.apiKeys(userID: user.id, PageRequest()).total == 0)
            #expect(try await store.deleteUser(id: user.id) == false)
        }
    }

    @Test("an administrator's team, user and key are written all or nothing", arguments: MetadataBackend.allCases)
    func administratorAllOrNothing(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team("Admins")
            let admin = Make.user("root@example.com", team: team, admin: true)
            try await store.insertAdministrator(team: team, user: admin, key: Make.key(for: admin))
            #expect(try await store.user(email: "root@example.com")?.isAdmin == true)

            let other = Make.team("Other admins")
            let clash = Make.user("root@example.com", team: other, admin: true)
            await #expect(throws: MetadataStoreError.emailTaken) {
                try await store.insertAdministrator(team: other, user: clash, key: Make.key(for: clash))
            }
            #expect(try await store.team(id: other.id) == nil)
            #expect(try await store.teams(PageRequest()).total == 1)
        }
    }

    @Test("a bootstrap key's record keeps the first hash and outlives its user", arguments: MetadataBackend.allCases)
    func bootstrapRecord(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let id = UUID()
            #expect(try await store.bootstrapKeyHash(id: id) == nil)
            try await store.recordBootstrapKey(id: id, secretHash: Data([1, 2, 3]), at: Make.date(0))
            try await store.recordBootstrapKey(id: id, secretHash: Data([9]), at: Make.date(1))
            #expect(try await store.bootstrapKeyHash(id: id) == Data([1, 2, 3]))
            try await store.checkReady()
        }
    }
}
