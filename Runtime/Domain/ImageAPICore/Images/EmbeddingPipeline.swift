import Foundation

/// A delivered processing message: its id and bytes as the transport gave them (kept whole in a
/// dead letter), and the request they hold.
public struct ProcessingDelivery: Sendable, Equatable {
    /// The transport's message id.
    public let messageID: String
    /// The message's bytes.
    public let data: Data
    /// The request decoded from `data`.
    public let request: ImageProcessingRequest

    /// Describes a delivery.
    /// - Parameters:
    ///   - messageID: The transport's message id.
    ///   - data: The message's bytes.
    ///   - request: The request decoded from them.
    public init(messageID: String, data: Data, request: ImageProcessingRequest) {
        self.messageID = messageID
        self.data = data
        self.request = request
    }
}

/// What one delivery of a processing message did.
public enum ProcessingOutcome: Sendable, Equatable {
    /// The image has its thumbnail and its vector, and is `success`; `seconds` the work took.
    case embedded(ImageRecord, model: String, seconds: Double)
    /// The image no longer exists: nothing to do.
    case missing(ImageID)
    /// The image is already embedded with the current model: a redelivery, nothing to do.
    case alreadyDone(ImageRecord)
    /// The image has used every attempt: nothing to do until someone asks for a reprocess.
    case exhausted(ImageRecord)
    /// The attempt failed and attempts remain: the image stays `pending`, and the message must
    /// be delivered again.
    case failed(ImageRecord, attempt: Int, limit: Int, reason: String)
    /// The last attempt failed: the image is `failed` and the message is a dead letter.
    case gaveUp(ImageRecord, attempts: Int, limit: Int, reason: String)
    /// A dependency was unavailable: the image stays `pending` with its attempt given back, and
    /// the next delivery waits in the outbox until `until`. This delivery is done.
    case postponed(ImageRecord, until: Date, reason: String)
}

/// Tells an unavailable dependency (nothing wrong with the image: the vector index, the blob
/// store or the embedding service is down, slow or rationing) from a failure of the image. The
/// domain knows its own ``DomainError`` kinds; the host adds the errors of the adapters it wires.
public struct OutageClassifier: Sendable {
    private let isOutage: @Sendable (any Error) -> Bool

    /// Creates a classifier.
    /// - Parameter isOutage: Whether an error that is not a ``DomainError`` says a dependency is unavailable.
    public init(_ isOutage: @escaping @Sendable (any Error) -> Bool = { _ in false }) {
        self.isOutage = isOutage
    }

    /// Whether `error` says a dependency is unavailable for now: a ``DomainError`` that is
    /// `unavailable`, `unavailableFor` or `rateLimited`, or what the host's rule recognises.
    /// - Parameter error: The error.
    /// - Returns: `true` for an outage.
    public func isOutage(_ error: any Error) -> Bool {
        if let error = error as? DomainError {
            switch error.kind {
            case .unavailable, .unavailableFor, .rateLimited: return true
            default: return false
            }
        }
        return isOutage(error)
    }
}

/// The use case of making an uploaded image searchable: begin an attempt (within the attempt
/// limit), make the thumbnail, embed, store the vector, complete; on failure record the attempt
/// and, at the last one, keep the message as a dead letter; and if the image was changed or deleted
/// meanwhile, bring the index in line. Every step can be repeated safely, since a message may be
/// delivered more than once.
public struct EmbeddingPipeline: Sendable {
    private let images: ImageServices
    private let clock: any TimeSource
    private let storeWait: Duration

    /// The wait before the first postponed delivery, in seconds; each later one waits twice as
    /// long, up to ``longestPostponement``.
    public static let firstPostponement: Double = 10
    /// The longest wait between postponed deliveries, in seconds (10 minutes).
    public static let longestPostponement: Double = 600

    /// How long one delivery waits for a metadata store that cannot be reached before it is
    /// answered as failed (40 s, below every ack deadline this project sets: 60 s on Google's
    /// emulator, 120 s on Pub/Sub and locally). While the store is down nothing can record a
    /// postponement, and every delivery given back spends one of the transport's own delivery
    /// attempts (Pub/Sub's dead-letter policy allows 5), so a delivery waits instead.
    public static let longestStoreWait: Duration = .seconds(40)

