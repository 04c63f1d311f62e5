import Foundation

/// What a list of images may be narrowed to.
public struct ImageFilter: Sendable, Equatable {
    /// Only images in this collection.
    public var collectionID: UUID?
    /// Only images carrying every one of these tags.
    public var tags: [String]
    /// Only images uploaded at or after this instant.
    public var uploadedFrom: Date?
    /// Only images uploaded at or before this instant.
    public var uploadedTo: Date?

    /// Creates a filter; the default lets everything through.
    public init(collectionID: UUID? = nil, tags: [String] = [], uploadedFrom: Date? = nil, uploadedTo: Date? = nil) {
        self.collectionID = collectionID
        self.tags = tags
        self.uploadedFrom = uploadedFrom
        self.uploadedTo = uploadedTo
    }

    /// Whether an image passes the filter.
    public func admits(_ image: ImageRecord) -> Bool {
        if let collectionID, image.collectionID != collectionID { return false }
        if !tags.allSatisfy(image.tags.contains) { return false }
        if let uploadedFrom, image.createdAt < uploadedFrom { return false }
        if let uploadedTo, image.createdAt > uploadedTo { return false }
        return true
    }
}

/// One full-text match, as a backend finds it: the image, how many of the query's words it
/// holds, and the backend's own ranking weight.
public struct TextMatch: Sendable, Equatable {
    /// The matching image.
    public var image: ImageRecord
    /// The share of the query's words the image contains (0-1).
    public var coverage: Double
    /// The backend's own ranking of the match: at least 0, larger is better, comparable only
    /// between the matches of one answer (SQLite: the negated FTS5 `bm25()`; a backend without
    /// term weighting gives every match the same weight).
    public var weight: Double

    /// Creates a match.
    public init(image: ImageRecord, coverage: Double, weight: Double) {
        self.image = image
        self.coverage = coverage
        self.weight = weight
    }

    /// The relevance of each match, 0 to 1, as the API defines it for text search:
    /// `0.7 × coverage + 0.3 × weight / the best weight among the matches` (1 for the weight part
    /// when no match has any weight). Every image holding all the words scores at least 0.7.
    /// - Parameter matches: One answer's matches.
    /// - Returns: Each match's image and relevance, in the order given.
    public static func relevance(of matches: [TextMatch]) -> [(image: ImageRecord, relevance: Double)] {
        let best = matches.map(\.weight).max() ?? 0
        return matches.map { match in
            (match.image, 0.7 * match.coverage + 0.3 * (best > 0 ? max(0, match.weight) / best : 1))
        }
    }
}

