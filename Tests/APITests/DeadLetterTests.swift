import Foundation
import FunctionsFramework
import ImageAPICore
import Testing

extension APIClient {
    func listDeadLetters(_ query: String = "", key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/admin/dead-letters\(query)", key: key)
    }
    func replayDeadLetter(_ messageID: String, key: String?) async throws -> Reply {
        try await send(.post, "/api/v1/admin/dead-letters/\(messageID)/replay", key: key)
    }
    func discardDeadLetter(_ messageID: String, key: String?) async throws -> Reply {
        try await send(.delete, "/api/v1/admin/dead-letters/\(messageID)", key: key)
    }
}

@Suite("Dead letters: listed, replayed and discarded by the team's admins")
struct DeadLetterTests {
    struct Letter: Decodable {
        let messageID: String
        let imageID: ImageID
        let reason: String
        let attempts: Int
        let lastError: String
        let source: String

        enum CodingKeys: String, CodingKey {
            case messageID = "message_id"
            case imageID = "image_id"
            case reason, attempts, source
            case lastError = "last_error"
        }
    }

    struct Letters: Decodable {
        let deadLetters: [Letter]
        let total: Int

        enum CodingKeys: String, CodingKey {
            case deadLetters = "dead_letters"
            case total
        }
    }

    @Test("a failed image's dead letter is listed to its team's admin only, and a replay processes the image again")
    func listAndReplay() async throws {
        // Three failures use up the attempts; the fourth call (the replay) succeeds.
        let embedder = FlakyEmbedder(failures: 3)
        let api = try TestAPI(embedder: embedder)
        try await api.run { (client) async throws in
            let admin = try await client.member(email: "admin@example.com", isAdmin: true)
            let member = try await client.member(of: admin.team, email: "member@example.com")
            let otherAdmin = try await client.member(email: "other@example.com", isAdmin: true)
            let uploaded = try await client.upload("sunset.jpg", key: member.key).decode(ImageRecord.self)
            try await client.deliverThroughRetries(advancing: api.clock)
            try await client.deliver()
            #expect(
                try await client.getImage(uploaded.id, key: member.key).decode(ImageRecord.self).embeddingStatus
                    == .failed)

            let listed = try await client.listDeadLetters(key: admin.key)
            #expect(listed.status == .ok)
            let letters = try listed.decode(Letters.self)
            #expect(letters.total == 1)
            let letter = try #require(letters.deadLetters.first)
            #expect(letter.imageID == uploaded.id && letter.reason == "upload" && letter.attempts == 3)
            #expect(letter.lastError == "injected failure 3" && letter.source == "handler")

            // Other teams' admins see nothing and cannot replay it; members may not look.
            #expect(try await client.listDeadLetters(key: otherAdmin.key).decode(Letters.self).total == 0)
            #expect(try await client.replayDeadLetter(letter.messageID, key: otherAdmin.key).status == .notFound)
            #expect(try await client.listDeadLetters(key: member.key).status == .forbidden)
            #expect(try await client.replayDeadLetter(letter.messageID, key: member.key).status == .forbidden)
            #expect(try await client.listDeadLetters(key: nil).status == .unauthorized)
            #expect(try await client.replayDeadLetter("no-such-message", key: admin.key).status == .notFound)
            #expect(try await client.listDeadLetters("?limit=0", key: admin.key).status == .unprocessableContent)

            let replayed = try await client.replayDeadLetter(letter.messageID, key: admin.key)
            #expect(replayed.status == .accepted)
            let pending = try replayed.decode(ImageRecord.self)
            #expect(pending.embeddingStatus == .pending && pending.embeddingAttempts == 0)
            #expect(try await client.listDeadLetters(key: admin.key).decode(Letters.self).total == 0)
            #expect(try await client.replayDeadLetter(letter.messageID, key: admin.key).status == .notFound)

            try await client.deliver()
            let processed = try await client.getImage(uploaded.id, key: member.key).decode(ImageRecord.self)
            #expect(processed.embeddingStatus == .success && processed.embeddingAttempts == 1)
            #expect(embedder.callCount == 4)
        }
    }

    @Test("replaying while the image is queued is 409 and changes nothing")
    func replayWhileQueued() async throws {
        let api = try TestAPI(embedder: FlakyEmbedder(failures: 3))
        try await api.run { (client) async throws in
            let admin = try await client.member(email: "admin@example.com", isAdmin: true)
            let uploaded = try await client.upload("sunset.jpg", key: admin.key).decode(ImageRecord.self)
            try await client.deliverThroughRetries(advancing: api.clock)
            try await client.deliver()
            let letter = try #require(
                try await client.listDeadLetters(key: admin.key).decode(Letters.self).deadLetters.first)
            #expect(try await client.reprocess(uploaded.id, key: admin.key).status == .accepted)
            let refused = try await client.replayDeadLetter(letter.messageID, key: admin.key)
            #expect(refused.status == .conflict)
            #expect(refused.detail?.contains("already queued") == true)
            #expect(try await client.listDeadLetters(key: admin.key).decode(Letters.self).total == 1)
        }
    }

    @Test("a dead letter whose image was deleted cannot be replayed but can be discarded, by its team's admin only")
    func discardAfterDelete() async throws {
        let api = try TestAPI(embedder: FlakyEmbedder(failures: .max))
        try await api.run { (client) async throws in
            let admin = try await client.member(email: "admin@example.com", isAdmin: true)
            let otherAdmin = try await client.member(email: "other@example.com", isAdmin: true)
            var uploaded: [ImageRecord] = []
            for fixture in ["sunset.jpg", "lake.png", "forest.webp"] {
                uploaded.append(try await client.upload(fixture, key: admin.key).decode(ImageRecord.self))
            }
            try await client.deliverThroughRetries(advancing: api.clock)
            try await client.deliver()
            let all = try await client.listDeadLetters(key: admin.key).decode(Letters.self)
            #expect(all.total == 3)
            // Pages of the team's letters, oldest first, with the team's total.
            let second = try await client.listDeadLetters("?skip=1&limit=1", key: admin.key).decode(Letters.self)
            #expect(second.total == 3 && second.deadLetters.map(\.messageID) == [all.deadLetters[1].messageID])

            let letter = try #require(all.deadLetters.first { $0.imageID == uploaded[0].id })
            #expect(try await client.deleteImage(uploaded[0].id, key: admin.key).status == .noContent)
            #expect(try await client.replayDeadLetter(letter.messageID, key: admin.key).status == .notFound)
            #expect(try await client.discardDeadLetter(letter.messageID, key: otherAdmin.key).status == .notFound)
            #expect(try await client.discardDeadLetter(letter.messageID, key: admin.key).status == .noContent)
            #expect(try await client.discardDeadLetter(letter.messageID, key: admin.key).status == .notFound)
            let left = try await client.listDeadLetters(key: admin.key).decode(Letters.self)
            #expect(left.total == 2 && !left.deadLetters.contains { $0.messageID == letter.messageID })
        }
    }
}
