import Foundation
import ImageAPICore

/// Vectors in one actor's memory, searched exactly (a dot product per stored vector of the team
/// and model: vectors are L2-normalised, so it is the cosine). Not durable; for tests and demos.
public actor MemoryVectorIndex: VectorIndex {
    private var entries: [ImageID: VectorEntry] = [:]

    /// Creates an empty index.
    public init() {}

    /// Adds or replaces an image's vector.
    public func upsert(_ entry: VectorEntry) async throws {
        entries[entry.imageID] = entry
    }

    /// Removes an image's vector.
    public func delete(imageID: ImageID) async throws {
        entries[imageID] = nil
    }

    /// Removes a team's vectors, or one collection's.
    @discardableResult
    public func deleteAll(teamID: TeamID, collectionID: UUID?) async throws -> Int {
        let doomed = entries.values.filter {
            $0.teamID == teamID && (collectionID == nil || $0.collectionID == collectionID)
        }
        for entry in doomed { entries[entry.imageID] = nil }
        return doomed.count
    }

    /// Changes the collection and tags an image's vector is filtered by.
    public func updatePayload(imageID: ImageID, collectionID: UUID?, tags: [String]) async throws {
        entries[imageID]?.collectionID = collectionID
        entries[imageID]?.tags = tags
    }

    /// One of a team's vectors.
    public func vector(imageID: ImageID, teamID: TeamID) async throws -> [Float]? {
        entries[imageID].flatMap { $0.teamID == teamID ? $0.vector : nil }
    }

    /// A page of the team's vectors of the query's model that pass its filter, best first (equal
    /// cosines by image id), and how many pass in all.
    public func search(_ query: VectorQuery) async throws -> VectorMatches {
        let hits = entries.values.compactMap { entry -> VectorHit? in
            guard entry.vector.count == query.vector.count,
                query.admits(
                    teamID: entry.teamID, model: entry.model, imageID: entry.imageID, payload: VectorPayload(entry))
            else { return nil }
            let cosine = zip(entry.vector, query.vector).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            return cosine >= query.minimumCosine ? VectorHit(imageID: entry.imageID, cosine: cosine) : nil
        }
        let ranked = hits.sorted {
            $0.cosine != $1.cosine ? $0.cosine > $1.cosine : $0.imageID < $1.imageID
        }
        return VectorMatches(
            hits: Array(ranked.dropFirst(max(0, query.skip)).prefix(max(0, query.limit))), total: ranked.count)
    }
}
