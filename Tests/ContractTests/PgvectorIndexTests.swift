import Foundation
import ImageAPICore
import PostgresStorage
import TestSupport
import Testing

/// What the pgvector index adds to the vector contract, on the PostgreSQL 18 server with pgvector
/// the test command starts: its HNSW path, and the vector length each model is kept at.
@Suite(
    "pgvector index",
    .enabled(if: TestServers.pgvector != nil, "needs the pgvector server scripts/test-servers.sh starts"))
struct PgvectorIndexTests {
    @Test(
        "past the exact-search limit the HNSW path finds the exact top 10 (recall over 0.9), fills pages past a filter that passes 5 % of the rows, and counts exactly"
    )
    func approximatePath() async throws {
        var generator = SeededGenerator(seed: 29)
        let team = TeamID()
        let entries = (0..<2000).map { number in
            VectorEntry(
                imageID: ImageID(), teamID: team, collectionID: nil, tags: number % 20 == 0 ? ["rare"] : ["common"],
                createdAt: VectorIndexContractTests.epoch, model: "m",
                vector: VectorBackendAgreementTests.randomUnit(32, using: &generator))
        }
        let queries = (0..<20).map { number in
            VectorQuery(
                vector: VectorBackendAgreementTests.randomUnit(32, using: &generator), model: "m", teamID: team,
                filter: ImageFilter(tags: number % 2 == 0 ? ["rare"] : []), minimumCosine: number % 4 == 1 ? 0.2 : -1,
                limit: 10)
        }
        try await TestServers.withPostgresDatabase(server: TestServers.pgvector) { settings in
            try await PgvectorIndex.withIndex(settings, exactSearchLimit: 0) { approximate in
                try await approximate.prepare(model: "m", dimensions: 32)
                for entry in entries { try await approximate.upsert(entry) }
                let exact = PgvectorIndex(settings: settings, exactSearchLimit: .max)
                defer { exact.shutdown() }
                var found = 0
                var wanted = 0
                for query in queries {
                    let truth = try await exact.search(query)
                    let walked = try await approximate.search(query)
                    #expect(walked.total == truth.total)
                    #expect(walked.hits.count == truth.hits.count, "a page left short by the filter")
                    found += Set(walked.hits.map(\.imageID)).intersection(truth.hits.map(\.imageID)).count
                    wanted += truth.hits.count
                }
                #expect(wanted == 200)
                #expect(Double(found) / Double(wanted) > 0.9, "recall \(found) of \(wanted)")
            }
        }
    }

    @Test("a model is kept at one vector length: preparing it with another is refused, naming both")
    func oneLengthPerModel() async throws {
        try await TestServers.withPostgresDatabase(server: TestServers.pgvector) { settings in
            try await PgvectorIndex.withIndex(settings) { index in
                try await index.prepare(model: "clip", dimensions: 4)
                try await index.prepare(model: "clip", dimensions: 4)
                await #expect(throws: PgvectorDimensionMismatch(model: "clip", stored: 4, expected: 8)) {
                    try await index.prepare(model: "clip", dimensions: 8)
                }
                try await index.prepare(model: "other's model", dimensions: 8)
                let entry = VectorEntry(
                    imageID: ImageID(), teamID: TeamID(), collectionID: nil, tags: [],
                    createdAt: VectorIndexContractTests.epoch, model: "other's model", vector: [1, 0, 0, 0, 0, 0, 0, 0])
                try await index.upsert(entry)
                #expect(try await index.vector(imageID: entry.imageID, teamID: entry.teamID) == entry.vector)
            }
        }
    }
}
