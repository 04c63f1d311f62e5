import Foundation
import ImageAPICore
import Testing

@Suite("ImageUploads: an image taken in, or refused with nothing kept")
struct ImageUploadsTests {
    @Test("a JPEG is stored: its bytes in the blob store, the image in the store, its processing message queued")
    func storesAnImage() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let bytes = try ImageUseCaseFixture.fixture("sunset.jpg")
        let outcome = try await fixture.uploads.accept(
            try fixture.staged(bytes), UploadDetails(filename: "sunset.jpg", description: "A sunset", tags: ["sky"]),
            teamID: fixture.team, uploaderID: fixture.uploader)
        guard case .stored(let image) = outcome else {
            Issue.record("not stored: \(outcome)")
            return
        }
        #expect(image.format == "jpeg" && image.contentType == "image/jpeg")
        #expect(image.width > 0 && image.height > 0)
        #expect(image.tags == ["sky"] && image.description == "A sunset" && image.teamID == fixture.team)
        #expect(image.embeddingStatus == .pending)
        #expect(try await fixture.blobs.data(at: image.originalBlobKey) == bytes)
        #expect(try await fixture.store.image(id: image.id, teamID: fixture.team) == image)
        let queued = try await fixture.store.claimDueMessages(
            now: fixture.clock.now().addingTimeInterval(60), leaseUntil: fixture.clock.now().addingTimeInterval(120),
            limit: 10)
        let requests = try queued.map { try JSONDecoder().decode(ImageProcessingRequest.self, from: $0.message.data) }
        #expect(requests.map(\.imageID) == [image.id])
    }

    @Test(
        "refusals keep nothing: an empty file, bytes of no accepted format, an image that does not decode",
        arguments: [
            ("empty.jpg", "empty"), ("notes.jpg", "unsupported"), ("forest.bmp", "unsupported"),
            ("truncated.jpg", "undecodable"),
        ])
    func refusals(fixtureName: String, expected: String) async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let outcome = try await fixture.uploads.accept(
            try fixture.staged(try ImageUseCaseFixture.fixture(fixtureName)), UploadDetails(filename: fixtureName),
            teamID: fixture.team, uploaderID: fixture.uploader)
        switch (outcome, expected) {
        case (.empty, "empty"), (.unsupportedFormat, "unsupported"), (.undecodable, "undecodable"): break
        default: Issue.record("\(fixtureName): expected \(expected), got \(outcome)")
        }
        let page = try await fixture.store.images(teamID: fixture.team, filter: ImageFilter(), PageRequest())
        #expect(page.total == 0)
    }

    @Test("an image over the pixel limit is refused as undecodable before anything is stored")
    func pixelLimit() async throws {
        let fixture = ImageUseCaseFixture(maxImagePixels: 100)
        defer { fixture.removeStaging() }
        let outcome = try await fixture.uploads.accept(
            try fixture.staged(try ImageUseCaseFixture.fixture("sunset.jpg")), UploadDetails(filename: "big.jpg"),
            teamID: fixture.team, uploaderID: fixture.uploader)
        guard case .undecodable = outcome else {
            Issue.record("expected undecodable, got \(outcome)")
            return
        }
        #expect(try await fixture.store.images(teamID: fixture.team, filter: ImageFilter(), PageRequest()).total == 0)
    }

    @Test("bytes the team holds are a duplicate naming the first copy, unless a second copy is asked for")
    func duplicates() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let first = try await fixture.upload("lake.png")
        let again = try await fixture.uploads.accept(
            try fixture.staged(try ImageUseCaseFixture.fixture("lake.png")), UploadDetails(filename: "copy.png"),
            teamID: fixture.team, uploaderID: fixture.uploader)
        #expect(again == .duplicate(of: first.id))
        let kept = try await fixture.upload("lake.png", UploadDetails(filename: "copy.png", allowDuplicate: true))
        #expect(kept.id != first.id && kept.sha256 == first.sha256)
        // Another team's identical bytes are no duplicate of this team's.
        let other = try await fixture.uploads.accept(
            try fixture.staged(try ImageUseCaseFixture.fixture("lake.png")), UploadDetails(filename: "lake.png"),
            teamID: TeamID(), uploaderID: UserID())
        guard case .stored = other else {
            Issue.record("another team's upload was refused: \(other)")
            return
        }
    }

    @Test("of concurrent uploads of the same bytes one is stored; the others are duplicates whose bytes are taken back")
    func concurrentDuplicates() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let bytes = try ImageUseCaseFixture.fixture("forest.webp")
        let outcomes = try await withThrowingTaskGroup(of: UploadOutcome.self) { group in
            for _ in 0..<8 {
                let file = try fixture.staged(bytes)
                group.addTask {
                    try await fixture.uploads.accept(
                        file, UploadDetails(filename: "forest.webp"), teamID: fixture.team,
                        uploaderID: fixture.uploader)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let stored = outcomes.compactMap { outcome -> ImageRecord? in
            if case .stored(let image) = outcome { return image }
            return nil
        }
        try #require(stored.count == 1)
        #expect(outcomes.filter { $0 == .duplicate(of: stored[0].id) }.count == 7)
        let page = try await fixture.store.images(teamID: fixture.team, filter: ImageFilter(), PageRequest())
        #expect(page.items.map(\.id) == [stored[0].id])
        for image in page.items { #expect(try await fixture.blobs.exists(at: image.originalBlobKey)) }
        #expect(await fixture.blobs.keys == [stored[0].originalBlobKey])
    }

    /// Uploads `sunset.jpg` through `store`.
    private func upload(
        _ fixture: ImageUseCaseFixture, over store: InterruptedImageStore
    ) async throws -> UploadOutcome {
        try await ImageUploads(images: fixture.images(over: store), clock: fixture.clock).accept(
            try fixture.staged(try ImageUseCaseFixture.fixture("sunset.jpg")), UploadDetails(filename: "sunset.jpg"),
            teamID: fixture.team, uploaderID: fixture.uploader)
    }

    @Test("a commit that landed but whose answer was lost is found again: the upload is stored, with its bytes")
    func commitAnswerLost() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let store = InterruptedImageStore(fixture.store, insert: 1, insertCommits: true)
        let outcome = try await upload(fixture, over: store)
        guard case .stored(let image) = outcome else {
            Issue.record("not stored: \(outcome)")
            return
        }
        #expect(store.failedCalls.withLock { $0 } == 1)
        #expect(try await fixture.blobs.exists(at: image.originalBlobKey))
        let outcomes = try await fixture.deliverAll()
        guard outcomes.count == 1, case .embedded(let embedded, _, _) = outcomes[0] else {
            Issue.record("not embedded: \(outcomes)")
            return
        }
        #expect(embedded.id == image.id)
    }

    @Test("while the store cannot say whether the commit landed, the upload fails as unavailable and its bytes stay")
    func commitUnknown() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let store = InterruptedImageStore(fixture.store, lookup: 1, insert: 1, insertCommits: true)
        do {
            let unexpected = try await upload(fixture, over: store)
            Issue.record("answered while the store was down: \(unexpected)")
        } catch let error as DomainError {
            #expect(error.kind == .unavailableFor(retryAfterSeconds: 1))
        }
        #expect(store.failedCalls.withLock { $0 } == 2)
        // The commit had landed: the image it recorded has its original and is processed.
        let page = try await fixture.store.images(teamID: fixture.team, filter: ImageFilter(), PageRequest())
        let image = try #require(page.items.first)
        #expect(page.items.count == 1)
        #expect(try await fixture.blobs.exists(at: image.originalBlobKey))
        let outcomes = try await fixture.deliverAll()
        guard outcomes.count == 1, case .embedded = outcomes[0] else {
            Issue.record("not embedded: \(outcomes)")
            return
        }
        #expect(try await fixture.library.removeOrphanBlobs(writtenBefore: Date().addingTimeInterval(60)) == 0)
    }

    @Test("bytes of a commit the unavailable store never made stay until the orphan sweep removes them")
    func commitNeverMade() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let store = InterruptedImageStore(fixture.store, lookup: 1, insert: 1)
        await #expect(throws: DomainError.self) { _ = try await upload(fixture, over: store) }
        let page = try await fixture.store.images(teamID: fixture.team, filter: ImageFilter(), PageRequest())
        #expect(page.items.isEmpty)
        #expect(await fixture.blobs.keys.count == 1)
        #expect(try await fixture.library.removeOrphanBlobs(writtenBefore: Date().addingTimeInterval(60)) == 1)
        #expect(await fixture.blobs.keys.isEmpty)
        let due = try await fixture.store.claimDueMessages(
            now: fixture.clock.now().addingTimeInterval(60), leaseUntil: fixture.clock.now().addingTimeInterval(120),
            limit: 10)
        #expect(due.isEmpty, "no processing message without its image")
    }
}
