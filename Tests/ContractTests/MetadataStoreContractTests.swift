import Foundation
import ImageAPICore
import Testing

/// The contract of the metadata-store port (teams, users, keys, units of work), run against
/// every backend in ``MetadataBackend``. The rules on teams, users and keys belong to the
/// services, which run on each backend's transactions here.
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
            let teams = TeamService(store: store)
            let users = UserService(store: store)
            team.name = "Renamed"
            #expect(try await store.updateTeam(team))
            #expect(try await store.team(id: team.id)?.name == "Renamed")
            #expect(try await store.updateTeam(Make.team()) == false)

            let user = Make.user("a@example.com", team: team)
            try await users.create(user)
            #expect(try await teams.delete(id: team.id) == .inUse)
            #expect(try await users.delete(id: user.id))
            let image = Make.image(team: team)
            try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            #expect(try await teams.delete(id: team.id) == .inUse)
            _ = try await store.deleteImage(id: image.id, teamID: team.id)
            #expect(try await teams.delete(id: team.id) == .deleted)
            #expect(try await store.team(id: team.id) == nil)
            #expect(try await teams.delete(id: team.id) == .notFound)
        }
    }

    @Test("users need an existing team and a free e-mail, on insert and on update", arguments: MetadataBackend.allCases)
    func userRules(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            let users = UserService(store: store)
            try await store.insertTeam(team)
            await #expect(throws: MetadataStoreError.teamNotFound) {
                try await users.create(Make.user("a@example.com", team: Make.team()))
            }
            let first = Make.user("a@example.com", team: team)
            try await users.create(first)
            await #expect(throws: MetadataStoreError.emailTaken) {
                try await users.create(Make.user("a@example.com", team: team))
            }
            var second = Make.user("b@example.com", team: team, at: 1)
            try await users.create(second)
            second.email = "a@example.com"
            await #expect(throws: MetadataStoreError.emailTaken) { _ = try await users.update(second) }
            second.email = "b@example.com"
            second.teamID = TeamID()
            await #expect(throws: MetadataStoreError.teamNotFound) { _ = try await users.update(second) }
            #expect(try await store.user(id: second.id)?.teamID == team.id)
            #expect(try await store.user(email: "A@Example.com")?.id == first.id)
            #expect(try await users.update(Make.user("c@example.com", team: team)) == false)
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
                try await UserService(store: store).create(
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
                            try await UserService(store: store).create(Make.user("same@example.com", team: team))
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
            let users = UserService(store: store)
            let service = APIKeyService(store: store, secret: "secret", expiryDays: 1, clock: SystemTimeSource())
            var user = Make.user("a@example.com", team: red)
            try await users.create(user)
            await #expect(throws: MetadataStoreError.userNotFound) {
                try await service.register(Make.key(for: Make.user("x@example.com", team: red)))
            }
            let keys = [Make.key(for: user, at: 2), Make.key(for: user, at: 1)]
            for key in keys { _ = try await service.register(key) }
            await #expect(throws: MetadataStoreError.keyIDTaken) { try await service.register(keys[0]) }
            var stale = Make.key(for: user, at: 3)
            stale.teamID = blue.id
            #expect(try await service.register(stale).teamID == red.id, "a new key joins its user's team as of now")
            #expect(
                try await store.apiKeys(userID: user.id, PageRequest()).items.map(\.id) == [
                    keys[1].id, keys[0].id, stale.id,
                ])

            user.teamID = blue.id
            #expect(try await users.update(user))
            #expect(try await store.apiKey(id: keys[0].id)?.teamID == blue.id)
            #expect(try await store.apiKey(id: keys[1].id)?.teamID == blue.id)

            #expect(try await store.revokeAPIKey(id: keys[0].id))
            #expect(try await store.apiKey(id: keys[0].id)?.isActive == false)
            #expect(try await store.revokeAPIKey(id: APIKeyID()) == false)
            try await store.recordAPIKeyUse(id: keys[1].id, at: Make.date(60))
            #expect(try await store.apiKey(id: keys[1].id)?.lastUsedAt == Make.date(60))

            #expect(try await users.delete(id: user.id))
            #expect(try await store.apiKey(id: keys[0].id) == nil)
            #expect(try await store.apiKey(id: keys[1].id) == nil)
            #expect(try await store.apiKeys(userID: user.id, PageRequest()).total == 0)
            #expect(try await users.delete(id: user.id) == false)
        }
    }

    @Test("a unit of work is kept whole or not at all", arguments: MetadataBackend.allCases)
    func unitOfWorkAllOrNothing(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team("Admins")
            let admin = Make.user("root@example.com", team: team, admin: true)
            let key = Make.key(for: admin)
            try await store.withTransaction { transaction in
                try await transaction.insertTeam(team)
                try await transaction.insertUser(admin)
                try await transaction.insertAPIKey(key)
                #expect(try await transaction.user(email: "root@example.com")?.id == admin.id, "reads see own writes")
            }
            #expect(try await store.user(email: "root@example.com")?.isAdmin == true)
            #expect(try await store.apiKey(id: key.id)?.userID == admin.id)

            // The store refuses a second user with the e-mail even when no service checked first.
            let other = Make.team("Other admins")
            let clash = Make.user("Root@Example.com".lowercased(), team: other, admin: true)
            await #expect(throws: MetadataStoreError.emailTaken) {
                try await store.withTransaction { transaction in
                    try await transaction.insertTeam(other)
                    try await transaction.insertUser(clash)
                }
            }
            struct Abandoned: Error {}
            await #expect(throws: Abandoned.self) {
                try await store.withTransaction { transaction in
                    try await transaction.insertTeam(other)
                    try await transaction.deleteAPIKeys(userID: admin.id)
                    throw Abandoned()
                }
            }
            #expect(try await store.team(id: other.id) == nil)
            #expect(try await store.teams(PageRequest()).total == 1)
            #expect(try await store.apiKey(id: key.id) != nil)
        }
    }

    @Test(
        "units of work run one after another: 20 concurrent increments all count", arguments: MetadataBackend.allCases)
    func unitsOfWorkAreSerialisable(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            // Each reads the team's users and adds the next: lost updates would reuse an e-mail.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await store.withTransaction { transaction in
                            let count = try await transaction.userCount(teamID: team.id)
                            try await transaction.insertUser(Make.user("user\(count)@example.com", team: team))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let users = try await store.users(teamID: team.id, PageRequest(limit: 100))
            #expect(users.total == 20)
            #expect(Set(users.items.map(\.email)) == Set((0..<20).map { "user\($0)@example.com" }))
        }
    }

    @Test("a bootstrap key's record keeps the first hash and outlives its user", arguments: MetadataBackend.allCases)
    func bootstrapRecord(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let id = APIKeyID()
            #expect(try await store.bootstrapKeyHash(id: id) == nil)
            try await store.recordBootstrapKey(id: id, secretHash: Data([1, 2, 3]), at: Make.date(0))
            try await store.recordBootstrapKey(id: id, secretHash: Data([9]), at: Make.date(1))
            #expect(try await store.bootstrapKeyHash(id: id) == Data([1, 2, 3]))
            try await store.checkReady()
        }
    }
}