    /// Creates the service.
    /// - Parameters:
    ///   - images: The image pipeline's ports and settings.
    ///   - clock: Where the processing times come from.
    ///   - storeWait: How long a delivery waits for an unavailable metadata store
    ///     (``longestStoreWait``).
    public init(images: ImageServices, clock: any TimeSource, storeWait: Duration = Self.longestStoreWait) {
        self.images = images
        self.clock = clock
        self.storeWait = storeWait
    }

    /// Processes one delivery.
    /// - Parameter delivery: The message.
    /// - Returns: What it did.
    /// - Throws: The errors of the stores while recording the attempt.
    public func process(_ delivery: ProcessingDelivery) async throws -> ProcessingOutcome {
        let outcome = try await processNow(delivery)
        PipelineMetrics.processing(outcome)
        return outcome
    }

    private func processNow(_ delivery: ProcessingDelivery) async throws -> ProcessingOutcome {
        let request = delivery.request
        let limit = images.settings.maxProcessingAttempts
        let startedAt = clock.now()
        var tries = 0
        let start: ProcessingStart = try await waitingForTheStore {
            tries += 1
            // A try that met an outage may have committed and lost only its answer: then the
            // image is `processing` since this very instant, and this attempt is already counted.
            if tries > 1, let begun = try await attemptBegun(request, at: startedAt) { return .started(begun) }
            return try await images.store.beginProcessing(
                id: request.imageID, teamID: request.teamID, model: images.embedder.modelID, maxAttempts: limit,
                at: startedAt)
        }
        let image: ImageRecord
        switch start {
        case .missing: return .missing(request.imageID)
        case .alreadyDone(let done): return .alreadyDone(done)
        case .exhausted(let spent): return .exhausted(spent)
        case .started(let started): image = started
        }
        let began = ContinuousClock.now
        do {
            try await embed(image)
            return .embedded(image, model: images.embedder.modelID, seconds: Self.seconds(ContinuousClock.now - began))
        } catch let error where images.outages.isOutage(error) {
            return try await waitingForTheStore {
                try await postpone(image, delivery, reason: String(describing: error))
            }
        } catch {
            let reason = String(describing: error)
            let attempts = image.embeddingAttempts
            try await images.store.failProcessing(
                id: image.id, teamID: image.teamID, error: reason, final: attempts >= limit, at: clock.now())
            guard attempts >= limit else { return .failed(image, attempt: attempts, limit: limit, reason: reason) }
            try await deadLetter(messageID: delivery.messageID, data: delivery.data, attempts: attempts, reason: reason)
            return .gaveUp(image, attempts: attempts, limit: limit, reason: reason)
        }
    }

    /// Keeps a delivery that can never be processed (unreadable, or not a processing request) as a
    /// dead letter, so that it can be acknowledged: no redelivery can make it readable.
    /// - Parameters:
    ///   - messageID: The transport's message id (for a body that is no message at all, see
    ///     ``unreadableMessageID(for:)``).
    ///   - data: The bytes as delivered.
    ///   - reason: Why it cannot be processed.
    public func deadLetterUnprocessable(messageID: String, data: Data, reason: String) async throws {
        try await deadLetter(messageID: messageID, data: data, attempts: 1, reason: reason)
    }

