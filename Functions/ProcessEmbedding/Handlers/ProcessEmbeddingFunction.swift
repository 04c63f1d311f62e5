import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageAPIHTTP
import Logging

/// The ProcessEmbedding function: a CloudEvent function triggered by the Pub/Sub message an
/// upload publishes. It makes the thumbnail, computes the embedding and stores the vector.
///
/// A failed attempt answers 500 so Pub/Sub delivers the message again; the attempt that reaches
/// `PROCESSING_MAX_ATTEMPTS` instead leaves the image `failed`, puts the message in the
/// dead-letter queue and answers 204. An attempt that met an unavailable dependency is postponed:
/// given back, the next delivery put in the outbox for later, and 204. A message for an image already embedded with the current
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

    let pipeline: EmbeddingPipeline

    /// Creates the function.
    /// - Parameters:
    ///   - api: The management services.
    ///   - images: The image pipeline's ports.
    ///   - eventPath: Where deliveries come.
    public init(api: APIServices, images: ImageServices, eventPath: String = "/events/process-embedding") {
        self.pipeline = EmbeddingPipeline(images: images, clock: api.clock)
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
            try await pipeline.deadLetterUnprocessable(
                messageID: message.messageID, data: message.data, reason: "malformed message: \(error)")
            return
        }
        let outcome = try await pipeline.process(
            ProcessingDelivery(messageID: message.messageID, data: message.data, request: request))
        switch outcome {
        case .embedded(let image, let model, let seconds):
            logger.info(
                "Image embedded",
                metadata: [
                    "image_id": .string(image.id.lowercasedString), "model": .string(model),
                    "attempt": .stringConvertible(image.embeddingAttempts),
                    "seconds": .string(String(format: "%.3f", seconds)),
                ])
        case .missing(let id):
            logger.info("Image no longer exists; message dropped", metadata: ["image_id": .string("\(id)")])
        case .alreadyDone(let done):
            logger.info("Image already embedded; redelivery ignored", metadata: ["image_id": .string("\(done.id)")])
        case .exhausted(let spent):
            logger.warning(
                "Image has used every processing attempt; delivery acknowledged without processing",
                metadata: [
                    "image_id": .string(spent.id.lowercasedString),
                    "attempts": .stringConvertible(spent.embeddingAttempts),
                ])
        case .failed(let image, let attempt, let limit, let reason):
            logFailure(image, attempt: attempt, limit: limit, reason: reason, logger: logger)
            // An error answer: the transport delivers the message again.
            throw FunctionError(.internalServerError, "Processing failed (attempt \(attempt) of \(limit)): \(reason)")
        case .gaveUp(let image, let attempts, let limit, let reason):
            logFailure(image, attempt: attempts, limit: limit, reason: reason, logger: logger)
        case .postponed(let image, let until, let reason):
            // Acknowledged: the next delivery waits in the outbox, so the transport's own attempt
            // limit is never spent on an outage.
            logger.warning(
                "Image processing postponed: a dependency is unavailable",
                metadata: [
                    "image_id": .string(image.id.lowercasedString), "error": .string(reason),
                    "next_delivery_at": .string(JSONCoding.timestamp(until)),
                ])
        }
    }

    private func logFailure(_ image: ImageRecord, attempt: Int, limit: Int, reason: String, logger: Logger) {
        logger.warning(
            "Image processing failed",
            metadata: [
                "image_id": .string(image.id.lowercasedString), "attempt": .stringConvertible(attempt),
                "max_attempts": .stringConvertible(limit), "error": .string(reason),
            ])
    }

    /// Keeps a delivery that cannot be read (not a Pub/Sub push or CloudEvent, another event type,
    /// broken base64) as a dead letter and acknowledges it: Pub/Sub would otherwise deliver it
    /// again for days, and no redelivery can make it readable.
    public func handleUnreadable(body: Data, reason: String, context: FunctionContext) async throws {
        context.logger.error(
            "Unreadable delivery acknowledged and dead-lettered", metadata: ["reason": .string(reason)])
        try await pipeline.deadLetterUnprocessable(
            messageID: Self.unreadableMessageID(for: body), data: body, reason: "unreadable delivery: \(reason)")
    }

    /// The dead letter's id for an unreadable delivery (see
    /// ``EmbeddingPipeline/unreadableMessageID(for:)``).
    /// - Parameter body: The request body.
    /// - Returns: The message id.
    public static func unreadableMessageID(for body: Data) -> String {
        EmbeddingPipeline.unreadableMessageID(for: body)
    }
}
