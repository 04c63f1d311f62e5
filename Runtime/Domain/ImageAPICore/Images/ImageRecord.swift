import Foundation
import RuntimeSupport

/// Where an image is in the embedding pipeline.
public enum EmbeddingStatus: String, Codable, Sendable, CaseIterable {
    /// Accepted; its processing event is queued.
    case pending
    /// A ProcessEmbedding run is working on it.
    case processing
    /// Thumbnail and embedding are stored; the image is in vector search.
    case success
    /// The last attempt failed; see `embedding_error` and `embedding_attempts`.
    case failed
}

/// An image's stored metadata. The bytes live in the blob store under ``originalBlobKey``.
public struct ImageRecord: Codable, Sendable, Equatable, EncodesEveryField {
    /// The image's identifier.
    public var id: ImageID
    /// The team that owns the image.
    public var teamID: TeamID
    /// The user whose key uploaded it.
    public var uploaderID: UserID
    /// The collection the image is filed under, if any.
    public var collectionID: UUID?
    /// The file name the client sent (base name only), for display and text search.
    public var filename: String
    /// The media type decided from the bytes.
    public var contentType: String
    /// The image format decided from the bytes (`jpeg`, `png`, ...).
    public var format: String
    /// The size of the original in bytes.
    public var fileSize: Int
    /// Width in pixels as stored (before the EXIF orientation is applied).
    public var width: Int
    /// Height in pixels as stored.
    public var height: Int
    /// The EXIF orientation (1-8), when the file has one.
    public var orientation: Int?
    /// Lower-case hex SHA-256 of the original bytes.
    public var sha256: String
    /// A free-text description.
    public var description: String?
    /// Tags, lower-cased, without duplicates, in the order given.
    public var tags: [String]
    /// Useful EXIF fields (camera, lens, taken-at, GPS), as text.
    public var exif: [String: String]
    /// Where the embedding pipeline is.
    public var embeddingStatus: EmbeddingStatus
    /// The last processing error, when the status is `failed` (or a retry is pending).
    public var embeddingError: String?
    /// How many processing attempts have started since the image was (re)queued.
    public var embeddingAttempts: Int
    /// The embedder that produced the stored vector.
    public var embeddingModel: String?
    /// The vector's dimension count.
    public var embeddingDimensions: Int?
    /// When the embedding was stored.
    public var embeddedAt: Date?
    /// The perceptual hash (``PerceptualHash``), computed when the image is processed.
    public var phash: PerceptualHash?
    /// When the image was uploaded.
    public var createdAt: Date
    /// When the image's metadata last changed.
    public var updatedAt: Date

    /// Creates a record for a new upload, pending processing.
    public init(
        id: ImageID, teamID: TeamID, uploaderID: UserID, collectionID: UUID?, filename: String, contentType: String,
        format: String, fileSize: Int, width: Int, height: Int, orientation: Int?, sha256: String,
        description: String?, tags: [String], exif: [String: String], createdAt: Date
    ) {
        self.id = id
        self.teamID = teamID
        self.uploaderID = uploaderID
        self.collectionID = collectionID
        self.filename = filename
        self.contentType = contentType
        self.format = format
        self.fileSize = fileSize
        self.width = width
        self.height = height
        self.orientation = orientation
        self.sha256 = sha256
        self.description = description
        self.tags = tags
        self.exif = exif
        self.embeddingStatus = .pending
        self.embeddingError = nil
        self.embeddingAttempts = 0
        self.embeddingModel = nil
        self.embeddingDimensions = nil
        self.embeddedAt = nil
        self.phash = nil
        self.createdAt = createdAt
        self.updatedAt = createdAt
    }

    /// The blob key of the original bytes.
    public var originalBlobKey: String { Self.blobFolder(teamID: teamID, imageID: id) + "/original" }
    /// The blob key of the thumbnail, made at processing time.
    public var thumbnailBlobKey: String { Self.blobFolder(teamID: teamID, imageID: id) + "/thumbnail.jpg" }

    private static func blobFolder(teamID: TeamID, imageID: ImageID) -> String {
        "teams/\(teamID.lowercasedString)/images/\(imageID.lowercasedString)"
    }

    /// The JSON field names.
    public enum CodingKeys: String, CodingKey {
        case id, filename, format, width, height, orientation, sha256, description, tags, exif
        case teamID = "team_id"
        case uploaderID = "uploader_id"
        case collectionID = "collection_id"
        case contentType = "content_type"
        case fileSize = "file_size"
        case embeddingStatus = "embedding_status"
        case embeddingError = "embedding_error"
        case embeddingAttempts = "embedding_attempts"
        case embeddingModel = "embedding_model"
        case embeddingDimensions = "embedding_dimensions"
        case embeddedAt = "embedded_at"
        case phash
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// Writes every field (``EncodesEveryField``).
    public func encode(to encoder: any Encoder) throws {
        try encodeEveryField(to: encoder)
    }
}

/// The message the upload (and a reprocess request) publishes for ProcessEmbedding.
public struct ImageProcessingRequest: Codable, Sendable, Equatable {
    /// The topic the message is published on.
    public static let topic = "image-uploaded"

    /// The image to process.
    public var imageID: ImageID
    /// The team that owns it; the handler checks the image belongs to this team.
    public var teamID: TeamID
    /// Why processing was asked for: `upload` or `reprocess`.
    public var reason: String
    /// When processing was first postponed because a dependency was down, if it was: the
    /// postponement limit counts from here. Absent (and not written) in messages never postponed.
    public var postponedSince: Date?
    /// How many times processing has been postponed, when it has: the next wait doubles with each.
    public var postponements: Int?

    /// Creates a request.
    public init(
        imageID: ImageID, teamID: TeamID, reason: String, postponedSince: Date? = nil, postponements: Int? = nil
    ) {
        self.imageID = imageID
        self.teamID = teamID
        self.reason = reason
        self.postponedSince = postponedSince
        self.postponements = postponements
    }

    enum CodingKeys: String, CodingKey {
        case imageID = "image_id"
        case teamID = "team_id"
        case reason
        case postponedSince = "postponed_since"
        case postponements
    }
}

/// A message to publish, written to the outbox in the same transaction as the change it reports.
public struct OutboxMessage: Sendable, Equatable {
    /// The topic.
    public var topic: String
    /// The message id, unique; Pub/Sub's `messageId`.
    public var messageID: String
    /// The payload (JSON).
    public var data: Data
    /// Pub/Sub attributes.
    public var attributes: [String: String]

    /// Creates a message.
    public init(topic: String, messageID: String, data: Data, attributes: [String: String] = [:]) {
        self.topic = topic
        self.messageID = messageID
        self.data = data
        self.attributes = attributes
    }

    /// The processing message for an image.
    public static func processing(_ request: ImageProcessingRequest) -> OutboxMessage {
        let data = (try? JSONCoding.makeEncoder().encode(request)) ?? Data()
        return OutboxMessage(
            topic: ImageProcessingRequest.topic, messageID: UUID().lowercasedString, data: data,
            attributes: ["image_id": request.imageID.lowercasedString, "reason": request.reason])
    }
}
