import Foundation
import FunctionsFramework
import HTTPTypes
import Hummingbird
import ImageAPICore
import ImageAPIHTTP

/// The UploadImage function: upload, list, read, download, update, delete and reprocess a team's
/// images under `/api/v1/images`. Every route needs an API key and sees only the key's team.
public struct UploadImageFunction: HTTPFunction {
    /// The deployed service name.
    public let name = "upload-image"
    let api: APIServices
    let images: ImageServices
    let uploads: ConcurrencyGate
    /// Where upload bodies are written as they arrive, before they are checked and stored.
    let staging: StagingFolder

    /// Creates the function.
    public init(api: APIServices, images: ImageServices) {
        self.api = api
        self.images = images
        self.uploads = ConcurrencyGate(
            limit: images.settings.maxConcurrentUploads, queueLimit: images.settings.uploadQueueLimit)
        self.staging = StagingFolder(path: images.settings.uploadStagingDirectory)
    }

    /// Multipart framing and text fields on top of the largest file.
    public var bodyLimits: [Endpoint: Int] {
        [Endpoint(.post, "/api/v1/images"): images.settings.maxUploadBytes + 256 * 1024]
    }

    /// Registers the image routes.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let members = routes.authenticated(.key, by: api.access)
        let admins = routes.authenticated(.admin, by: api.access)
        members.on(.post, "/api/v1/images", status: .created) { call, principal in try await upload(call, principal) }
        members.on(.get, "/api/v1/images") { call, principal in try await list(call, principal) }
        members.on(.get, "/api/v1/images/{image_id}") { call, principal in try await image(call, principal) }
        members.on(.put, "/api/v1/images/{image_id}", body: ImageUpdate.self) { update, call, principal in
            try await self.update(update, call, principal)
        }
        members.on(.delete, "/api/v1/images/{image_id}") { call, principal -> NoContent in
            try await delete(call, principal)
        }
        members.on(.get, "/api/v1/images/{image_id}/download") { call, principal -> Response in
            try await download(call, principal)
        }
        members.on(.get, "/api/v1/images/{image_id}/thumbnail") { call, principal -> Response in
            try await thumbnail(call, principal)
        }
        admins.on(.post, "/api/v1/images/reprocess-all", status: .accepted) { call, principal in
            try await reprocessAll(call, principal)
        }
        admins.on(.get, "/api/v1/images/reprocess-all") { call, principal in
            try await reprocessProgress(call, principal)
        }
        members.on(.post, "/api/v1/images/{image_id}/reprocess", status: .accepted) { call, principal in
            try await reprocess(call, principal)
        }
    }

    // MARK: Upload

    func upload(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        try await uploads.run { try await self.upload(call, principal: principal) }
    }

    private func upload(_ call: FunctionRequest, principal: Principal) async throws -> ImageRecord {
        let upload = try await MultipartUpload.read(
            call, staging: staging, maxFileBytes: images.settings.maxUploadBytes)
        do {
            let image = try await accept(upload, principal: principal, call: call)
            call.logger.info(
                "Image uploaded",
                metadata: [
                    "image_id": .string(image.id.lowercasedString), "bytes": .stringConvertible(image.fileSize),
                    "format": .string(image.format),
                ])
            return image
        } catch {
            await upload.file.remove()
            throw error
        }
    }

    private func accept(
        _ upload: MultipartUpload, principal: Principal, call: FunctionRequest
    ) async throws
        -> ImageRecord
    {
        var rules = InputRules()
        let description = rules.description(upload.fields["description"]?.last)
        let tags = rules.tags(upload.fields["tags"] ?? [])
        let collectionID = rules.optionalUUID(
            upload.fields["collection_id"]?.last, location: ["body", "collection_id"])
        let allowDuplicate =
            rules.optionalBool(
                upload.fields["allow_duplicate"]?.last ?? call.query.string("allow_duplicate"),
                location: ["body", "allow_duplicate"]) ?? false
        try rules.check()

        guard upload.size > 0 else {
            throw ValidationError(loc: ["body", "file"], msg: "The file is empty", type: "empty_file")
        }
        guard let format = ImageFormat(sniffing: upload.prefix) else {
            let accepted = ImageFormat.allCases.map(\.rawValue).joined(separator: ", ")
            throw FunctionError(
                .unsupportedMediaType, "The file is not an image in an accepted format (\(accepted))")
        }
        let inspection: ImageInspection
        do {
            inspection = try await images.codec.inspect(
                fileAt: upload.file.path, maxPixels: images.settings.maxImagePixels)
        } catch let error as ImageDecodingError {
            call.logger.notice("Upload refused", metadata: ["reason": .string(error.detail)])
            throw ValidationError(loc: ["body", "file"], msg: error.description, type: "image_invalid")
        }
        if !allowDuplicate, let existing = try await images.store.image(sha256: upload.sha256, teamID: principal.teamID)
        {
            throw Self.duplicate(existing.id)
        }
        let image = ImageRecord(
            id: ImageID(), teamID: principal.teamID, uploaderID: principal.user.id, collectionID: collectionID,
            filename: InputRules.filename(upload.filename), contentType: format.mediaType, format: format.rawValue,
            fileSize: upload.size, width: inspection.width, height: inspection.height,
            orientation: inspection.orientation, sha256: upload.sha256, description: description, tags: tags,
            exif: inspection.exif, createdAt: api.clock.now())
        // Bytes first (durable under their real name), then metadata and the processing message
        // in one transaction: an accepted upload always has its bytes and its event.
        try await upload.file.finish()
        try await images.blobs.put(
            fileAt: upload.file.path, at: image.originalBlobKey,
            attributes: BlobAttributes(contentType: image.contentType, sha256: image.sha256))
        await upload.file.remove()
        do {
            try await images.store.insertImage(
                image,
                publishing: .processing(
                    ImageProcessingRequest(imageID: image.id, teamID: image.teamID, reason: "upload")),
                allowDuplicate: allowDuplicate)
        } catch let error as DuplicateImageError {
            // Another upload of the same bytes won the race since the check above.
            try? await images.blobs.delete(at: image.originalBlobKey)
            throw Self.duplicate(error.existingImageID)
        } catch {
            try? await images.blobs.delete(at: image.originalBlobKey)
            throw error
        }
        return image
    }

    /// The 409 for bytes the team already has.
    static func duplicate(_ existingID: ImageID) -> FunctionError {
        FunctionError(
            .conflict, "An identical image already exists in this team (send allow_duplicate=true to keep both)",
            fields: ["existing_image_id": existingID.lowercasedString])
    }

    // MARK: Reading

    func list(_ call: FunctionRequest, _ principal: Principal) async throws -> ListResponse<ImageRecord> {
        let page = try PageRequest(query: call.query)
        let filter = ImageFilter(collectionID: try call.query.uuid("collection_id"))
        return ListResponse(
            "images", page: try await images.store.images(teamID: principal.teamID, filter: filter, page), request: page
        )
    }

    func image(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        return try await ownImage(call, principal)
    }

    private func ownImage(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        let id = try call.pathID("image_id", as: ImageID.self)
        guard let image = try await images.store.image(id: id, teamID: principal.teamID) else {
            throw FunctionError.notFound("Image not found")
        }
        return image
    }

    func download(_ call: FunctionRequest, _ principal: Principal) async throws -> Response {
        var rules = InputRules()
        let redirect =
            rules.optionalBool(call.query.string("redirect"), location: ["query", "redirect"], nullable: false) ?? false
        try rules.check()
        let image = try await ownImage(call, principal)
        if redirect {
            // A short-lived URL straight to the bytes where the blob store can sign one; the
            // bytes through the API otherwise (or when signing fails: the download still works).
            do {
                let disposition = BlobResponse.contentDisposition(filename: image.filename)
                if let url = try await images.blobs.downloadURL(
                    at: image.originalBlobKey, contentDisposition: disposition)
                {
                    return Response(
                        status: .temporaryRedirect, headers: [.location: url.absoluteString, .cacheControl: "no-store"])
                }
            } catch {
                call.logger.warning(
                    "No signed download URL; serving the bytes instead",
                    metadata: ["image_id": .string(image.id.lowercasedString), "error": "\(error)"])
            }
        }
        return try await BlobResponse.make(
            call, blobs: images.blobs, key: image.originalBlobKey, contentType: image.contentType,
            etag: "\"\(image.sha256)\"", filename: image.filename)
    }

    func thumbnail(_ call: FunctionRequest, _ principal: Principal) async throws -> Response {
        let image = try await ownImage(call, principal)
        guard try await images.blobs.exists(at: image.thumbnailBlobKey) else {
            throw FunctionError.notFound(
                "Thumbnail not ready: it is made during processing (embedding_status is \(image.embeddingStatus.rawValue))"
            )
        }
        return try await BlobResponse.make(
            call, blobs: images.blobs, key: image.thumbnailBlobKey, contentType: "image/jpeg",
            etag: "\"\(image.sha256)-thumbnail-\(images.settings.thumbnailSize)\"", filename: nil)
    }

    // MARK: Changing

    func update(_ update: ImageUpdate, _ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        var image = try await ownImage(call, principal)
        let before = (collection: image.collectionID, tags: image.tags)
        var rules = InputRules()
        if case .set(let description) = update.description { image.description = rules.description(description) }
        if case .set(let tags) = update.tags { image.tags = rules.tags(tags ?? []) }
        if case .set(let collection) = update.collectionID { image.collectionID = collection }
        try rules.check()
        image.updatedAt = api.clock.now()
        guard try await images.store.updateImage(image) else { throw FunctionError.notFound("Image not found") }
        if image.collectionID != before.collection || image.tags != before.tags {
            try await images.vectors.updatePayload(
                imageID: image.id, collectionID: image.collectionID, tags: image.tags)
        }
        return image
    }

    func delete(_ call: FunctionRequest, _ principal: Principal) async throws -> NoContent {
        let id = try call.pathID("image_id", as: ImageID.self)
        // Metadata first: from here on the image is gone for every reader; then what hangs off it.
        guard let image = try await images.store.deleteImage(id: id, teamID: principal.teamID) else {
            throw FunctionError.notFound("Image not found")
        }
        try await images.vectors.delete(imageID: image.id)
        try await images.blobs.delete(at: image.thumbnailBlobKey)
        try await images.blobs.delete(at: image.originalBlobKey)
        call.logger.info("Image deleted", metadata: ["image_id": .string(image.id.lowercasedString)])
        return NoContent()
    }

    func reprocess(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        let image = try await ownImage(call, principal)
        guard image.embeddingStatus == .failed || image.embeddingStatus == .success else {
            throw FunctionError.conflict(
                "Image is already queued (embedding_status is \(image.embeddingStatus.rawValue))")
        }
        let message = OutboxMessage.processing(
            ImageProcessingRequest(imageID: image.id, teamID: image.teamID, reason: "reprocess"))
        guard
            let requeued = try await images.store.requeueImage(
                id: image.id, teamID: principal.teamID, at: api.clock.now(), publishing: message)
        else { throw FunctionError.notFound("Image not found") }
        return requeued
    }

    /// `POST /api/v1/images/reprocess-all?scope=stale|all` (admin): queues the team's images
    /// for re-embedding with the current model, through the same outbox and Pub/Sub as uploads.
    /// `stale` (the default) takes images embedded with another model and failed ones; `all`
    /// also re-embeds images that are current. Queued and in-progress images are left alone.
    func reprocessAll(_ call: FunctionRequest, _ principal: Principal) async throws -> ReprocessAllResponse {
        let scopeText = call.query.string("scope") ?? ReprocessScope.stale.rawValue
        guard let scope = ReprocessScope(rawValue: scopeText) else {
            throw ValidationError([
                .init(loc: ["query", "scope"], msg: "Input should be 'stale' or 'all'", type: "enum")
            ])
        }
        let model = images.embedder.modelID
        let queued = try await images.store.requeueImages(
            teamID: principal.teamID, notEmbeddedWith: model, includeCurrent: scope == .all, reason: "reprocess-all",
            at: api.clock.now())
        call.logger.notice(
            "Re-embedding queued",
            metadata: ["team_id": .string(principal.teamID.lowercasedString), "queued": .stringConvertible(queued)])
        return ReprocessAllResponse(
            scope: scope, queued: queued,
            progress: try await images.store.embeddingSummary(teamID: principal.teamID, model: model))
    }

    /// `GET /api/v1/images/reprocess-all` (admin): the team's images counted by embedding state
    /// against the current model; re-embedding is done when `current + failed == total`.
    func reprocessProgress(_ call: FunctionRequest, _ principal: Principal) async throws -> EmbeddingSummary {
        return try await images.store.embeddingSummary(teamID: principal.teamID, model: images.embedder.modelID)
    }
}

