import EmbeddedVectorIndex
import Foundation
import GRDB
import ImageAPICore
import TestSupport
import Testing

/// The contract of the vector-index port, run against every backend in ``VectorBackend``.
@Suite("Vector index contract")
struct VectorIndexContractTests {
    /// A unit vector at `angle` radians in the plane of the first two axes (4 dimensions).
    static func unit(_ angle: Float) -> [Float] { [cos(angle), sin(angle), 0, 0] }

    static let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    static func entry(
        _ team: TeamID, _ angle: Float, model: String = "m", collection: UUID? = nil, tags: [String] = [],
        day: Int = 0
    ) -> VectorEntry {
        VectorEntry(
            imageID: ImageID(), teamID: team, collectionID: collection, tags: tags,
            createdAt: epoch.addingTimeInterval(Double(day) * 86_400), model: model, vector: unit(angle))
    }

    /// The ids of a search from the direction of angle 0, with everything else as given.
    static func ids(
        _ index: any VectorIndex, team: TeamID, model: String = "m", filter: ImageFilter = ImageFilter(),
        minimumCosine: Float = -1, excluding: ImageID? = nil, skip: Int = 0, limit: Int = 10
    ) async throws -> (ids: [ImageID], total: Int) {
        let matches = try await index.search(
            VectorQuery(
                vector: unit(0), model: model, teamID: team, filter: filter, minimumCosine: minimumCosine,
                excluding: excluding, skip: skip, limit: limit))
        return (matches.hits.map(\.imageID), matches.total)
    }

