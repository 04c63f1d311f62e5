import Foundation
import ImageAPICore
import Testing

@Suite("Teams")
struct TeamsTests {
    @Test("create, read, update and delete a team")
    func lifecycle() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let created = try await client.createTeam("  Photo desk ", description: "Pictures")
            #expect(created.status == .created)
            let team = try created.decode(Team.self)
            #expect(team.name == "Photo desk")
            #expect(team.description == "Pictures")
            #expect(team.createdAt == api.clock.now())
            #expect(String(decoding: created.body, as: UTF8.self).contains(team.id.lowercasedString))

            #expect(try await client.getTeam(team.id.lowercasedString).decode(Team.self) == team)

            api.clock.advance(days: 1)
            let updated = try await client.updateTeam(team.id.lowercasedString, json: #"{"name": "Photo team"}"#)
            #expect(updated.status == .ok)
            let changed = try updated.decode(Team.self)
            #expect(changed.name == "Photo team")
            #expect(changed.description == "Pictures")
            #expect(changed.updatedAt > team.updatedAt)
            #expect(changed.createdAt == team.createdAt)

            let cleared = try await client.updateTeam(team.id.lowercasedString, json: #"{"description": ""}"#)
            #expect(try cleared.decode(Team.self).description == nil)

            #expect(try await client.deleteTeam(team.id.lowercasedString).status == .noContent)
            #expect(try await client.getTeam(team.id.lowercasedString).status == .notFound)
            #expect(try await client.deleteTeam(team.id.lowercasedString).status == .notFound)
        }
    }

    @Test("listing pages through teams, oldest first, with total, skip and limit")
    func pagination() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            for index in 1...5 {
                _ = try await client.createTeam("Team \(index)")
                api.clock.advance(days: 0.001)
            }
            let first = try await client.listTeams("?limit=2").decode(ListReply<Team>.self)
            #expect(first.items.map(\.name) == ["Team 1", "Team 2"])
            #expect((first.total, first.skip, first.limit) == (5, 0, 2))
            let last = try await client.listTeams("?skip=4&limit=2").decode(ListReply<Team>.self)
            #expect(last.items.map(\.name) == ["Team 5"])
            let beyond = try await client.listTeams("?skip=10").decode(ListReply<Team>.self)
            #expect(beyond.items.isEmpty && beyond.total == 5 && beyond.limit == 50)
        }
    }

    @Test(
        "skip and limit out of range are refused with 422",
        arguments: ["?limit=0", "?limit=101", "?limit=-1", "?limit=abc", "?skip=-1", "?skip=x"])
    func paginationBounds(_ query: String) async throws {
        let api = try TestAPI()
        let reply = try await api.run { try await $0.listTeams(query) }
        #expect(reply.status == .unprocessableContent)
        let name = query.dropFirst().split(separator: "=")[0]
        #expect(reply.issues.first?.loc == ["query", String(name)])
    }

    @Test(
        "invalid team bodies are refused with 422 and change nothing",
        arguments: [
            (#"{}"#, ["body", "name"], "missing"),
            (#"{"name": "   "}"#, ["body", "name"], "string_too_short"),
            (#"{"name": 42}"#, ["body", "name"], "string_type"),
            ("{\"name\": \"\(String(repeating: "n", count: 101))\"}", ["body", "name"], "string_too_long"),
            (
                "{\"name\": \"ok\", \"description\": \"\(String(repeating: "d", count: 1001))\"}",
                ["body", "description"], "string_too_long"
            ),
            ("not json", ["body"], "json_invalid"),
        ])
    func invalidBodies(json: String, loc: [String], type: String) async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let reply = try await client.send(.post, "/api/v1/teams", json: json)
            #expect(reply.status == .unprocessableContent)
            #expect(reply.issues.first?.loc == loc)
            #expect(reply.issues.first?.type == type)
            #expect(try await client.listTeams().decode(ListReply<Team>.self).total == 0)
        }
    }

    @Test("unknown and malformed team ids")
    func unknownIDs() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let missing = UUID().lowercasedString
            #expect(try await client.getTeam(missing).status == .notFound)
            #expect(try await client.getTeam(missing).detail == "Team not found")
            #expect(try await client.updateTeam(missing, json: #"{"name": "x"}"#).status == .notFound)
            #expect(try await client.getTeam("123").status == .unprocessableContent)
            #expect(try await client.getTeam("123").issues.first?.loc == ["path", "team_id"])
        }
    }

    @Test("a team with users cannot be deleted (409) until they are gone")
    func deleteTeamInUse() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (team, user, _) = try await client.member(email: "a@example.com")
            let refused = try await client.deleteTeam(team.id.lowercasedString)
            #expect(refused.status == .conflict)
            #expect(refused.detail?.contains("users") == true)
            #expect(try await client.getTeam(team.id.lowercasedString).status == .ok)
            #expect(try await client.deleteUser(user.id.lowercasedString).status == .noContent)
            #expect(try await client.deleteTeam(team.id.lowercasedString).status == .noContent)
        }
    }
}
