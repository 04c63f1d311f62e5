import Foundation
import NIOCore

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

/// One full-text match: the image and a 0-1 relevance.
public struct TextMatch: Sendable, Equatable {
    /// The matching image.
    public var image: ImageRecord
    /// The share of the query's words the image contains (0-1).
    public var coverage: Double
    /// SQLite FTS5's BM25 relevance, larger is better (the negated `bm25()` value).
    public var bm25: Double

    /// Creates a match.
    public init(image: ImageRecord, coverage: Double, bm25: Double) {
        self.image = image
        self.coverage = coverage
        self.bm25 = bm25
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
    /// Full-text search over file name, description, tags and EXIF text.
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

/// A message that could not be processed, kept with its last error. Only the first
/// ``maximumStoredBytes`` of the payload are kept, so bad messages cannot fill the store.
public struct DeadLetter: Sendable, Equatable {
    /// The most payload bytes kept.
    public static let maximumStoredBytes = 4096
    /// The longest error text kept.
    public static let maximumErrorLength = 2000

    /// The Pub/Sub message id.
    public var messageID: String
    /// The topic it was published on.
    public var topic: String
    /// The payload.
    public var data: Data
    /// How many deliveries were tried.
    public var attempts: Int
    /// The last error.
    public var lastError: String
    /// Who gave up: `handler` (the function acknowledged after its last attempt) or `delivery`
    /// (the push endpoint kept failing).
    public var source: String
    /// When it was dead-lettered.
    public var deadAt: Date

    /// Creates an entry.
    public init(
        messageID: String, topic: String, data: Data, attempts: Int, lastError: String, source: String, deadAt: Date
    ) {
        self.messageID = String(messageID.prefix(200))
        self.topic = topic
        self.data = data.prefix(Self.maximumStoredBytes)
        self.attempts = attempts
        self.lastError = String(lastError.prefix(Self.maximumErrorLength))
        self.source = source
        self.deadAt = deadAt
    }
}

/// Where messages that will not be retried again are kept.
public protocol DeadLetterQueue: Sendable {
    /// Adds an entry (one per message id; a second add replaces the first).
    func deadLetter(_ letter: DeadLetter) async throws
    /// Every entry, oldest first.
    func deadLetters() async throws -> [DeadLetter]
    /// One entry, by message id.
    func deadLetter(messageID: String) async throws -> DeadLetter?
    /// Removes an entry (once replayed); `false` when there was none.
    func removeDeadLetter(messageID: String) async throws -> Bool
}

/// Stores image bytes under slash-separated keys.
public protocol BlobStore: Sendable {
    /// Begins a new blob: bytes are appended to a staging area and only appear under the key
    /// when ``BlobUpload/commit(as:)`` is called.
    func beginUpload() async throws -> any BlobUpload
    /// Stores bytes under a key at once (replacing any blob there).
    func put(_ data: Data, at key: String) async throws
    /// Reads a whole blob, or `nil` when absent.
    func data(at key: String) async throws -> Data?
    /// The size of a blob, or `nil` when absent.
    func size(at key: String) async throws -> Int?
    /// Streams a blob, or part of it.
    func read(at key: String, range: Range<Int>?) async throws -> AsyncThrowingStream<ByteBuffer, any Error>
    /// Removes a blob; absent blobs are not an error.
    func delete(at key: String) async throws
    /// Whether a blob exists.
    func exists(at key: String) async throws -> Bool
}

/// A blob being written.
public protocol BlobUpload: Sendable {
    /// Appends bytes.
    func write(_ bytes: ByteBuffer) async throws
    /// A local file holding the bytes written so far, for decoders that read files.
    var stagingPath: String { get }
    /// Makes the blob durable and visible under `key`.
    func commit(as key: String) async throws
    /// Throws the staged bytes away.
    func abandon() async
}

/// What decoding an upload's header found.
public struct ImageInspection: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// The EXIF orientation, when present.
    public var orientation: Int?
    /// Useful EXIF fields as text.
    public var exif: [String: String]

    /// Creates an inspection result.
    public init(width: Int, height: Int, orientation: Int?, exif: [String: String]) {
        self.width = width
        self.height = height
        self.orientation = orientation
        self.exif = exif
    }
}

/// Why an image could not be used.
public enum ImageDecodingError: Error, Equatable, CustomStringConvertible {
    /// The image is larger than the pixel limit.
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// The data is truncated or corrupt; the decoder's own words (which may name files and
    /// library internals) are kept for the log, never shown to clients.
    case undecodable(String)

    /// A client-facing explanation.
    public var description: String {
        switch self {
        case .tooManyPixels(let width, let height, let limit):
            "image is \(width)x\(height) pixels, more than the limit of \(limit) pixels"
        case .undecodable:
            "image could not be decoded: the data is truncated, corrupt or not what its header declares"
        }
    }