    @Test(
        "search returns the team's nearest vectors of the model, best first, above the threshold",
        arguments: VectorBackend.allCases)
    func nearestFirst(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = TeamID()
            let entries = [0.1, 0.5, 0.9, 1.3].map { Self.entry(team, Float($0)) }
            for entry in entries { try await index.upsert(entry) }
            try await index.upsert(Self.entry(TeamID(), 0))
            try await index.upsert(Self.entry(team, 0, model: "other"))
            let all = try await index.search(VectorQuery(vector: Self.unit(0), model: "m", teamID: team, limit: 10))
            #expect(all.hits.map(\.imageID) == entries.map(\.imageID))
            #expect(all.total == 4)
            #expect(abs(all.hits[0].cosine - cos(0.1)) < 1e-5)
            let close = try await Self.ids(index, team: team, minimumCosine: cos(0.6))
            #expect(close.ids == Array(entries.prefix(2)).map(\.imageID) && close.total == 2)
            #expect(try await Self.ids(index, team: TeamID()).total == 0)
            #expect(try await Self.ids(index, team: team, model: "other").total == 1)
        }
    }

    @Test(
        "pages: skip and limit slice the ranking, total counts every match, a huge skip is empty",
        arguments: VectorBackend.allCases)
    func pagination(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = TeamID()
            let entries = (0..<25).map { Self.entry(team, Float($0) * 0.05) }
            var generator = SeededGenerator(seed: 25)
            for entry in entries.shuffled(using: &generator) { try await index.upsert(entry) }
            var seen: [ImageID] = []
            for skip in stride(from: 0, to: 25, by: 10) {
                let page = try await Self.ids(index, team: team, skip: skip, limit: 10)
                #expect(page.total == 25)
                seen += page.ids
            }
            #expect(seen == entries.map(\.imageID))
            let beyond = try await Self.ids(index, team: team, skip: Int(Int32.max), limit: 50)
            #expect(beyond.ids.isEmpty && beyond.total == 25)
            // A threshold counts only what passes it, on every page.
            let strict = try await Self.ids(index, team: team, minimumCosine: cos(0.52), skip: 5, limit: 3)
            #expect(strict.total == 11 && strict.ids == entries[5..<8].map(\.imageID))
            // A page past every candidate still counts only what passes the threshold.
            let past = try await Self.ids(index, team: team, minimumCosine: cos(0.52), skip: 25, limit: 5)
            #expect(past.ids.isEmpty && past.total == 11)
        }
    }

    @Test(
        "the whole filter applies in the index: collection, every tag, upload dates, the excluded image",
        arguments: VectorBackend.allCases)
    func filters(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = TeamID()
            let album = UUID()
            let red = Self.entry(team, 0.1, collection: album, tags: ["red", "car"], day: 1)
            let redOld = Self.entry(team, 0.2, tags: ["red"], day: -10)
            let blue = Self.entry(team, 0.3, collection: album, tags: ["blue", "car"], day: 5)
            for entry in [red, redOld, blue] { try await index.upsert(entry) }
            let inAlbum = try await Self.ids(index, team: team, filter: ImageFilter(collectionID: album))
            #expect(inAlbum.ids == [red.imageID, blue.imageID] && inAlbum.total == 2)
            let redOnes = try await Self.ids(index, team: team, filter: ImageFilter(tags: ["red"]))
            #expect(redOnes.ids == [red.imageID, redOld.imageID])
            let redCars = try await Self.ids(index, team: team, filter: ImageFilter(tags: ["red", "car"]))
            #expect(redCars.ids == [red.imageID] && redCars.total == 1)
            let recent = try await Self.ids(
                index, team: team, filter: ImageFilter(uploadedFrom: Self.epoch, uploadedTo: Self.epoch + 2 * 86_400))
            #expect(recent.ids == [red.imageID])
            let others = try await Self.ids(index, team: team, excluding: red.imageID, limit: 1)
            #expect(others.ids == [redOld.imageID] && others.total == 2)
        }
    }

    @Test(
        "payload updates move an image between collections and tags; a team or collection clears alone",
        arguments: VectorBackend.allCases)
    func payloads(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = TeamID()
            let album = UUID()
            let inAlbum = Self.entry(team, 0.2, collection: album)
            let loose = Self.entry(team, 0.1, tags: ["old"])
            try await index.upsert(inAlbum)
            try await index.upsert(loose)
            func albumIDs() async throws -> [ImageID] {
                try await Self.ids(index, team: team, filter: ImageFilter(collectionID: album)).ids
            }
            #expect(try await albumIDs() == [inAlbum.imageID])
            try await index.updatePayload(imageID: loose.imageID, collectionID: album, tags: ["new"])
            #expect(try await albumIDs() == [loose.imageID, inAlbum.imageID])
            #expect(try await Self.ids(index, team: team, filter: ImageFilter(tags: ["old"])).total == 0)
            #expect(try await Self.ids(index, team: team, filter: ImageFilter(tags: ["new"])).ids == [loose.imageID])
            try await index.updatePayload(imageID: ImageID(), collectionID: nil, tags: [])
            #expect(try await index.deleteAll(teamID: team, collectionID: album) == 2)
            #expect(try await albumIDs().isEmpty)
        }
    }

    @Test("upsert replaces, reads are scoped to the team, deletes leave nothing", arguments: VectorBackend.allCases)
    func replaceAndDelete(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = TeamID()
            var entry = Self.entry(team, 0.3)
            try await index.upsert(entry)
            entry.vector = Self.unit(1.0)
            try await index.upsert(entry)
            // The vector as stored: a backend may normalise it again, within float rounding.
            let stored = try #require(try await index.vector(imageID: entry.imageID, teamID: team))
            #expect(stored.count == entry.vector.count && zip(stored, entry.vector).allSatisfy { abs($0 - $1) < 1e-6 })
            #expect(try await index.vector(imageID: entry.imageID, teamID: TeamID()) == nil)
            let hits = try await index.search(VectorQuery(vector: Self.unit(0), model: "m", teamID: team, limit: 10))
            #expect(hits.total == 1 && abs(hits.hits[0].cosine - cos(1.0)) < 1e-5)
            try await index.delete(imageID: entry.imageID)
            try await index.delete(imageID: ImageID())
            #expect(try await index.vector(imageID: entry.imageID, teamID: team) == nil)
            let others = [Self.entry(team, 0), Self.entry(team, 1)]
            for other in others { try await index.upsert(other) }
            let foreign = Self.entry(TeamID(), 0)
            try await index.upsert(foreign)
            #expect(try await index.deleteAll(teamID: team, collectionID: nil) == 2)
            #expect(try await Self.ids(index, team: team).total == 0)
            #expect(try await index.vector(imageID: foreign.imageID, teamID: foreign.teamID) != nil)
        }
    }
}

@Suite("Vector backends agree")
struct VectorBackendAgreementTests {
    /// A random unit vector of `dimensions` numbers.
    static func randomUnit(_ dimensions: Int, using generator: inout SeededGenerator) -> [Float] {
        let raw = (0..<dimensions).map { _ in Float.random(in: -1...1, using: &generator) }
        let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return raw.map { $0 / norm }
    }

