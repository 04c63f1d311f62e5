import Foundation
import ImageAPICore
import Testing

@Suite("ImageSearch and ImageLibrary: finding, changing and deleting a team's images")
struct ImageSearchAndLibraryTests {
    @Test("a query's words: lower-cased, split at anything but letters and digits, no repeats, at most 16")
    func words() {
        #expect(ImageSearch.words(of: "Red  sunset, RED sky!") == ["red", "sunset", "sky"])
        #expect(ImageSearch.words(of: "?!").isEmpty)
        let many = (1...20).map { "w\($0)" }.joined(separator: " ")
        #expect(ImageSearch.words(of: many) == (1...16).map { "w\($0)" })
    }

    @Test("without a text embedder a text query searches the metadata; another team finds nothing")
    func textMode() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let sunset = try await fixture.upload(
            "sunset.jpg", UploadDetails(filename: "sunset.jpg", description: "A red sunset over the fields"))
        _ = try await fixture.upload("lake.png", UploadDetails(filename: "lake.png", description: "A quiet lake"))
        let found = try await fixture.search.search(SearchQuery(subject: .text("red sunset")), teamID: fixture.team)
        guard case .found(let results) = found else {
            Issue.record("no results: \(found)")
            return
        }
        #expect(results.mode == .text && results.model == nil)
        #expect(results.hits.map(\.image.id) == [sunset.id] && results.total == 1)
        #expect(results.hits.allSatisfy { (0...1).contains($0.score) })
        let elsewhere = try await fixture.search.search(SearchQuery(subject: .text("red sunset")), teamID: TeamID())
        guard case .found(let none) = elsewhere else {
            Issue.record("another team's search failed: \(elsewhere)")
            return
        }
        #expect(none.hits.isEmpty && none.total == 0)
    }

    @Test("similar images: refused for an unknown or unprocessed image, then ranked without the query image")
    func similar() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let query = SearchQuery(subject: .similarTo(ImageID()), threshold: 0)
        #expect(try await fixture.search.search(query, teamID: fixture.team) == .imageNotFound)
        let sunset = try await fixture.upload("sunset.jpg")
        let small = try await fixture.upload("sunset-small.jpg")
        let lake = try await fixture.upload("lake.png")
        let early = SearchQuery(subject: .similarTo(sunset.id), threshold: 0)
        #expect(try await fixture.search.search(early, teamID: fixture.team) == .imageNotEmbedded(.pending))
        _ = try await fixture.deliverAll()
        guard case .found(let results) = try await fixture.search.search(early, teamID: fixture.team) else {
            Issue.record("no results")
            return
        }
        #expect(results.mode == .similar && results.total == 2)
        #expect(results.hits.map(\.image.id) == [small.id, lake.id])
        #expect(try await fixture.search.search(early, teamID: TeamID()) == .imageNotFound)
    }

    @Test("changing tags reaches the vector index; deleting removes the record, the vector and both blobs")
    func updateAndDelete() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.png", UploadDetails(filename: "lake.png", tags: ["old"]))
        let other = try await fixture.upload("sunset.jpg")
        _ = try await fixture.deliverAll()
        guard
            case .updated(let changed) = try await fixture.library.update(
                id: image.id, teamID: fixture.team, ImageChanges(description: .set("Lake"), tags: .set(["new"])))
        else {
            Issue.record("not updated")
            return
        }
        #expect(changed.tags == ["new"] && changed.description == "Lake" && changed.updatedAt == fixture.clock.now())
        let tagged = SearchQuery(subject: .similarTo(other.id), threshold: 0, filter: ImageFilter(tags: ["new"]))
        guard case .found(let results) = try await fixture.search.search(tagged, teamID: fixture.team) else {
            Issue.record("no results")
            return
        }
        #expect(results.hits.map(\.image.id) == [image.id])
        #expect(try await fixture.library.update(id: image.id, teamID: TeamID(), ImageChanges()) == .notFound)
        // Only into a named collection of the team; the label an image carries may stay.
        let free = UUID()
        #expect(
            try await fixture.library.update(id: image.id, teamID: fixture.team, ImageChanges(collectionID: .set(free)))
                == .unknownCollection(free))
        #expect(try await fixture.store.image(id: image.id, teamID: fixture.team)?.collectionID == nil)

        let deleted = try #require(try await fixture.library.delete(id: image.id, teamID: fixture.team))
        #expect(deleted.id == image.id)
        #expect(try await fixture.store.image(id: image.id, teamID: fixture.team) == nil)
        #expect(try await fixture.vectors.vector(imageID: image.id, teamID: fixture.team) == nil)
        #expect(try await !fixture.blobs.exists(at: image.originalBlobKey))
        #expect(try await !fixture.blobs.exists(at: image.thumbnailBlobKey))
        #expect(try await fixture.library.delete(id: image.id, teamID: fixture.team) == nil)
    }

    @Test("hybrid total counts the union exactly when the semantic matches outnumber the ranks fused")
    func hybridTotalBeyondTheFusedRanks() async throws {
        let fixture = ImageUseCaseFixture(embedder: AxisEmbedder())
        defer { fixture.removeStaging() }
        // 1,005 embedded images, every one a semantic match of the query (cosine above 0): the
        // first 1,000 are fused, the last five are counted by the index alone.
        let count = ImageSearch.maxMatches + 5
        var ids: [ImageID] = []
        for index in 0..<count {
            // The last two carry the word, as one more image that has no vector.
            let named = index >= count - 2 ? "zebra-\(index).jpg" : "photo-\(index).jpg"
            let image = try await insertEmbedded(fixture, named, vector: [1, Float(index) / Float(count), 0])
            ids.append(image.id)
        }
        let unembedded = Self.record(fixture, "zebra-pending.jpg")
        try await fixture.store.insertImage(
            unembedded, publishing: Self.message(unembedded), allowDuplicate: false)

        let outcome = try await fixture.search.search(
            SearchQuery(subject: .text("zebra"), threshold: 0, filter: ImageFilter()), teamID: fixture.team)
        guard case .found(let found) = outcome else {
            Issue.record("not found: \(outcome)")
            return
        }
        #expect(found.mode == .hybrid)
        #expect(found.total == count + 1, "the two named images further down the semantic ranking are counted once")
        // With equal weights the two rankings interleave: the first three of each lead. The three
        // text matches (the vectorless one, and the two beyond the fused ranks) carry only their
        // text placing.
        let leaders = Set(ids.suffix(2) + [unembedded.id] + ids.prefix(3))
        #expect(Set(found.hits.prefix(6).map(\.image.id)) == leaders)
        let words = found.hits.prefix(6).filter { !ids.prefix(3).contains($0.image.id) }
        #expect(words.count == 3 && words.allSatisfy { $0.text != nil && $0.semantic == nil })
        #expect(found.hits.first?.score == 0.5, "first in one ranking alone, with equal weights")
    }

    /// A record of the fixture's team.
    static func record(_ fixture: ImageUseCaseFixture, _ filename: String) -> ImageRecord {
        ImageRecord(
            id: ImageID(), teamID: fixture.team, uploaderID: fixture.uploader, collectionID: nil, filename: filename,
            contentType: "image/jpeg", format: "jpeg", fileSize: 1, width: 1, height: 1, orientation: nil,
            sha256: UUID().uuidString, description: nil, tags: [], exif: [:], createdAt: fixture.clock.now())
    }

    /// A record's processing message.
    static func message(_ image: ImageRecord) -> OutboxMessage {
        .processing(ImageProcessingRequest(imageID: image.id, teamID: image.teamID, reason: "upload"))
    }

    /// Stores an image as processed with `vector` (normalised) under the fixture's embedder.
    private func insertEmbedded(
        _ fixture: ImageUseCaseFixture, _ filename: String, vector: [Float]
    ) async throws -> ImageRecord {
        let image = Self.record(fixture, filename)
        try await fixture.store.insertImage(image, publishing: Self.message(image), allowDuplicate: false)
        let model = fixture.images.embedder.modelID
        let length = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        try await fixture.vectors.upsert(
            VectorEntry(
                imageID: image.id, teamID: fixture.team, collectionID: nil, tags: [], createdAt: image.createdAt,
                model: model, vector: vector.map { $0 / length }))
        _ = try await fixture.store.beginProcessing(
            id: image.id, teamID: fixture.team, model: model, maxAttempts: 3, at: fixture.clock.now())
        try await fixture.store.completeProcessing(
            id: image.id, teamID: fixture.team, model: model, dimensions: 3, perceptualHash: nil,
            at: fixture.clock.now())
        return image
    }

    @Test(
        "blobs of an image with no record are removed once older than the cut-off; a recorded image's and other keys stay"
    )
    func orphanBlobs() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let kept = try await fixture.upload("lake.png")
        _ = try await fixture.deliverAll()
        // What an upload that died before its commit, and a delete that died after it, leave behind.
        let orphan = "teams/\(fixture.team.lowercasedString)/images/\(ImageID().lowercasedString)"
        let otherTeams = "teams/\(TeamID().lowercasedString)/images/\(ImageID().lowercasedString)/original"
        for key in ["\(orphan)/original", "\(orphan)/thumbnail.jpg", otherTeams, "teams/notes.txt"] {
            try await fixture.blobs.put(Data("x".utf8), at: key)
        }
        #expect(try await fixture.library.removeOrphanBlobs(writtenBefore: Date().addingTimeInterval(-3600)) == 0)
        #expect(try await fixture.library.removeOrphanBlobs(writtenBefore: Date().addingTimeInterval(60)) == 3)
        #expect(
            await fixture.blobs.keys.sorted()
                == [kept.originalBlobKey, kept.thumbnailBlobKey, "teams/notes.txt"].sorted())
    }

    @Test("reprocessing waits for processing to end, then queues the image again with no attempt spent")
    func reprocess() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.png")
        #expect(try await fixture.library.reprocess(id: image.id, teamID: fixture.team) == .alreadyQueued(.pending))
        _ = try await fixture.deliverAll()
        guard case .queued(let queued) = try await fixture.library.reprocess(id: image.id, teamID: fixture.team) else {
            Issue.record("not queued")
            return
        }
        #expect(queued.embeddingStatus == .pending && queued.embeddingAttempts == 0)
        #expect(try await fixture.library.reprocess(id: image.id, teamID: TeamID()) == .notFound)
        let outcomes = try await fixture.deliverAll()
        #expect(outcomes.count == 1)
        let progress = try await fixture.library.progress(teamID: fixture.team)
        #expect(progress.total == 1)
    }
}
