import Foundation

/// The processing state machine of images: claim an attempt, record success or failure, queue
/// again (one image, or every image of a team not embedded with the current model, each with its
/// processing message in the same transaction), and count where a team's images stand. The
/// decisions are the domain's (`EmbeddingRules.swift`: ``ImageRecord/startingProcessing(model:maxAttempts:at:)``,
/// ``ImageRecord/needsReembedding(status:embeddedWith:model:includeCurrent:)``, ...); a backend
/// reads, applies them and writes in one transaction.
public protocol EmbeddingJobs: Sendable {
    /// Sets `processing` and counts one more attempt, unless the image is gone, already embedded
    /// with `model`, or has used up its attempts (`failed`, or `maxAttempts` counted): a forged or
    /// replayed event never raises `embedding_attempts` past the limit.
    func beginProcessing(
        id: ImageID, teamID: TeamID, model: String, maxAttempts: Int, at date: Date
    ) async throws -> ProcessingStart
    /// Records a successful embedding and the image's perceptual hash.
    func completeProcessing(
        id: ImageID, teamID: TeamID, model: String, dimensions: Int, perceptualHash: PerceptualHash?, at date: Date
    ) async throws
    /// Records a failed attempt with its error. While attempts remain the image stays `pending`
    /// (a redelivery starts the next one); the last failure (`final`) leaves it `failed`.
    func failProcessing(id: ImageID, teamID: TeamID, error: String, final: Bool, at date: Date) async throws
    /// Postpones an attempt that met an unavailable dependency
    /// (``ImageRecord/markPostponed(waitingFor:at:)``: `pending`, the attempt given back) and
    /// publishes the next delivery, `message`, due at `dueAt`, in one transaction. Returns the
    /// updated image, or `nil` when absent (then nothing is published).
    func postponeProcessing(
        id: ImageID, teamID: TeamID, waitingFor reason: String, at date: Date, publishing message: OutboxMessage,
        dueAt: Date
    ) async throws -> ImageRecord?
    /// Marks an image `pending` again with zero attempts and publishes its processing message,
    /// in one transaction. Returns the updated image, or `nil` when absent.
    func requeueImage(
        id: ImageID, teamID: TeamID, at date: Date, publishing message: OutboxMessage
    ) async throws
        -> ImageRecord?
    /// Marks `pending`, with zero attempts, every image of a team that is not embedded with
    /// `model` (stale vectors and failures; with `includeCurrent`, images embedded with `model`
    /// too) and publishes a processing message for each, in one transaction. Images already
    /// pending or processing are left as they are.
    ///
    /// SQLite and memory queue a whole team in one transaction. A backend whose transactions
    /// are bounded (Firestore holds at most 500 writes in one) queues in batches instead, each
    /// batch's images marked together with their messages, so a crash between batches loses
    /// nothing: the images not yet queued are still stale, and asking again queues them.
    /// - Returns: How many images were queued.
    func requeueImages(
        teamID: TeamID, notEmbeddedWith model: String, includeCurrent: Bool, reason: String, at date: Date
    ) async throws -> Int
    /// Counts a team's images by where they stand against the current `model`.
    func embeddingSummary(teamID: TeamID, model: String) async throws -> EmbeddingSummary
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
    public let existingImageID: ImageID

    /// Creates the error.
    public init(existingImageID: ImageID) {
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