/// Which images `reprocess-all` queues.
enum ReprocessScope: String, Codable, Sendable {
    /// Images embedded with another model, and failed ones.
    case stale
    /// Every embedded or failed image.
    case all
}

/// The answer to `POST /api/v1/images/reprocess-all`.
struct ReprocessAllResponse: Encodable, Sendable {
    let scope: ReprocessScope
    let queued: Int
    let progress: EmbeddingSummary
}

/// The body of `PUT /api/v1/images/{image_id}`: fields left out stay as they are; `null`
/// clears the description, the tags or the collection.
public struct ImageUpdate: Decodable, Sendable {
    /// A field that may be absent, or present (possibly `null`).
    public enum Field<Value: Sendable>: Sendable {
        case absent
        case set(Value?)
    }

    /// The new description.
    public var description: Field<String> = .absent
    /// The new tags.
    public var tags: Field<[String]> = .absent
    /// The new collection.
    public var collectionID: Field<UUID> = .absent

    enum CodingKeys: String, CodingKey {
        case description, tags
        case collectionID = "collection_id"
    }

    /// Decodes the fields that are present.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: Decodable>(_ key: CodingKeys, _ type: T.Type) throws -> Field<T> {
            guard container.contains(key) else { return .absent }
            return .set(try container.decodeIfPresent(T.self, forKey: key))
        }
        description = try field(.description, String.self)
        tags = try field(.tags, [String].self)
        collectionID = try field(.collectionID, UUID.self)
    }
}
