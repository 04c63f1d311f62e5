import Foundation
import ImageAPICore
import Metrics

/// Times what the vector index does: `vector_index_operation_duration_seconds` by `backend`
/// (`VECTOR_BACKEND`) and `operation` (`search`, `upsert`, `delete`, `update_payload`, `read`,
/// `delete_all`), each call that succeeds.
struct MeasuredVectorIndex: VectorIndex {
    let index: any VectorIndex
    let backend: String

    private func timed<T>(_ operation: String, _ work: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        let result = try await work()
        Timer(
            label: "vector_index_operation_duration_seconds",
            dimensions: [("backend", backend), ("operation", operation)]
        ).recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1)))
        return result
    }

    func upsert(_ entry: VectorEntry) async throws { try await timed("upsert") { try await index.upsert(entry) } }
    func delete(imageID: ImageID) async throws {
        try await timed("delete") { try await index.delete(imageID: imageID) }
    }
    func deleteAll(teamID: TeamID, collectionID: UUID?) async throws -> Int {
        try await timed("delete_all") { try await index.deleteAll(teamID: teamID, collectionID: collectionID) }
    }
    func updatePayload(imageID: ImageID, collectionID: UUID?, tags: [String]) async throws {
        try await timed("update_payload") {
            try await index.updatePayload(imageID: imageID, collectionID: collectionID, tags: tags)
        }
    }
    func vector(imageID: ImageID, teamID: TeamID) async throws -> [Float]? {
        try await timed("read") { try await index.vector(imageID: imageID, teamID: teamID) }
    }
    func search(_ query: VectorQuery) async throws -> VectorMatches {
        try await timed("search") { try await index.search(query) }
    }
    func prepare(model: String, dimensions: Int) async throws {
        try await index.prepare(model: model, dimensions: dimensions)
    }
}

/// Times the embedder: `embedder_duration_seconds` by `model` and `input` (`image` or `text`),
/// each call that succeeds (a query-cache hit is not a call: the cache wraps this).
struct MeasuredEmbedder: Embedder {
    let embedder: any Embedder

    var modelID: String { embedder.modelID }
    var dimensions: Int { embedder.dimensions }
    var supportsText: Bool { embedder.supportsText }
    var textRelevance: RelevanceScale { embedder.textRelevance }
    var imageRelevance: RelevanceScale { embedder.imageRelevance }

    private func timed(_ input: String, _ work: () async throws -> [Float]) async throws -> [Float] {
        let start = ContinuousClock.now
        let result = try await work()
        Timer(label: "embedder_duration_seconds", dimensions: [("model", embedder.modelID), ("input", input)])
            .recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1)))
        return result
    }

    func embed(image data: Data) async throws -> [Float] {
        try await timed("image") { try await embedder.embed(image: data) }
    }
    func embed(text: String) async throws -> [Float] {
        try await timed("text") { try await embedder.embed(text: text) }
    }
    func prepare() async throws { try await embedder.prepare() }
}
