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
        let changed = try #require(
            try await fixture.library.update(
                id: image.id, teamID: fixture.team, ImageChanges(description: .set("Lake"), tags: .set(["new"]))))
        #expect(changed.tags == ["new"] && changed.description == "Lake" && changed.updatedAt == fixture.clock.now())
        let tagged = SearchQuery(subject: .similarTo(other.id), threshold: 0, filter: ImageFilter(tags: ["new"]))
        guard case .found(let results) = try await fixture.search.search(tagged, teamID: fixture.team) else {
            Issue.record("no results")
            return
        }
        #expect(results.hits.map(\.image.id) == [image.id])
        #expect(try await fixture.library.update(id: image.id, teamID: TeamID(), ImageChanges()) == nil)

        let deleted = try #require(try await fixture.library.delete(id: image.id, teamID: fixture.team))
        #expect(deleted.id == image.id)
        #expect(try await fixture.store.image(id: image.id, teamID: fixture.team) == nil)
        #expect(try await fixture.vectors.vector(imageID: image.id, teamID: fixture.team) == nil)
        #expect(try await !fixture.blobs.exists(at: image.originalBlobKey))
        #expect(try await !fixture.blobs.exists(at: image.thumbnailBlobKey))
        #expect(try await fixture.library.delete(id: image.id, teamID: fixture.team) == nil)
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
