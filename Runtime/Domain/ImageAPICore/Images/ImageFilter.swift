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
    /// Only images in this processing state (listings only: searches find what their engines
    /// find, and vector indexes hold no state).
    public var embeddingStatus: EmbeddingStatus?

    /// Creates a filter; the default lets everything through.
    public init(
        collectionID: UUID? = nil, tags: [String] = [], uploadedFrom: Date? = nil, uploadedTo: Date? = nil,
        embeddingStatus: EmbeddingStatus? = nil
    ) {
        self.collectionID = collectionID
        self.tags = tags
        self.uploadedFrom = uploadedFrom
        self.uploadedTo = uploadedTo
        self.embeddingStatus = embeddingStatus
    }

    /// Whether an image passes the filter.
    public func admits(_ image: ImageRecord) -> Bool {
        if let collectionID, image.collectionID != collectionID { return false }
        if !tags.allSatisfy(image.tags.contains) { return false }
        if let uploadedFrom, image.createdAt < uploadedFrom { return false }
        if let uploadedTo, image.createdAt > uploadedTo { return false }
        if let embeddingStatus, image.embeddingStatus != embeddingStatus { return false }
        return true
    }
}