    @Test(
        "every backend gives the embedded index's top 10 and totals for the same random data and queries",
        arguments: VectorBackend.allCases.filter { $0 != .embedded })
    func sameTopK(backend: VectorBackend) async throws {
        var generator = SeededGenerator(seed: 13)
        let teams = [TeamID(), TeamID()]
        let albums = [UUID(), UUID()]
        let tagChoices = ["red", "blue", "car", "tree"]
        let entries = (0..<240).map { number in
            VectorEntry(
                imageID: ImageID(), teamID: teams[number % 2],
                collectionID: number % 3 == 0 ? nil : albums[number % 2],
                tags: tagChoices.filter { _ in Bool.random(using: &generator) },
                createdAt: VectorIndexContractTests.epoch.addingTimeInterval(Double(number) * 3600), model: "m",
                vector: Self.randomUnit(24, using: &generator))
        }
        let queries = (0..<24).map { number in
            VectorQuery(
                vector: Self.randomUnit(24, using: &generator), model: "m", teamID: teams[number % 2],
                filter: ImageFilter(
                    collectionID: number % 4 == 1 ? albums[number % 2] : nil,
                    tags: number % 3 == 2 ? [tagChoices[number % 4]] : [],
                    uploadedFrom: number % 5 == 3 ? VectorIndexContractTests.epoch.addingTimeInterval(50 * 3600) : nil),
                minimumCosine: number % 2 == 0 ? -1 : (number % 4 == 1 ? 0.1 : 0.35), skip: number % 7 == 6 ? 10 : 0,
                limit: 10)
        }
        func results(_ index: any VectorIndex) async throws -> [VectorMatches] {
            for entry in entries { try await index.upsert(entry) }
            var all: [VectorMatches] = []
            for query in queries { all.append(try await index.search(query)) }
            return all
        }
        let expected = try await VectorBackend.embedded.withIndex(results)
        let found = try await backend.withIndex(results)
        for (number, (want, got)) in zip(expected, found).enumerated() {
            #expect(got.hits.map(\.imageID) == want.hits.map(\.imageID), "query \(number)")
            #expect(got.total == want.total, "query \(number)")
            #expect(zip(got.hits, want.hits).allSatisfy { abs($0.cosine - $1.cosine) < 1e-4 }, "query \(number)")
        }
        #expect(expected.contains { $0.hits.count == 10 } && expected.contains { $0.total < 10 })
    }
}

@Suite("Embedded vector index upgrades")
struct EmbeddedVectorIndexUpgradeTests {
    @Test("a file from before tags and upload times were kept opens; its rows pass those filters until updated")
    func oldRowsPassUnknownFilters() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vectors-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("metadata.sqlite").path
        let team = TeamID()
        let image = ImageID()
        do {
            // The table as the index wrote it before: no tags, no created_at.
            let queue = try DatabaseQueue(path: path)
            try await queue.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE vectors (image_id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,
                            collection_id TEXT, model TEXT NOT NULL, dimensions INTEGER NOT NULL,
                            vector BLOB NOT NULL, updated_at DATETIME NOT NULL);
                        CREATE TABLE vector_changes (sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                            image_id TEXT NOT NULL);
                        """)
                let blob = VectorIndexContractTests.unit(0).withUnsafeBufferPointer { Data(buffer: $0) }
                try db.execute(
                    sql: "INSERT INTO vectors VALUES (?, ?, NULL, 'm', 4, ?, ?)",
                    arguments: [image.lowercasedString, team.lowercasedString, blob, Date()])
            }
        }
        let index = try SQLiteVectorIndex(path: path)
        let tagged = try await VectorIndexContractTests.ids(index, team: team, filter: ImageFilter(tags: ["red"]))
        #expect(tagged.ids == [image], "tags unknown: the row is not excluded by a tag filter")
        try await index.updatePayload(imageID: image, collectionID: nil, tags: ["blue"])
        #expect(
            try await VectorIndexContractTests.ids(index, team: team, filter: ImageFilter(tags: ["red"])).total == 0)
        #expect(
            try await VectorIndexContractTests.ids(index, team: team, filter: ImageFilter(tags: ["blue"])).total == 1)
    }
}