    /// The dead letter's id for a body that is no message at all: `unreadable-` and the FNV-1a hash
    /// of the body, so that redeliveries of one body make one letter.
    /// - Parameter body: The bytes.
    /// - Returns: The message id.
    public static func unreadableMessageID(for body: Data) -> String {
        let hash = body.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01b3 }
        return "unreadable-" + String(hash, radix: 16)
    }

    /// Thumbnail, embedding, vector, then the status; then the index brought in line with an
    /// image changed or deleted while it was being processed.
    private func embed(_ image: ImageRecord) async throws {
        guard let original = try await images.blobs.data(at: image.originalBlobKey) else {
            throw ProcessingError("the original image bytes are missing from the blob store")
        }
        try await PipelineMetrics.stage("thumbnail") {
            let thumbnail = try await images.codec.thumbnail(of: original, size: images.settings.thumbnailSize)
            try await images.blobs.put(
                thumbnail, at: image.thumbnailBlobKey, attributes: BlobAttributes(contentType: "image/jpeg"))
        }
        let hash = try await PipelineMetrics.stage("phash") {
            PerceptualHash.of(grey: try await images.codec.greyLevels(of: original, side: PerceptualHash.side))
        }
        let vector = try await PipelineMetrics.stage("embed") { try await images.embedder.embed(image: original) }
        guard vector.count == images.embedder.dimensions else {
            throw ProcessingError(
                "the embedder returned \(vector.count) values, expected \(images.embedder.dimensions)")
        }
        try await PipelineMetrics.stage("index") {
            try await images.vectors.upsert(
                VectorEntry(
                    imageID: image.id, teamID: image.teamID, collectionID: image.collectionID, tags: image.tags,
                    createdAt: image.createdAt, model: images.embedder.modelID, vector: vector))
        }
        try await images.store.completeProcessing(
            id: image.id, teamID: image.teamID, model: images.embedder.modelID, dimensions: vector.count,
            perceptualHash: hash, at: clock.now())
        if let current = try await images.store.image(id: image.id, teamID: image.teamID) {
            // Moved or retagged while it was being processed: the index filters by what is current.
            if current.collectionID != image.collectionID || current.tags != image.tags {
                try await images.vectors.updatePayload(
                    imageID: image.id, collectionID: current.collectionID, tags: current.tags)
            }
        } else {
            // Deleted while it was being processed: take back what this run added.
            try await images.vectors.delete(imageID: image.id)
            try await images.blobs.delete(at: image.thumbnailBlobKey)
        }
    }

    /// An attempt that met an unavailable dependency: given back, and the next delivery put in the
    /// outbox after a wait that doubles with each postponement; once the image has waited
    /// `PROCESSING_POSTPONE_LIMIT_SECONDS` since its first postponement, it fails for good.
    private func postpone(
        _ image: ImageRecord, _ delivery: ProcessingDelivery, reason: String
    ) async throws -> ProcessingOutcome {
        let now = clock.now()
        let since = delivery.request.postponedSince ?? now
        let limit = Double(images.settings.postponeLimitSeconds)
        guard now.timeIntervalSince(since) < limit else {
            let final = "waited \(Int(limit)) s (PROCESSING_POSTPONE_LIMIT_SECONDS) for a dependency: \(reason)"
            try await images.store.failProcessing(
                id: image.id, teamID: image.teamID, error: final, final: true, at: now)
            try await deadLetter(
                messageID: delivery.messageID, data: delivery.data, attempts: image.embeddingAttempts, reason: final)
            return .gaveUp(
                image, attempts: image.embeddingAttempts, limit: images.settings.maxProcessingAttempts, reason: final)
        }
        var next = delivery.request
        next.postponedSince = since
        let postponements = (next.postponements ?? 0) + 1
        next.postponements = postponements
        let wait = min(Self.longestPostponement, Self.firstPostponement * pow(2, Double(postponements - 1)))
        let due = now.addingTimeInterval(wait)
        guard
            let postponed = try await images.store.postponeProcessing(
                id: image.id, teamID: image.teamID, waitingFor: reason, at: now, publishing: .processing(next),
                dueAt: due)
        else { return .missing(image.id) }
        return .postponed(postponed, until: due, reason: reason)
    }

    /// The image, when an earlier try of this delivery began its attempt: `processing`, changed at
    /// `date` (within the 2 ms that the stores' clocks may round a time to).
    private func attemptBegun(_ request: ImageProcessingRequest, at date: Date) async throws -> ImageRecord? {
        guard let image = try await images.store.image(id: request.imageID, teamID: request.teamID),
            image.embeddingStatus == .processing, abs(image.updatedAt.timeIntervalSince(date)) < 0.002
        else { return nil }
        return image
    }

    /// Runs a step of the store again, after pauses from 0.5 s doubling up to 5 s, while it fails
    /// with an outage and ``storeWait`` has not passed since the first try; then the step's error.
    private func waitingForTheStore<T>(_ step: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + storeWait
        var pause = Duration.milliseconds(500)
        while true {
            do {
                return try await step()
            } catch let error where images.outages.isOutage(error) && ContinuousClock.now + pause < deadline {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }

    private func deadLetter(messageID: String, data: Data, attempts: Int, reason: String) async throws {
        try await images.deadLetters.deadLetter(
            DeadLetter(
                messageID: messageID, topic: ImageProcessingRequest.topic, data: data, attempts: attempts,
                lastError: reason, source: "handler", deadAt: clock.now()))
        PipelineMetrics.deadLettered(source: "handler")
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// A processing step that failed for a reason worth showing in `embedding_error`.
struct ProcessingError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
