import Foundation
import ImageAPICore
import Testing

/// The contract of the vector-index port, run against every backend in ``VectorBackend``.
@Suite("Vector index contract")
struct VectorIndexContractTests {
    /// A unit vector at `angle` radians in the plane of the first two axes (4 dimensions).
    static func unit(_ angle: Float) -> [Float] { [cos(angle), sin(angle), 0, 0] }

    static func entry(
        _ team: UUID, _ angle: Float, model: String = "m", collection: UUID? = nil
    ) -> VectorEntry {
        VectorEntry(imageID: UUID(), teamID: team, collectionID: collection, model: model, vector: unit(angle))
    }

    @Test(
        "search returns the team's nearest vectors of the model, best first, above the threshold",
        arguments: VectorBackend.allCases)
    func nearestFirst(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = UUID()
            let entries = [0.1, 0.5, 0.9, 1.3].map { Self.entry(team, Float($0)) }
            for entry in entries { try await index.upsert(entry) }
            try await index.upsert(Self.entry(UUID(), 0))
            try await index.upsert(Self.entry(team, 0, model: "other"))
            let hits = try await index.search(
                Self.unit(0), model: "m", teamID: team, collectionID: nil, minimumCosine: -1, limit: 10)
            #expect(hits.map(\.imageID) == entries.map(\.imageID))
            #expect(abs(hits[0].cosine - cos(0.1)) < 1e-5)
            let close = try await index.search(
                Self.unit(0), model: "m", teamID: team, collectionID: nil, minimumCosine: cos(0.6), limit: 10)
            #expect(close.map(\.imageID) == Array(entries.prefix(2)).map(\.imageID))
            let top = try await index.search(
                Self.unit(0), model: "m", teamID: team, collectionID: nil, minimumCosine: -1, limit: 3)
            #expect(top.count == 3)
            #expect(
                try await index.search(
                    Self.unit(0), model: "m", teamID: UUID(), collectionID: nil, minimumCosine: -1, limit: 10
                )
                .isEmpty)
        }
    }

    @Test("collections filter, move with their image, and can be cleared alone", arguments: VectorBackend.allCases)
    func collections(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = UUID()
            let album = UUID()
            let inAlbum = Self.entry(team, 0.2, collection: album)
            let loose = Self.entry(team, 0.1)
            try await index.upsert(inAlbum)
            try await index.upsert(loose)
            func albumHits() async throws -> [UUID] {
                try await index.search(
                    Self.unit(0), model: "m", teamID: team, collectionID: album, minimumCosine: -1, limit: 10
                ).map(\.imageID)
            }
            #expect(try await albumHits() == [inAlbum.imageID])
            try await index.updateCollection(imageID: loose.imageID, collectionID: album)
            #expect(try await albumHits() == [loose.imageID, inAlbum.imageID])
            #expect(try await index.deleteAll(teamID: team, collectionID: album) == 2)
            #expect(try await albumHits().isEmpty)
        }
    }

    @Test("upsert replaces, reads are scoped to the team, deletes leave nothing", arguments: VectorBackend.allCases)
    func replaceAndDelete(backend: VectorBackend) async throws {
        try await backend.withIndex { index in
            let team = UUID()
            var entry = Self.entry(team, 0.3)
            try await index.upsert(entry)
            entry.vector = Self.unit(1.0)
            try await index.upsert(entry)
            #expect(try await index.vector(imageID: entry.imageID, teamID: team) == entry)
            #expect(try await index.vector(imageID: entry.imageID, teamID: UUID()) == nil)
            let hits = try await index.search(
                Self.unit(0), model: "m", teamID: team, collectionID: nil, minimumCosine: -1, limit: 10)
            #expect(hits.count == 1 && abs(hits[0].cosine - cos(1.0)) < 1e-5)
            try await index.delete(imageID: entry.imageID)
            try await index.delete(imageID: UUID())
            #expect(try await index.vector(imageID: entry.imageID, teamID: team) == nil)
            let others = [Self.entry(team, 0), Self.entry(team, 1)]
            for other in others { try await index.upsert(other) }
            let foreign = Self.entry(UUID(), 0)
            try await index.upsert(foreign)
            #expect(try await index.deleteAll(teamID: team, collectionID: nil) == 2)
            #expect(
                try await index.search(
                    Self.unit(0), model: "m", teamID: team, collectionID: nil, minimumCosine: -1, limit: 10
                )
                .isEmpty)
            #expect(try await index.vector(imageID: foreign.imageID, teamID: foreign.teamID) == foreign)
        }
    }
}