/// Image metadata storage, every read and write scoped to a team.
///
/// Writes that must be published (an upload, a reprocess request) take the message to publish
/// and write it in the same transaction as the metadata: a transactional outbox.
public protocol ImageStore: Sendable {
    /// Stores a new image and its processing message in one transaction. Unless
    /// `allowDuplicate`, the team may hold no other image with the same SHA-256: the check and
    /// the insert are one step (a unique index on team and digest), so of concurrent uploads of
    /// the same bytes exactly one is stored.
    /// - Throws: ``DuplicateImageError`` naming the image that already has these bytes.
    func insertImage(_ image: ImageRecord, publishing message: OutboxMessage, allowDuplicate: Bool) async throws
    /// One of a team's images.
    func image(id: UUID, teamID: UUID) async throws -> ImageRecord?
    /// A team's images by id, in no particular order; unknown ids are left out.
    func images(ids: [UUID], teamID: UUID) async throws -> [ImageRecord]
    /// A page of a team's images, newest first.
    func images(teamID: UUID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord>
    /// A team's image with these exact bytes, if one exists.
    func image(sha256: String, teamID: UUID) async throws -> ImageRecord?
    /// Replaces the editable fields (description, tags, collection, updated-at). False when absent.
    func updateImage(_ image: ImageRecord) async throws -> Bool
    /// Deletes an image's metadata and returns what was deleted.
    func deleteImage(id: UUID, teamID: UUID) async throws -> ImageRecord?
    /// Sets `processing` and counts one more attempt, unless the image is gone, already embedded
    /// with `model`, or has used up its attempts (`failed`, or `maxAttempts` counted): a forged or
    /// replayed event never raises `embedding_attempts` past the limit.
    func beginProcessing(
        id: UUID, teamID: UUID, model: String, maxAttempts: Int, at date: Date
    ) async throws -> ProcessingStart
    /// Records a successful embedding.
    func completeProcessing(id: UUID, teamID: UUID, model: String, dimensions: Int, at date: Date) async throws
    /// Records a failed attempt with its error. While attempts remain the image stays `pending`
    /// (a redelivery starts the next one); the last failure (`final`) leaves it `failed`.
    func failProcessing(id: UUID, teamID: UUID, error: String, final: Bool, at date: Date) async throws
    /// Marks an image `pending` again with zero attempts and publishes its processing message,
    /// in one transaction. Returns the updated image, or `nil` when absent.
    func requeueImage(
        id: UUID, teamID: UUID, at date: Date, publishing message: OutboxMessage
    ) async throws
        -> ImageRecord?
    /// Marks `pending`, with zero attempts, every image of a team that is not embedded with
    /// `model` (stale vectors and failures; with `includeCurrent`, images embedded with `model`
    /// too) and publishes a processing message for each, in one transaction. Images already
    /// pending or processing are left as they are.
    /// - Returns: How many images were queued.
    func requeueImages(
        teamID: UUID, notEmbeddedWith model: String, includeCurrent: Bool, reason: String, at date: Date
    ) async throws -> Int
    /// Counts a team's images by where they stand against the current `model`.
    func embeddingSummary(teamID: UUID, model: String) async throws -> EmbeddingSummary
    /// Full-text search over file name, description, tags and EXIF text: the images holding at
    /// least one of the words (each matched as a prefix), best weight first, at most `limit`.
    func searchText(_ words: [String], teamID: UUID, filter: ImageFilter, limit: Int) async throws -> [TextMatch]
}

/// A team's images counted by embedding state against the current model.
public struct EmbeddingSummary: Codable, Sendable, Equatable {
    /// The current embedder's model id.
    public var model: String
    /// Every image of the team.
    public var total: Int
    /// Embedded with the current model: in vector search.
    public var current: Int
    /// Embedded with another model: out of vector search until re-embedded.
    public var stale: Int
    /// Queued for processing.
    public var pending: Int
    /// Being processed.
    public var processing: Int
    /// Failed (see each image's `embedding_error`).
    public var failed: Int

    /// Creates a summary.
    public init(model: String, total: Int, current: Int, stale: Int, pending: Int, processing: Int, failed: Int) {
        self.model = model
        self.total = total
        self.current = current
        self.stale = stale
        self.pending = pending
        self.processing = processing
        self.failed = failed
    }
}

/// An upload whose bytes the team already has, refused because duplicates were not allowed.
public struct DuplicateImageError: Error, Equatable, CustomStringConvertible {
    /// The image that already has these bytes.
    public let existingImageID: UUID

    /// Creates the error.
    public init(existingImageID: UUID) {
        self.existingImageID = existingImageID
    }

    /// Which image holds the same bytes.
    public var description: String { "an identical image already exists: \(existingImageID.lowercasedString)" }
}

/// What ``ImageStore/beginProcessing(id:teamID:model:maxAttempts:at:)`` found.
public enum ProcessingStart: Sendable, Equatable {
    /// The attempt started; the image as it is now, attempts counted.
    case started(ImageRecord)
    /// The image was already embedded with this model: nothing to do.
    case alreadyDone(ImageRecord)
    /// No such image (deleted since the message was published).
    case missing
    /// Every attempt has been used (the image is `failed`, or its attempts reached the limit):
    /// nothing to do until someone asks for a reprocess.
    case exhausted(ImageRecord)
}
