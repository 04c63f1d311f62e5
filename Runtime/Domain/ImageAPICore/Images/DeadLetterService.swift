import Foundation
import RuntimeSupport

/// A dead letter as an admin sees it: the processing message that was given up on, and why.
public struct DeadLetterView: Encodable, Sendable, Equatable, EncodesEveryField {
    /// The message id (the id to replay).
    public let messageID: String
    /// The topic it was published on.
    public let topic: String
    /// The image it was about.
    public let imageID: ImageID
    /// Why it was published (`upload`, `reprocess`, ...).
    public let reason: String
    /// Deliveries or processing attempts made.
    public let attempts: Int
    /// The last error.
    public let lastError: String
    /// `handler` (processing kept failing) or `delivery` (the push endpoint kept failing).
    public let source: String
    /// When it was given up on.
    public let deadAt: Date

    /// Writes every field (``EncodesEveryField``).
    public func encode(to encoder: any Encoder) throws {
        try encodeEveryField(to: encoder)
    }
}

/// The dead letters of image processing, for a team's admins: list them and replay one.
///
/// A dead letter belongs to the team named in its processing message; letters whose payload is
/// not a processing message (malformed deliveries, payloads cut at 4 KiB) belong to no team and
/// are seen by no one through the API, only in the logs.
public struct DeadLetterService: Sendable {
    private let letters: any DeadLetterQueue
    private let images: any ImageStore

    /// Creates the service.
    /// - Parameters:
    ///   - letters: The dead letters.
    ///   - images: The image store whose outbox a replay publishes through.
    public init(letters: any DeadLetterQueue, images: any ImageStore) {
        self.letters = letters
        self.images = images
    }

    /// A page of the team's dead letters, oldest first.
    public func list(teamID: TeamID, _ page: PageRequest) async throws -> Page<DeadLetterView> {
        let found = try await letters.deadLetters(teamID: teamID, page)
        return Page(items: found.items.compactMap { Self.view($0, teamID: teamID) }, total: found.total)
    }

    /// Discards a dead letter without replaying it (its image was deleted, or the failure is
    /// understood and the image is not wanted again).
    /// - Throws: 404 for a letter the team does not have.
    public func discard(messageID: String, teamID: TeamID) async throws {
        guard let letter = try await letters.deadLetter(messageID: messageID), Self.view(letter, teamID: teamID) != nil,
            try await letters.removeDeadLetter(messageID: messageID)
        else { throw DomainError.notFound("Dead letter not found") }
    }

    /// Replays a dead letter: its image is queued again with its attempts reset, through the
    /// outbox (as `reprocess` does), and the dead letter is removed.
    ///
    /// The requeue (with its message) and the removal are two writes: after a crash between them
    /// the letter is still listed, and replaying it again queues the image again, which
    /// processing treats as any redelivery.
    /// - Returns: The image, pending again.
    /// - Throws: 404 for a letter or image the team does not have; 409 while the image is queued.
    public func replay(messageID: String, teamID: TeamID, at date: Date) async throws -> ImageRecord {
        guard let letter = try await letters.deadLetter(messageID: messageID),
            let view = Self.view(letter, teamID: teamID)
        else { throw DomainError.notFound("Dead letter not found") }
        guard let image = try await images.image(id: view.imageID, teamID: teamID) else {
            throw DomainError.notFound("The image of this dead letter no longer exists")
        }
        guard image.embeddingStatus == .failed || image.embeddingStatus == .success else {
            throw DomainError.conflict(
                "The image is already queued (embedding_status is \(image.embeddingStatus.rawValue))")
        }
        let message = OutboxMessage.processing(
            ImageProcessingRequest(imageID: image.id, teamID: teamID, reason: "replay"))
        guard let requeued = try await images.requeueImage(id: image.id, teamID: teamID, at: date, publishing: message)
        else { throw DomainError.notFound("The image of this dead letter no longer exists") }
        _ = try await letters.removeDeadLetter(messageID: messageID)
        return requeued
    }

    /// The view of a processing dead letter of `teamID`, or `nil`.
    static func view(_ letter: DeadLetter, teamID: TeamID) -> DeadLetterView? {
        guard letter.topic == ImageProcessingRequest.topic,
            let request = try? JSONCoding.makeDecoder().decode(ImageProcessingRequest.self, from: letter.data),
            request.teamID == teamID
        else { return nil }
        return DeadLetterView(
            messageID: letter.messageID, topic: letter.topic, imageID: request.imageID, reason: request.reason,
            attempts: letter.attempts, lastError: letter.lastError, source: letter.source, deadAt: letter.deadAt)
    }
}
