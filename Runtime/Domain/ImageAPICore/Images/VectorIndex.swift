import Foundation

/// One stored vector with the payload searches filter on.
public struct VectorEntry: Sendable, Equatable {
    /// The image the vector belongs to.
    public var imageID: ImageID
    /// The owning team (a mandatory search filter).
    public var teamID: TeamID
    /// The image's collection (an optional search filter).
    public var collectionID: UUID?
    /// The image's tags (a search filter: every tag asked for must be among them).
    public var tags: [String]
    /// When the image was uploaded (a search filter: the upload-date range).
    public var createdAt: Date
    /// The model that produced the vector.
    public var model: String
    /// The vector, L2-normalised.
    public var vector: [Float]

    /// Creates an entry.
    public init(
        imageID: ImageID, teamID: TeamID, collectionID: UUID?, tags: [String], createdAt: Date, model: String,
        vector: [Float]
    ) {
        self.imageID = imageID
        self.teamID = teamID
        self.collectionID = collectionID
        self.tags = tags
        self.createdAt = createdAt
        self.model = model
        self.vector = vector
    }
}

/// A vector search: the query vector, the team and model searched, the whole filter, the least
/// cosine a match may have, and the page wanted.
public struct VectorQuery: Sendable, Equatable {
    /// The query vector, L2-normalised.
    public var vector: [Float]
    /// Only vectors of this model.
    public var model: String
    /// Only this team's vectors.
    public var teamID: TeamID
    /// Collection, tags and upload-date range, applied inside the index.
    public var filter: ImageFilter
    /// Only matches whose cosine is at least this.
    public var minimumCosine: Float
    /// An image left out (the query image itself, when searching by image).
    public var excluding: ImageID?
    /// Matches to skip, best first.
    public var skip: Int
    /// Matches to return at most.
    public var limit: Int

    /// Creates a query.
    public init(
        vector: [Float], model: String, teamID: TeamID, filter: ImageFilter = ImageFilter(),
        minimumCosine: Float = -1, excluding: ImageID? = nil, skip: Int = 0, limit: Int
    ) {
        self.vector = vector
        self.model = model
        self.teamID = teamID
        self.filter = filter
        self.minimumCosine = minimumCosine
        self.excluding = excluding
        self.skip = skip
        self.limit = limit
    }

    /// Whether an entry's payload passes the query's team, model, exclusion and filter (not its
    /// cosine). What an index does not know of an entry (see ``VectorPayload``) does not exclude it.
    public func admits(teamID: TeamID, model: String, imageID: ImageID, payload: VectorPayload) -> Bool {
        guard teamID == self.teamID, model == self.model, imageID != excluding else { return false }
        if let collection = filter.collectionID, payload.collectionID != collection { return false }
        if let tags = payload.tags, !filter.tags.allSatisfy(tags.contains) { return false }
        if let createdAt = payload.createdAt {
            if let from = filter.uploadedFrom, createdAt < from { return false }
            if let to = filter.uploadedTo, createdAt > to { return false }
        }
        return true
    }
}

/// What an index keeps beside a vector to filter on. `tags` and `createdAt` are `nil` for
/// entries stored before the index kept them; such entries pass those filters, and the search
/// use case checks its page against the image records.
public struct VectorPayload: Sendable, Equatable {
    /// The image's collection.
    public var collectionID: UUID?
    /// The image's tags, when known.
    public var tags: Set<String>?
    /// When the image was uploaded, when known.
    public var createdAt: Date?

    /// Creates a payload.
    public init(collectionID: UUID?, tags: Set<String>?, createdAt: Date?) {
        self.collectionID = collectionID
        self.tags = tags
        self.createdAt = createdAt
    }

    /// The payload of an entry.
    public init(_ entry: VectorEntry) {
        self.init(collectionID: entry.collectionID, tags: Set(entry.tags), createdAt: entry.createdAt)
    }
}

/// One page of matches and how many matches there are in all.
public struct VectorMatches: Sendable, Equatable {
    /// The page, best first.
    public var hits: [VectorHit]
    /// Every match of the query (team, model, filter, least cosine, exclusion), not only the page.
    public var total: Int

    /// Creates a result.
    public init(hits: [VectorHit], total: Int) {
        self.hits = hits
        self.total = total
    }
}

/// A search hit: an image id and its cosine similarity to the query.
public struct VectorHit: Sendable, Equatable {
    /// The image.
    public var imageID: ImageID
    /// Cosine similarity, -1 to 1.
    public var cosine: Float

    /// Creates a hit.
    public init(imageID: ImageID, cosine: Float) {
        self.imageID = imageID
        self.cosine = cosine
    }
}

/// Stores vectors and finds the nearest ones within a team.
public protocol VectorIndex: Sendable {
    /// Adds or replaces the vector of an image.
    func upsert(_ entry: VectorEntry) async throws
    /// Removes an image's vector (absent is fine).
    func delete(imageID: ImageID) async throws
    /// Removes every vector of a team, or of one collection of a team; returns how many.
    @discardableResult
    func deleteAll(teamID: TeamID, collectionID: UUID?) async throws -> Int
    /// Changes what an image's vector is filtered by (its collection and tags; the vector does
    /// not change). Absent vectors are fine.
    func updatePayload(imageID: ImageID, collectionID: UUID?, tags: [String]) async throws
    /// The stored vector of one of a team's images, if any.
    func vector(imageID: ImageID, teamID: TeamID) async throws -> [Float]?
    /// The page of the team's vectors of the query's model that pass its filter, whose cosine
    /// is at least its minimum, best first, and the number of all such vectors (the order of
    /// equal cosines is the index's own). Filtering happens in the index, so `total` counts every
    /// match, not only those a capped candidate list held.
    func search(_ query: VectorQuery) async throws -> VectorMatches
    /// Makes the index ready for one embedder's vectors before the process serves: a backend
    /// that keeps each model's vectors apart creates that model's storage, and throws when it
    /// exists with another vector length, so that a process never starts on vectors it cannot
    /// search. Other models' vectors stay readable.
    /// - Parameters:
    ///   - model: The embedder's model id.
    ///   - dimensions: Its vector length.
    func prepare(model: String, dimensions: Int) async throws
}

extension VectorIndex {
    /// Nothing to prepare unless the backend says otherwise (one table holds every model).
    public func prepare(model: String, dimensions: Int) async throws {}
}

/// A vector index's refusal to hold an embedder's vectors because what it already stores has
/// another shape (another vector size or distance). Each index adapter's own error conforms, so
/// that a host can refuse to start with one line without naming any adapter's type.
public protocol VectorShapeMismatch: Error, CustomStringConvertible {}
