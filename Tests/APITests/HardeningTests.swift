import FileSystemStorage
import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageProcessing
import Locking
import TestSupport
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
            #expect(try await client.getImage(ImageID(), key: ann.key).headers[.xContentTypeOptions] == "nosniff")
            let created = try await client.createKey(userID: ann.user.id, teamID: ann.team.id)
            #expect(created.status == .created)
            #expect(created.headers[.cacheControl] == "no-store")
            #expect(try await client.listKeys(key: ann.key).headers[.cacheControl] == nil)
        }
    }

    @Test(
        "control, bidirectional-override and invisible format characters are refused with 422 naming the field",
        arguments: [
            (#"{"name": "Bad\u0000team"}"#, "name"), (#"{"name": "Evil\u202Egnp.exe"}"#, "name"),
            (#"{"name": "Fine", "description": "bell\u0007"}"#, "description"),
            (#"{"name": "Two\nlines"}"#, "name"), (#"{"name": "Zero\u200Bwidth"}"#, "name"),
            (#"{"name": "Joined\u200D"}"#, "name"), (#"{"name": "\uFEFFMarked"}"#, "name"),
            (#"{"name": "Fine", "description": "tagged\uDB40\uDC41"}"#, "description"),
            (#"{"name": "Soft\u00ADhyphen"}"#, "name"),
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

    @Test("staging files a crash left behind are swept when the store or the upload staging opens; fresh ones are kept")
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

        // The same for uploads staged by the upload function.
        let uploads = folder + "/.uploads"
        let staged = try await StagingFolder(path: uploads).begin()
        try await staged.write(Data(repeating: 3, count: 100))
        try await staged.finish()
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-2 * StagingFolder.abandonedAge)], ofItemAtPath: staged.path)
        let current = try await StagingFolder(path: uploads).begin()
        _ = StagingFolder(path: uploads)
        #expect(!FileManager.default.fileExists(atPath: staged.path))
        #expect(FileManager.default.fileExists(atPath: current.path))
        await current.remove()
        #expect(!FileManager.default.fileExists(atPath: current.path))
    }

    @Test("deleting an image leaves no empty folders behind")
    func noEmptyFolders() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let image = try await client.uploadProcessed("sunset.jpg", key: ann.key)
            #expect(try await client.deleteImage(image.id, key: ann.key).status == .noContent)
            let entries = try FileManager.default.contentsOfDirectory(atPath: api.blobFolder)
            #expect(Set(entries) == [".staging", ".uploads"])
            // The upload's staged file was taken as the blob: nothing of it stays behind.
            let staged = try FileManager.default.contentsOfDirectory(atPath: api.blobFolder + "/.uploads")
            #expect(staged.isEmpty)
        }
    }

    @Test("invalid keys from one client are answered 429 with Retry-After once its allowance is spent; valid ones pass")
    func failedAuthenticationLimit() async throws {
        let api = try TestAPI(authFailureLimit: 5)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            // Requests without any key are not guesses: they never count.
            for _ in 0..<10 { #expect(try await client.listImages(key: nil).status == .unauthorized) }
            var generator = SeededGenerator(seed: 151)
            let wrong = APIKeyText.generate(using: &generator).text
            for _ in 0..<5 { #expect(try await client.verify(key: wrong).status == .unauthorized) }
            let limited = try await client.verify(key: wrong)
            #expect(limited.status == .tooManyRequests)
            let wait = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect(wait >= 1 && wait <= 12)
            #expect(limited.detail?.contains("Too many failed authentications") == true)
            // While limited, a valid key from the same address is served: only failures are refused.
            #expect(try await client.verify(key: ann.key).status == .ok)
            #expect(try await client.listImages(key: ann.key).status == .ok)
            #expect(try await client.verify(key: wrong).status == .tooManyRequests)
        }
    }

    @Test("the failure allowance refills over its window, and only failures spend it")
    func limiterRefills() {
        let clock = Locked(0.0)
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

    @Test("BMP, which only ImageMagick decodes, is refused with 415: libvips's untrusted loaders are blocked")
    func untrustedLoadersBlocked() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let bitmap = try await client.upload("forest.bmp", key: ann.key)
            #expect(bitmap.status == .unsupportedMediaType)
            #expect(try await client.listImages(key: ann.key).decode(ListReply<ImageRecord>.self).total == 0)
            #expect(try api.blobFiles().isEmpty)
        }
    }

    /// A JPEG whose frame header declares `width` x `height` but whose scan stops after a few
    /// bytes: what a 633-byte decompression bomb looks like.
    static func truncatedJPEG(width: Int, height: Int) throws -> Data {
        var bytes = [UInt8](try Fixture.data("sunset.jpg"))
        let frame = try #require(
            (0..<bytes.count - 9).first { bytes[$0] == 0xFF && (bytes[$0 + 1] == 0xC0 || bytes[$0 + 1] == 0xC2) })
        bytes[frame + 5] = UInt8(height >> 8)
        bytes[frame + 6] = UInt8(height & 0xFF)
        bytes[frame + 7] = UInt8(width >> 8)
        bytes[frame + 8] = UInt8(width & 0xFF)
        let scan = try #require((frame..<bytes.count - 1).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xDA })
        return Data(bytes.prefix(scan + 40))
    }

    @Test("a few hundred bytes declaring 10000x10000 are refused from the header and length, without decoding")
    func truncatedJPEGBomb() async throws {
        let data = try Self.truncatedJPEG(width: 10_000, height: 10_000)
        #expect(data.count < 1000)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bomb-\(UUID()).jpg").path
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let budget = DecodeMemoryBudget(capacity: 1 << 20)
        do {
            _ = try await VipsImageCodec(memoryBudget: budget).inspect(fileAt: path, maxPixels: 100_000_000)
            Issue.record("accepted")
        } catch let error as ImageDecodingError {
            #expect(error.detail.contains("declares 10000x10000"))
            #expect(!error.description.contains(path), "no server path in what clients see")
        }
        #expect(await budget.inUse == 0)

        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let reply = try await client.upload(data: data, filename: "bomb.jpg", key: ann.key)
            #expect(reply.status == .unprocessableContent)
            #expect(reply.issues.first?.loc == ["body", "file"])
            #expect(!String(decoding: reply.body, as: UTF8.self).contains(".uploads"))
            #expect(try api.blobFiles().isEmpty)
        }
    }

    @Test("decodes wait for memory: two estimates larger than half the budget run one after the other")
    func decodeBudget() async throws {
        let budget = DecodeMemoryBudget(capacity: 100)
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let (started, starter) = AsyncStream.makeStream(of: Int.self)
        let first = Task {
            await budget.withReservation(60) {
                starter.yield(1)
                for await _ in release { break }
            }
        }
        var events = started.makeAsyncIterator()
        #expect(await events.next() == 1)
        let second = Task { await budget.withReservation(60) { _ = starter.yield(2) } }
        // A small decode still fits beside the first.
        await budget.withReservation(30) { #expect(await budget.inUse == 90) }
        #expect(await budget.inUse == 60, "the second waits")
        releaser.yield()
        #expect(await events.next() == 2)
        await first.value
        await second.value
        #expect(await budget.inUse == 0)
        // One image larger than the whole budget still decodes, alone.
        await budget.withReservation(500) { #expect(await budget.inUse == 500) }
    }

    @Test("uploads beyond the running and queued limits are answered 503 with Retry-After")
    func uploadGate() async throws {
        let gate = ConcurrencyGate(limit: 1, queueLimit: 1)
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let (started, starter) = AsyncStream.makeStream(of: Int.self)
        let first = Task {
            try await gate.run {
                starter.yield(1)
                for await _ in release { break }
            }
        }
        var events = started.makeAsyncIterator()
        #expect(await events.next() == 1)
        let second = Task { try await gate.run { _ = starter.yield(2) } }
        while await gate.queued == 0 { await Task.yield() }
        do {
            try await gate.run {}
            Issue.record("a third request was let in")
        } catch let error as FunctionError {
            #expect(error.status == .serviceUnavailable)
            #expect(error.headers[.retryAfter] == "1")
        }
        releaser.yield()
        #expect(await events.next() == 2)
        try await first.value
        try await second.value
        #expect(await gate.running == 0)
        #expect(await gate.queued == 0)
    }

    @Test("one team holds at most half the upload places and queue; a freed place goes to the team served longest ago")
    func fairUploadGate() async throws {
        let gate = ConcurrencyGate(limit: 1, queueLimit: 4)
        let order = Locked<[String]>([])
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let (started, starter) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await gate.run(owner: "a") {
                order.withLock { $0.append("a1") }
                starter.yield()
                for await _ in release { break }
            }
        }
        var events = started.makeAsyncIterator()
        await events.next()
        var waiters: [Task<Void, any Error>] = []
        for name in ["a2", "a3"] {
            waiters.append(Task { try await gate.run(owner: "a") { order.withLock { $0.append(name) } } })
            while await gate.queued < waiters.count { await Task.yield() }
        }
        do {
            try await gate.run(owner: "a") {}
            Issue.record("a team was let past half the queue")
        } catch let error as FunctionError {
            #expect(error.status == .serviceUnavailable)
        }
        waiters.append(Task { try await gate.run(owner: "b") { order.withLock { $0.append("b1") } } })
        while await gate.queued < 3 { await Task.yield() }
        releaser.yield()
        try await holder.value
        for waiter in waiters { try await waiter.value }
        #expect(order.withLock { $0 } == ["a1", "b1", "a2", "a3"])
        #expect(await gate.running == 0)
        #expect(await gate.queued == 0)
    }

    @Test("a team alone uses every place; once another team waits, the next free place goes to it")
    func uploadPlacesShared() async throws {
        let gate = ConcurrencyGate(limit: 2, queueLimit: 2)
        let order = Locked<[String]>([])
        let (started, starter) = AsyncStream.makeStream(of: String.self)
        var releasers: [String: AsyncStream<Void>.Continuation] = [:]
        var holders: [Task<Void, any Error>] = []
        for name in ["a1", "a2"] {
            let (release, releaser) = AsyncStream.makeStream(of: Void.self)
            releasers[name] = releaser
            holders.append(
                Task {
                    try await gate.run(owner: "a") {
                        order.withLock { $0.append(name) }
                        starter.yield(name)
                        for await _ in release { break }
                    }
                })
        }
        var events = started.makeAsyncIterator()
        _ = await events.next()
        _ = await events.next()
        #expect(await gate.running == 2, "no place idles for fairness")
        var waiters: [Task<Void, any Error>] = []
        // The team's third upload waits first, the other team's after it.
        for (owner, name) in [("a", "a3"), ("b", "b1")] {
            waiters.append(Task { try await gate.run(owner: owner) { order.withLock { $0.append(name) } } })
            while await gate.queued < waiters.count { await Task.yield() }
        }
        releasers["a1"]?.yield()
        try await holders[0].value
        try await waiters[0].value
        releasers["a2"]?.yield()
        try await holders[1].value
        try await waiters[1].value
        // The other team's upload took the first freed place, though it came later; then the team's own.
        #expect(order.withLock { $0 }.suffix(2) == ["b1", "a3"])
        #expect(await gate.running == 0)
    }

    @Test(
        "one rule for repeated and empty input: a JSON key or form field given twice counts by its first value; ?redirect= is refused; skip has one range"
    )
    func repeatedAndEmptyInput() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let team = try await client.send(.post, "/api/v1/teams", json: #"{"name": "First", "name": "Second"}"#)
            #expect(try team.decode(Team.self).name == "First")
            let member = try await client.member(email: "ann@example.com")
            let image = try await client.upload(
                "sunset.jpg", fields: [("description", "first"), ("description", "second")], key: member.key
            ).decode(ImageRecord.self)
            #expect(image.description == "first")
            let download = try await client.send(
                .get, "/api/v1/images/\(image.id.lowercasedString)/download?redirect=", key: member.key)
            #expect(download.status == .unprocessableContent)
            #expect(download.issues.first?.loc == ["query", "redirect"])
            let inQuery = try await client.search("?q=red&skip=2147483648", key: member.key)
            let inBody = try await client.search(json: #"{"query": "red", "skip": 2147483648}"#, key: member.key)
            for (reply, location) in [(inQuery, "query"), (inBody, "body")] {
                #expect(reply.status == .unprocessableContent)
                #expect(reply.issues.first?.loc == [location, "skip"])
            }
            #expect(
                try await client.search(json: #"{"query": "red", "skip": 2147483647}"#, key: member.key).status == .ok)
        }
    }
}
