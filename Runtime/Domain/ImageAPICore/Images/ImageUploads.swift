import Foundation

/// An upload's file, written to a local file as it arrived, with what was learned on the way.
public struct StagedUpload: Sendable {
    /// Where the bytes are (a closed, local scratch file).
    public let path: String
    /// The file's size in bytes.
    public let size: Int
    /// Lower-case hex SHA-256 of the bytes.
    public let sha256: String
    /// The file's first bytes (at least ``ImageFormat/sniffLength`` when the file is that long).
    public let prefix: [UInt8]

    /// Describes a staged file.
    /// - Parameters:
    ///   - path: Where the bytes are.
    ///   - size: The size in bytes.
    ///   - sha256: Lower-case hex SHA-256 of the bytes.
    ///   - prefix: The first bytes.
    public init(path: String, size: Int, sha256: String, prefix: [UInt8]) {
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.prefix = prefix
    }
}

/// What the uploader says about an image, already checked as input.
public struct UploadDetails: Sendable, Equatable {
    /// The file name to keep (already reduced to a base name).
    public var filename: String
    /// The description.
    public var description: String?
    /// The tags.
    public var tags: [String]
    /// The collection.
    public var collectionID: UUID?
    /// Whether a second copy of bytes the team already holds is wanted.
    public var allowDuplicate: Bool

    /// Describes an upload.
    /// - Parameters:
    ///   - filename: The file name to keep.
    ///   - description: The description.
    ///   - tags: The tags.
    ///   - collectionID: The collection.
    ///   - allowDuplicate: Whether a second copy of known bytes is wanted.
    public init(
        filename: String, description: String? = nil, tags: [String] = [], collectionID: UUID? = nil,
        allowDuplicate: Bool = false
    ) {
        self.filename = filename
        self.description = description
        self.tags = tags
        self.collectionID = collectionID
        self.allowDuplicate = allowDuplicate
    }
}

/// What became of an upload.
public enum UploadOutcome: Sendable, Equatable {
    /// The image is stored, and its processing message is in the outbox.
    case stored(ImageRecord)
    /// The file has no bytes.
    case empty
    /// The bytes are not of an accepted format.
    case unsupportedFormat
    /// The bytes claim an accepted format but do not decode within the limits.
    case undecodable(ImageDecodingError)
    /// The team already holds these bytes, as this image.
    case duplicate(of: ImageID)
    /// The `collection_id` names none of the team's collections.
    case unknownCollection(UUID)
}

/// The use case of taking an image in, whichever way its bytes arrived: check the format, inspect
/// the pixels, refuse bytes the team already holds, store the bytes, then the image and its
/// processing message in one unit of work, and take the bytes back when that fails (unless the
/// store was unavailable and cannot say whether the unit of work committed).
public struct ImageUploads: Sendable {
    private let images: ImageServices
    private let clock: any TimeSource

    /// Creates the service.
    /// - Parameters:
    ///   - images: The image pipeline's ports and settings.
    ///   - clock: Where `created_at` comes from.
    public init(images: ImageServices, clock: any TimeSource) {
        self.images = images
        self.clock = clock
    }

    /// Takes a staged file in as a new image of the uploader's team. The staged file is left where
    /// it is (the blob store copies it); removing it is the caller's.
    /// - Parameters:
    ///   - file: The staged bytes.
    ///   - details: What the uploader says about the image.
    ///   - teamID: The uploader's team, which will own the image.
    ///   - uploaderID: The uploader.
    /// - Returns: What became of the upload.
    /// - Throws: The errors of the stores (the upload then changed nothing).
    public func accept(
        _ file: StagedUpload, _ details: UploadDetails, teamID: TeamID, uploaderID: UserID
    ) async throws -> UploadOutcome {
        let outcome = try await decide(file, details, teamID: teamID, uploaderID: uploaderID)
        PipelineMetrics.upload(outcome)
        return outcome
    }

    private func decide(
        _ file: StagedUpload, _ details: UploadDetails, teamID: TeamID, uploaderID: UserID
    ) async throws -> UploadOutcome {
        guard file.size > 0 else { return .empty }
        guard let format = ImageFormat(sniffing: file.prefix) else { return .unsupportedFormat }
        if let collection = details.collectionID,
            try await images.store.collection(id: collection, teamID: teamID) == nil
        {
            return .unknownCollection(collection)
        }
        let inspection: ImageInspection
        do {
            inspection = try await images.codec.inspect(fileAt: file.path, maxPixels: images.settings.maxImagePixels)
        } catch let error as ImageDecodingError {
            return .undecodable(error)
        }
        if !details.allowDuplicate, let existing = try await images.store.image(sha256: file.sha256, teamID: teamID) {
            return .duplicate(of: existing.id)
        }
        let image = ImageRecord(
            id: ImageID(), teamID: teamID, uploaderID: uploaderID, collectionID: details.collectionID,
            filename: details.filename, contentType: format.mediaType, format: format.rawValue, fileSize: file.size,
            width: inspection.width, height: inspection.height, orientation: inspection.orientation,
            sha256: file.sha256, description: details.description, tags: details.tags, exif: inspection.exif,
            createdAt: clock.now())
        // Bytes first (durable under their real name), then metadata and the processing message
        // in one transaction: an accepted upload always has its bytes and its event.
        try await images.blobs.put(
            fileAt: file.path, at: image.originalBlobKey,
            attributes: BlobAttributes(contentType: image.contentType, sha256: image.sha256))
        do {
            try await images.store.insertImage(
                image,
                publishing: .processing(
                    ImageProcessingRequest(imageID: image.id, teamID: image.teamID, reason: "upload")),
                allowDuplicate: details.allowDuplicate)
        } catch let error as DuplicateImageError {
            // Another upload of the same bytes won the race since the check above.
            try? await images.blobs.delete(at: image.originalBlobKey)
            return .duplicate(of: error.existingImageID)
        } catch let error where images.outages.isOutage(error) {
            // The store may have committed and lost only its answer (or commit still, a request
            // it had taken): its record would then name these bytes, so they stay. Bytes that no
            // record names are the orphan sweep's (``ImageLibrary/removeOrphanBlobs(writtenBefore:)``).
            if let committed = try? await images.store.image(id: image.id, teamID: image.teamID) {
                return .stored(committed)
            }
            throw error
        } catch {
            try? await images.blobs.delete(at: image.originalBlobKey)
            throw error
        }
        return .stored(image)
    }
}