    /// The explanation for the log, with the decoder's message.
    public var detail: String {
        switch self {
        case .tooManyPixels: description
        case .undecodable(let reason): "image could not be decoded: \(reason)"
        }
    }
}

/// Decodes and renders images.
public protocol ImageCodec: Sendable {
    /// Reads the header of an image file, refuses it when it has more than `maxPixels` pixels,
    /// then decodes every pixel to find truncation or corruption.
    func inspect(fileAt path: String, maxPixels: Int) async throws -> ImageInspection
    /// A JPEG thumbnail whose longer side is `size` pixels, orientation applied.
    func thumbnail(of data: Data, size: Int) async throws -> Data
}

/// Turns images (and, for multimodal models, text) into vectors.
public protocol Embedder: Sendable {
    /// The model identifier stored with each vector (`visual-features-v1`).
    var modelID: String { get }
    /// The vector length.
    var dimensions: Int { get }
    /// Whether ``embed(text:)`` is supported (semantic text search).
    var supportsText: Bool { get }
    /// The L2-normalised embedding of an image.
    func embed(image data: Data) async throws -> [Float]
    /// The L2-normalised embedding of a text; throws ``EmbedderError/textUnsupported`` when the
    /// model has no text tower.
    func embed(text: String) async throws -> [Float]
    /// How a text query's cosine with an image becomes a 0-1 search score.
    var textRelevance: RelevanceScale { get }
    /// How an image query's cosine with another image becomes a 0-1 search score.
    var imageRelevance: RelevanceScale { get }
    /// Loads and warms the model ahead of the first request (a no-op for embedders with nothing
    /// to load); throws when the model cannot be used.
    func prepare() async throws
}

extension Embedder {
    /// `(1 + cosine) / 2` unless the embedder says otherwise.
    public var textRelevance: RelevanceScale { .shiftedCosine }
    /// `(1 + cosine) / 2` unless the embedder says otherwise.
    public var imageRelevance: RelevanceScale { .shiftedCosine }
    /// Nothing to prepare unless the embedder says otherwise.
    public func prepare() async throws {}
}

/// A monotonic map from a cosine similarity (-1...1) to a search score (0...1), and back, so that
/// a score threshold becomes a cosine bound for the vector index.
public enum RelevanceScale: Sendable, Equatable {
    /// `(1 + cosine) / 2`: 1 for the same direction, 0.5 for orthogonal vectors.
    case shiftedCosine
    /// `max(0, cosine)`.
    case cosine
    /// `1 / (1 + exp(-(cosine - midpoint) / width))`: spreads a model's narrow band of cosines
    /// over 0-1, with `midpoint` scoring 0.5.
    case logistic(midpoint: Double, width: Double)

    /// The score of a cosine.
    public func score(cosine: Float) -> Double {
        let value = Double(cosine)
        let score: Double
        switch self {
        case .shiftedCosine: score = (1 + value) / 2
        case .cosine: score = value
        case .logistic(let midpoint, let width): score = 1 / (1 + Foundation.exp(-(value - midpoint) / width))
        }
        return min(1, max(0, score))
    }

    /// The smallest cosine whose score reaches `score`.
    public func minimumCosine(forScore score: Double) -> Float {
        switch self {
        case .shiftedCosine: return Float(2 * score - 1)
        case .cosine: return score <= 0 ? -1 : Float(score)
        case .logistic(let midpoint, let width):
            if score <= 0 { return -1 }
            if score >= 1 { return 1.0001 }
            return Float(midpoint + width * Foundation.log(score / (1 - score)))
        }
    }
}

/// Errors every embedder may throw.
public enum EmbedderError: Error, Equatable, CustomStringConvertible {
    /// The embedder compares images only.
    case textUnsupported(model: String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case .textUnsupported(let model): "the \(model) embedder cannot embed text"
        }
    }
}

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

/// A message waiting in the outbox, as the local Pub/Sub delivers it.
public struct QueuedMessage: Sendable, Equatable {
    /// The message.
    public var message: OutboxMessage
    /// When it was published (committed).
    public var publishedAt: Date
    /// Delivery attempts so far, counting the one this claim starts.
    public var attempts: Int

    /// Creates a queued message.
    public init(message: OutboxMessage, publishedAt: Date, attempts: Int) {
        self.message = message
        self.publishedAt = publishedAt
        self.attempts = attempts
    }
}

/// The outbox read as a durable queue: what the emulator's Pub/Sub delivers from.
public protocol OutboxQueue: Sendable {
    /// Claims messages that are due: each gets one more attempt counted and is hidden from other
    /// claims until `leaseUntil` (so a crash mid-delivery means redelivery, never loss).
    func claimDueMessages(now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMessage]
    /// Removes a delivered message.
    func acknowledge(messageID: String) async throws
    /// Records a failed delivery and when to try again.
    func scheduleRetry(messageID: String, error: String, at date: Date) async throws
    /// Moves a message to the dead-letter queue with its last error.
    func moveToDeadLetters(messageID: String, error: String, at date: Date) async throws
    /// When the next message falls due, if any is waiting.
    func nextDueDate() async throws -> Date?
}
