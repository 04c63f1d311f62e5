import Foundation
import ImageAPICore

/// Vectors in one actor's memory, searched exactly (a dot product per stored vector of the team
/// and model: vectors are L2-normalised, so it is the cosine). Not durable; for tests and demos.
public actor MemoryVectorIndex: VectorIndex {
    private var entries: [UUID: VectorEntry] = [:]

    /// Creates an empty index.
    public init() {}

    /// Adds or replaces an image's vector.
    public func upsert(_ entry: VectorEntry) async throws {
        entries[entry.imageID] = entry
    }

    /// Removes an image's vector.
    public func delete(imageID: UUID) async throws {
        entries[imageID] = nil
    }

    /// Removes a team's vectors, or one collection's.
    @discardableResult
    public func deleteAll(teamID: UUID, collectionID: UUID?) async throws -> Int {
        let doomed = entries.values.filter {
            $0.teamID == teamID && (collectionID == nil || $0.collectionID == collectionID)
        }
        for entry in doomed { entries[entry.imageID] = nil }
        return doomed.count
    }

    /// Files an image's vector under another collection.
    public func updateCollection(imageID: UUID, collectionID: UUID?) async throws {
        entries[imageID]?.collectionID = collectionID
    }

    /// One of a team's vectors.
    public func vector(imageID: UUID, teamID: UUID) async throws -> VectorEntry? {
        entries[imageID].flatMap { $0.teamID == teamID ? $0 : nil }
    }

    /// The team's vectors of `model` nearest to `query`, best first.
    public func search(
        _ query: [Float], model: String, teamID: UUID, collectionID: UUID?, minimumCosine: Float, limit: Int
    ) async throws -> [VectorHit] {
        let hits = entries.values.compactMap { entry -> VectorHit? in
            guard entry.teamID == teamID, entry.model == model, entry.vector.count == query.count,
                collectionID == nil || entry.collectionID == collectionID
            else { return nil }
            let cosine = zip(entry.vector, query).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            return cosine >= minimumCosine ? VectorHit(imageID: entry.imageID, cosine: cosine) : nil
        }
        return Array(hits.sorted { $0.cosine > $1.cosine }.prefix(max(0, limit)))
    }
}
