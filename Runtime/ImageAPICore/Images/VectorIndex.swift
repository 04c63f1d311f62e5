import Foundation

/// One stored vector with the payload searches filter on.
public struct VectorEntry: Sendable, Equatable {
    /// The image the vector belongs to.
    public var imageID: UUID
    /// The owning team (a mandatory search filter).
    public var teamID: UUID
    /// The image's collection (an optional search filter).
    public var collectionID: UUID?
    /// The model that produced the vector.
    public var model: String
    /// The vector, L2-normalised.
    public var vector: [Float]

    /// Creates an entry.
    public init(imageID: UUID, teamID: UUID, collectionID: UUID?, model: String, vector: [Float]) {
        self.imageID = imageID
        self.teamID = teamID
        self.collectionID = collectionID
        self.model = model
        self.vector = vector
    }
}

/// A search hit: an image id and its cosine similarity to the query.
public struct VectorHit: Sendable, Equatable {
    /// The image.
    public var imageID: UUID
    /// Cosine similarity, -1 to 1.
    public var cosine: Float

    /// Creates a hit.
    public init(imageID: UUID, cosine: Float) {
        self.imageID = imageID
        self.cosine = cosine
    }
}

/// Stores vectors and finds the nearest ones within a team.
public protocol VectorIndex: Sendable {
    /// Adds or replaces the vector of an image.
    func upsert(_ entry: VectorEntry) async throws
    /// Removes an image's vector (absent is fine).
    func delete(imageID: UUID) async throws
    /// Removes every vector of a team, or of one collection of a team; returns how many.
    @discardableResult
    func deleteAll(teamID: UUID, collectionID: UUID?) async throws -> Int
    /// Moves an image's vector to another collection (its payload changes, the vector does not).
    func updateCollection(imageID: UUID, collectionID: UUID?) async throws
    /// The stored vector of an image, if any.
    func vector(imageID: UUID, teamID: UUID) async throws -> VectorEntry?
    /// The vectors most similar to `query` among the team's vectors of `model` whose cosine is at
    /// least `minimumCosine`, best first, at most `limit` of them.
    func search(
        _ query: [Float], model: String, teamID: UUID, collectionID: UUID?, minimumCosine: Float, limit: Int
    ) async throws -> [VectorHit]
}
