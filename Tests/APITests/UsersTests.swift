import Foundation
import ImageAPICore
import Testing

@Suite("Users")
struct UsersTests {
    @Test("create, read, list by team, update and delete users")
    func lifecycle() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let teamA = try await client.createTeam("A").decode(Team.self)
            let teamB = try await client.createTeam("B").decode(Team.self)
            let created = try await client.createUser(email: " Ada@Example.COM ", name: "Ada", teamID: teamA.id)
            #expect(created.status == .created)
            let ada = try created.decode(User.self)
            #expect(ada.email == "ada@example.com")
            #expect(ada.teamID == teamA.id && !ada.isAdmin && ada.isActive)
            _ = try await client.createUser(email: "bob@example.com", teamID: teamB.id, isAdmin: true)

            let all = try await client.listUsers().decode(ListReply<User>.self)
            #expect(all.total == 2)
            let onlyA = try await client.listUsers("?team_id=\(teamA.id.lowercasedString)").decode(ListReply<User>.self)
            #expect(onlyA.items.map(\.email) == ["ada@example.com"])
            #expect(try await client.listUsers("?team_id=nope").status == .unprocessableContent)

            #expect(try await client.getUser(ada.id.lowercasedString).decode(User.self) == ada)

            let moved = try await client.updateUser(
                ada.id.lowercasedString,
                json: #"{"name": "Ada L.", "team_id": "\#(teamB.id.lowercasedString)", "is_admin": true}"#)
            let movedUser = try moved.decode(User.self)
            #expect(movedUser.name == "Ada L." && movedUser.teamID == teamB.id && movedUser.isAdmin)

            #expect(try await client.deleteUser(ada.id.lowercasedString).status == .noContent)
            #expect(try await client.getUser(ada.id.lowercasedString).status == .notFound)
            #expect(try await client.deleteUser(ada.id.lowercasedString).status == .notFound)
        }
    }

    @Test("a duplicate e-mail, compared without case, is a 409 on create and update")
    func duplicateEmail() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.createTeam("A").decode(Team.self)
            _ = try await client.createUser(email: "ada@example.com", teamID: team.id)
            let duplicate = try await client.createUser(email: "ADA@example.com", teamID: team.id)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.detail == "A user with this email already exists")
            let bob = try await client.createUser(email: "bob@example.com", teamID: team.id).decode(User.self)
            let update = try await client.updateUser(bob.id.lowercasedString, json: #"{"email": "Ada@Example.com"}"#)
            #expect(update.status == .conflict)
            #expect(try await client.getUser(bob.id.lowercasedString).decode(User.self).email == "bob@example.com")
        }
    }

    @Test(
        "look-alike spellings of a used e-mail (full-width letters) are the same address: 409",
        arguments: ["Ａda@example.com", "ada@ｅxample.com", "ＡＤＡ@ＥＸＡＭＰＬＥ.ＣＯＭ", " ada@example.com\u{FE0F}"])
    func lookAlikeEmails(email: String) async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.createTeam("A").decode(Team.self)
            #expect(try await client.createUser(email: "ada@example.com", teamID: team.id).status == .created)
            let again = try await client.createUser(email: email, teamID: team.id)
            #expect(again.status == .conflict, "\(email) was \(again.status)")
            #expect(try await client.listUsers().decode(ListReply<User>.self).total == 1)
        }
    }

    @Test(
        "addresses that are not RFC 5321 mailboxes, or hide invisible characters, are refused with 422",
        arguments: [
            "a@b.com*", ".a@c.com", "a.@c.com", "a..b@c.com", "<script>@x.com", "a@b_c.com", "a@-b.com", "a@b.123",
            "a b@c.com", "a@b", "ada\u{200B}@example.com", "ada@exa\u{00AD}mple.com", "ada@example.com\u{E0041}",
            "\"quoted\"@example.com", "a@[127.0.0.1]",
        ])
    func invalidEmails(email: String) async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.createTeam("A").decode(Team.self)
            let reply = try await client.createUser(email: email, teamID: team.id)
            #expect(reply.status == .unprocessableContent, "\(email) was \(reply.status)")
            #expect(reply.issues.contains { $0.loc == ["body", "email"] })
            #expect(try await client.listUsers().decode(ListReply<User>.self).total == 0)
        }
    }

    @Test(
        "mailboxes with the symbols RFC 5322 allows, sub-domains and letters of other scripts are accepted",
        arguments: [
            "o'brien+tag@mail.example.co.uk", "a!#$%&*/=?^_`{|}~-z@example.com", "jörg@bücher.de", "用户@例子.中国",
            "x@1.example",
        ])
    func validEmails(email: String) async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.createTeam("A").decode(Team.self)
            let reply = try await client.createUser(email: email, teamID: team.id)
            #expect(reply.status == .created, "\(email) was \(reply.status): \(reply.issues)")
        }
    }

    @Test("an unknown team is a 404 on create and update")
    func unknownTeam() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let created = try await client.createUser(email: "ada@example.com", teamID: TeamID())
            #expect(created.status == .notFound)
            #expect(created.detail == "Team not found")
            let team = try await client.createTeam("A").decode(Team.self)
            let ada = try await client.createUser(email: "ada@example.com", teamID: team.id).decode(User.self)
            let moved = try await client.updateUser(
                ada.id.lowercasedString, json: #"{"team_id": "\#(UUID().lowercasedString)"}"#)
            #expect(moved.status == .notFound)
            #expect(try await client.getUser(ada.id.lowercasedString).decode(User.self).teamID == team.id)
        }
    }

    @Test(
        "invalid user bodies are refused with 422",
        arguments: [
            (#"{"name": "x", "team_id": "6f1d4c4e-4d53-4a4f-9e8b-2f0e8f5f2c11"}"#, ["body", "email"]),
            (
                #"{"email": "not-an-email", "name": "x", "team_id": "6f1d4c4e-4d53-4a4f-9e8b-2f0e8f5f2c11"}"#,
                ["body", "email"]
            ),
            (#"{"email": "a@example.com", "name": "x", "team_id": "nope"}"#, ["body", "team_id"]),
            (
                #"{"email": "a@example.com", "name": "", "team_id": "6f1d4c4e-4d53-4a4f-9e8b-2f0e8f5f2c11"}"#,
                ["body", "name"]
            ),
        ])
    func invalidBodies(json: String, loc: [String]) async throws {
        let api = try TestAPI()
        let reply = try await api.run { try await $0.send(.post, "/api/v1/users", json: json) }
        #expect(reply.status == .unprocessableContent)
        #expect(reply.issues.contains { $0.loc == loc }, "issues were \(reply.issues)")
        // Foundation's wording never reaches the caller.
        #expect(!reply.issues.contains { $0.msg.contains("Attempted to decode") })
        if loc == ["body", "team_id"] {
            #expect(
                reply.issues.first?.msg == "Input should be a valid UUID" && reply.issues.first?.type == "uuid_parsing")
        }
    }

    @Test("/users/me in development: by user_id, or by the key sent; 422 with neither")
    func meInDevelopment() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let (_, user, key) = try await client.member(email: "ada@example.com")
            #expect(try await client.getMe("?user_id=\(user.id.lowercasedString)").decode(User.self) == user)
            #expect(try await client.getMe(key: key).decode(User.self) == user)
            let neither = try await client.getMe()
            #expect(neither.status == .unprocessableContent)
            #expect(neither.issues.first?.loc == ["query", "user_id"])
            #expect(try await client.getMe("?user_id=\(UUID().lowercasedString)").status == .notFound)

            let renamed = try await client.updateMe(
                "?user_id=\(user.id.lowercasedString)", json: #"{"name": "Ada Lovelace", "is_admin": true}"#)
            let me = try renamed.decode(User.self)
            #expect(me.name == "Ada Lovelace")
            #expect(!me.isAdmin, "a user cannot make themselves admin through /users/me")
        }
    }
}

@Suite("Concurrent requests")
struct ConcurrencyTests {
    @Test("concurrent creations all land; a raced e-mail is created exactly once")
    func concurrentCreations() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.createTeam("Busy").decode(Team.self)
            let statuses = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for index in 0..<40 {
                    group.addTask {
                        // Even tasks race for one address; odd tasks each use their own.
                        let email = index.isMultiple(of: 2) ? "same@example.com" : "user\(index)@example.com"
                        return (index, try await client.createUser(email: email, teamID: team.id).status.code)
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            let raced = statuses.filter { $0.key.isMultiple(of: 2) }.map(\.value)
            #expect(raced.filter { $0 == 201 }.count == 1)
            #expect(raced.filter { $0 == 409 }.count == 19)
            #expect(statuses.filter { !$0.key.isMultiple(of: 2) }.allSatisfy { $0.value == 201 })
            let listed = try await client.listUsers("?limit=100").decode(ListReply<User>.self)
            #expect(listed.total == 21)
        }
    }
}
