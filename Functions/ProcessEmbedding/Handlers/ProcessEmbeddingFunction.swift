import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageAPIHTTP

/// The ProcessEmbedding function: a CloudEvent function triggered by the Pub/Sub message an
/// upload publishes. It makes the thumbnail, computes the embedding and stores the vector.
///
/// A failed attempt answers 500 so Pub/Sub delivers the message again; the attempt that reaches
/// `PROCESSING_MAX_ATTEMPTS` instead leaves the image `failed`, puts the message in the
/// dead-letter queue and answers 204. A message for an image already embedded with the current
/// model, or for a deleted image, is acknowledged and changes nothing; a delivery that cannot be
/// read at all is dead-lettered and acknowledged (204), never refused: Pub/Sub would redeliver it.
public struct ProcessEmbeddingFunction: CloudEventFunction {
    /// The deployed service name.
    public let name = "process-embedding"
    /// Where deliveries come: `/events/process-embedding` (the emulator serves it beside the
    /// other functions); the standalone binary also serves `/`, Eventarc's default path.
    public let eventPath: String
    /// Only Pub/Sub's message-published events.
    public let acceptedEventTypes: Set<String> = [PubSubMessagePublished.eventType]

    let api: APIServices
    let images: ImageServices

    /// Creates the function.
    /// - Parameters:
    ///   - api: The management services.
    ///   - images: The image pipeline's ports.
    ///   - eventPath: Where deliveries come.
    public init(api: APIServices, images: ImageServices, eventPath: String = "/events/process-embedding") {
        self.api = api
        self.images = images
        self.eventPath = eventPath
    }

    /// Processes one delivery.
    public func handle(_ event: CloudEvent<PubSubMessagePublished>, context: FunctionContext) async throws {
        let message = event.data.message
        let logger = context.logger
        let request: ImageProcessingRequest
        do {
            request = try JSONCoding.makeDecoder().decode(ImageProcessingRequest.self, from: message.data)
        } catch {
            // Redelivering a malformed message can never succeed: keep it and acknowledge.
            logger.error("Malformed processing message", metadata: ["message_id": .string(message.messageID)])
            try await deadLetter(message, attempts: 1, error: "malformed message: \(error)")
            return
        }
        let limit = images.settings.maxProcessingAttempts
        let start = try await images.store.beginProcessing(
            id: request.imageID, teamID: request.teamID, model: images.embedder.modelID, maxAttempts: limit,
            at: api.clock.now())
        let image: ImageRecord
        switch start {
        case .missing:
            logger.info(
                "Image no longer exists; message dropped", metadata: ["image_id": .string("\(request.imageID)")])
            return
        case .alreadyDone(let done):
            logger.info("Image already embedded; redelivery ignored", metadata: ["image_id": .string("\(done.id)")])
            return
        case .exhausted(let spent):
            logger.warning(
                "Image has used every processing attempt; delivery acknowledged without processing",
                metadata: [
                    "image_id": .string(spent.id.lowercasedString),
                    "attempts": .stringConvertible(spent.embeddingAttempts),
                ])
            return
        case .started(let started):
            image = started
        }
        let began = ContinuousClock.now
        do {
            try await process(image)
            logger.info(
                "Image embedded",
                metadata: [
                    "image_id": .string(image.id.lowercasedString), "model": .string(images.embedder.modelID),
                    "attempt": .stringConvertible(image.embeddingAttempts),
                    "seconds": .string(String(format: "%.3f", Self.seconds(ContinuousClock.now - began))),
                ])
        } catch {
            let reason = String(describing: error)
            let attempts = image.embeddingAttempts
            try await images.store.failProcessing(
                id: image.id, teamID: image.teamID, error: reason, final: attempts >= limit, at: api.clock.now())
            logger.warning(
                "Image processing failed",
                metadata: [
                    "image_id": .string(image.id.lowercasedString), "attempt": .stringConvertible(attempts),
                    "max_attempts": .stringConvertible(limit), "error": .string(reason),
                ])
            guard attempts >= limit else {
                throw FunctionError(
                    .internalServerError, "Processing failed (attempt \(attempts) of \(limit)): \(reason)")
            }
            try await deadLetter(message, attempts: attempts, error: reason)
        }
    }

    /// Keeps a delivery that cannot be read (not a Pub/Sub push or CloudEvent, another event type,
    /// broken base64) as a dead letter and acknowledges it: Pub/Sub would otherwise deliver it
    /// again for days, and no redelivery can make it readable.
    public func handleUnreadable(body: Data, reason: String, context: FunctionContext) async throws {
        context.logger.error(
            "Unreadable delivery acknowledged and dead-lettered", metadata: ["reason": .string(reason)])
        try await images.deadLetters.deadLetter(
            DeadLetter(
                messageID: Self.unreadableMessageID(for: body), topic: ImageProcessingRequest.topic,
                data: body, attempts: 1, lastError: "unreadable delivery: \(reason)", source: "handler",
                deadAt: api.clock.now()))
    }

    /// The dead letter's id for an unreadable delivery: `unreadable-` and the FNV-1a hash of the
    /// body, so Pub/Sub's redeliveries of one body make one letter.
    /// - Parameter body: The request body.
    /// - Returns: The message id.
    public static func unreadableMessageID(for body: Data) -> String {
        let hash = body.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01b3 }
        return "unreadable-" + String(hash, radix: 16)
    }

    /// Thumbnail, embedding, vector, then the status: each step can be repeated safely.
    private func process(_ image: ImageRecord) async throws {
        guard let original = try await images.blobs.data(at: image.originalBlobKey) else {
            throw ProcessingError("the original image bytes are missing from the blob store")
        }
        let thumbnail = try await images.codec.thumbnail(of: original, size: images.settings.thumbnailSize)
        try await images.blobs.put(
            thumbnail, at: image.thumbnailBlobKey, attributes: BlobAttributes(contentType: "image/jpeg"))
        let vector = try await images.embedder.embed(image: original)
        guard vector.count == images.embedder.dimensions else {
            throw ProcessingError(
                "the embedder returned \(vector.count) values, expected \(images.embedder.dimensions)")
        }
        try await images.vectors.upsert(
            VectorEntry(
                imageID: image.id, teamID: image.teamID, collectionID: image.collectionID, tags: image.tags,
                createdAt: image.createdAt, model: images.embedder.modelID, vector: vector))
        try await images.store.completeProcessing(
            id: image.id, teamID: image.teamID, model: images.embedder.modelID, dimensions: vector.count,
            at: api.clock.now())
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

    private func deadLetter(_ message: PubSubMessagePublished.Message, attempts: Int, error: String) async throws {
        try await images.deadLetters.deadLetter(
            DeadLetter(
                messageID: message.messageID, topic: ImageProcessingRequest.topic, data: message.data,
                attempts: attempts, lastError: error, source: "handler", deadAt: api.clock.now()))
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
