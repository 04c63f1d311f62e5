import FileSystemStorage
import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import Synchronization
import Testing

@Suite("Hostile and careless input")
struct HardeningTests {
    @Test("created_at in a 201 is the instant a later GET returns, to the millisecond")
    func timestampsRoundTrip() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            // Instants whose binary value falls just below a whole millisecond are the ones that
            // used to come back one millisecond early.
            for step in 0..<200 {
                api.clock.advance(seconds: 0.001 * Double(step % 7 + 1) + 0.000_000_3)
                let created = try await client.createTeam("Team \(step)")
                let fetched = try await client.getTeam(try created.decode(Team.self).id.lowercasedString)
                let createdAt = try JSONDecoder().decode([String: String?].self, from: created.body)["created_at"]
                let fetchedAt = try JSONDecoder().decode([String: String?].self, from: fetched.body)["created_at"]
                #expect(createdAt == fetchedAt)
            }
        }
        #expect(JSONCoding.timestamp(Date(timeIntervalSince1970: 1_800_000_000.123)) == "2027-01-15T08:00:00.123Z")
        #expect(JSONCoding.timestamp(Date(timeIntervalSince1970: 1_800_000_000.9996)) == "2027-01-15T08:00:01.000Z")
    }

    @Test("JSON bodies sent as text/plain or a form are refused with 415 and change nothing")
    func jsonContentTypeRequired() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            for contentType in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
                let reply = try await client.send(
                    .post, "/api/v1/teams", headers: [.contentType: contentType], json: #"{"name": "Sneaky"}"#)
                #expect(reply.status == .unsupportedMediaType, "\(contentType)")
                #expect(reply.detail?.contains("application/json") == true)
            }
            let missing = try await client.send(.post, "/api/v1/teams", headers: [:], json: #"{"name": "Sneaky"}"#)
            #expect(missing.status == .unsupportedMediaType)
            #expect(try await client.listTeams().decode(ListReply<Team>.self).total == 0)
            let charset = try await client.send(
                .post, "/api/v1/teams", headers: [.contentType: "application/json; charset=utf-8"],
                json: #"{"name": "Fine"}"#)
            #expect(charset.status == .created)
        }
    }

    @Test("TRACE and CONNECT on a known path answer 405 with Allow, as other unknown methods do")
    func traceAndConnect() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            for method in [HTTPRequest.Method.trace, .connect, .patch] {
                let reply = try await client.send(method, "/api/v1/teams", key: nil)
                #expect(reply.status == .methodNotAllowed, "\(method)")
                #expect(reply.headers[.allow] == "GET, HEAD, POST", "\(method)")
            }
        }
    }

    @Test("every answer says nosniff; an answer holding a new key's secret says no-store")
    func responseHeaders() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let image = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            let download = try await client.download(image.id, key: ann.key)
            #expect(download.status == .ok)
            #expect(download.headers[.xContentTypeOptions] == "nosniff")
            #expect(try await client.getImage(UUID(), key: ann.key).headers[.xContentTypeOptions] == "nosniff")
            let created = try await client.createKey(userID: ann.user.id, teamID: ann.team.id)
            #expect(created.status == .created)
            #expect(created.headers[.cacheControl] == "no-store")
            #expect(try await client.listKeys(key: ann.key).headers[.cacheControl] == nil)
        }
    }

    @Test(
        "control and bidirectional-override characters are refused with 422 naming the field",
        arguments: [
            (#"{"name": "Bad\u0000team"}"#, "name"), (#"{"name": "Evil\u202Egnp.exe"}"#, "name"),
            (#"{"name": "Fine", "description": "bell\u0007"}"#, "description"),
            (#"{"name": "Two\nlines"}"#, "name"),
        ])
    func controlCharacters(body: String, field: String) async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let reply = try await client.send(.post, "/api/v1/teams", key: nil, json: body)
            #expect(reply.status == .unprocessableContent)
            #expect(reply.issues.first?.loc == ["body", field])
            #expect(try await client.listTeams().decode(ListReply<Team>.self).total == 0)
        }
    }

    @Test("text is stored in NFC; a description keeps its tabs and line breaks")
    func unicodeNormalisation() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let decomposed = "Cafe\u{0301}"  // e + combining acute
            let reply = try await client.createTeam(decomposed, description: "line one\n\tline two")
            #expect(reply.status == .created)
            let team = try reply.decode(Team.self)
            #expect(Array(team.name.unicodeScalars) == Array("Caf\u{00E9}".unicodeScalars))
            #expect(team.description == "line one\n\tline two")
            let user = try await client.createUser(email: "ze\u{0301}@example.com", teamID: team.id)
            #expect(user.status == .created)
            #expect(
                Array(try user.decode(User.self).email.unicodeScalars) == Array("z\u{00E9}@example.com".unicodeScalars))
        }
    }

    @Test("staging files a crash left behind are swept when the store opens; fresh ones are kept")
    func stagingSweep() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("blobs-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try FileSystemBlobStore(root: folder)
        let staging = folder + "/.staging"
        let old = staging + "/left-by-a-crash"
        let fresh = staging + "/in-progress"
        #expect(FileManager.default.createFile(atPath: old, contents: Data(repeating: 1, count: 100)))
        #expect(FileManager.default.createFile(atPath: fresh, contents: Data(repeating: 2, count: 100)))
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-2 * FileSystemBlobStore.abandonedStagingAge)],
            ofItemAtPath: old)
        _ = try FileSystemBlobStore(root: folder)
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(FileManager.default.fileExists(atPath: fresh))
    }

    @Test("deleting an image leaves no empty folders behind")
    func noEmptyFolders() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let image = try await client.uploadProcessed("sunset.jpg", key: ann.key)
            #expect(try await client.deleteImage(image.id, key: ann.key).status == .noContent)
            let entries = try FileManager.default.contentsOfDirectory(atPath: api.blobFolder)
            #expect(entries == [".staging"])
        }
    }

    @Test("invalid keys from one client are answered 429 with Retry-After once its allowance is spent")
    func failedAuthenticationLimit() async throws {
        let api = try TestAPI(authFailureLimit: 5)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            // Requests without any key are not guesses: they never count.
            for _ in 0..<10 { #expect(try await client.listImages(key: nil).status == .unauthorized) }
            var generator = SystemRandomNumberGenerator()
            let wrong = APIKeyText.generate(using: &generator).text
            for _ in 0..<5 { #expect(try await client.verify(key: wrong).status == .unauthorized) }
            let limited = try await client.verify(key: wrong)
            #expect(limited.status == .tooManyRequests)
            let wait = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect(wait >= 1 && wait <= 12)
            #expect(limited.detail?.contains("Too many failed authentications") == true)
            // While limited, even a valid key from this client waits: the key is not looked at.
            #expect(try await client.verify(key: ann.key).status == .tooManyRequests)
        }
    }

    @Test("the failure allowance refills over its window, and only failures spend it")
    func limiterRefills() {
        let clock = Mutex(0.0)
        let limiter = FailedAuthenticationLimiter(capacity: 3, window: 30, maximumClients: 2) { clock.withLock { $0 } }
        for _ in 0..<3 { limiter.recordFailure(client: "a") }
        #expect(limiter.retryAfter(client: "a") == 10)
        #expect(limiter.retryAfter(client: "b") == nil)
        clock.withLock { $0 = 10 }
        #expect(limiter.retryAfter(client: "a") == nil)
        limiter.recordFailure(client: "a")
        #expect(limiter.retryAfter(client: "a") == 10)
        // At most two clients are tracked: the least suspicious are dropped first.
        limiter.recordFailure(client: "b")
        limiter.recordFailure(client: "c")
        #expect(limiter.retryAfter(client: "a") == 10)
    }
}
