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
    let library: ImageLibrary
    let uploads: ImageUploads
    let uploadSlots: ConcurrencyGate
    /// Where upload bodies are written as they arrive, before they are checked and stored.
    let staging: StagingFolder

    /// Creates the function.
    public init(api: APIServices, images: ImageServices) {
        self.api = api
        self.images = images
        self.library = ImageLibrary(images: images, clock: api.clock)
        self.uploads = ImageUploads(images: images, clock: api.clock)
        self.uploadSlots = ConcurrencyGate(
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
        members.on(.get, "/api/v1/images/duplicates") { call, principal in
            try await nearDuplicateGroups(call, principal)
        }
        members.on(.get, "/api/v1/images/{image_id}/duplicates") { call, principal in
            try await nearDuplicates(call, principal)
        }
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
        try await uploadSlots.run(owner: principal.teamID.lowercasedString) {
            try await self.upload(call, principal: principal)
        }
    }

    private func upload(_ call: FunctionRequest, principal: Principal) async throws -> ImageRecord {
        let upload = try await MultipartUpload.read(
            call, staging: staging, maxFileBytes: images.settings.maxUploadBytes)
        let outcome: UploadOutcome
        do {
            let details = try Self.details(of: upload, call: call)
            try await upload.file.finish()
            outcome = try await uploads.accept(
                StagedUpload(path: upload.file.path, size: upload.size, sha256: upload.sha256, prefix: upload.prefix),
                details, teamID: principal.teamID, uploaderID: principal.user.id)
        } catch {
            await upload.file.remove()
            throw error
        }
        // The blob store copied what it keeps: the staged file goes whatever the outcome.
        await upload.file.remove()
        return try Self.answer(outcome, call: call)
    }

    /// The upload's text fields, checked.
    private static func details(of upload: MultipartUpload, call: FunctionRequest) throws -> UploadDetails {
        var rules = InputRules()
        // A field sent twice counts once, by its first value, as a JSON key given twice does.
        let description = rules.description(upload.fields["description"]?.first)
        let tags = rules.tags(upload.fields["tags"] ?? [])
        let collectionID = rules.optionalUUID(
            upload.fields["collection_id"]?.first, location: ["body", "collection_id"])
        let allowDuplicate =
            rules.optionalBool(
                upload.fields["allow_duplicate"]?.first ?? call.query.string("allow_duplicate"),
                location: ["body", "allow_duplicate"]) ?? false
        try rules.check()
        return UploadDetails(
            filename: InputRules.filename(upload.filename), description: description, tags: tags,
            collectionID: collectionID, allowDuplicate: allowDuplicate)
    }

    /// The answer to an upload: the stored image (201), or the refusal.
    private static func answer(_ outcome: UploadOutcome, call: FunctionRequest) throws -> ImageRecord {
        switch outcome {
        case .stored(let image):
            call.logger.info(
                "Image uploaded",
                metadata: [
                    "image_id": .string(image.id.lowercasedString), "bytes": .stringConvertible(image.fileSize),
                    "format": .string(image.format),
                ])
            return image
        case .empty:
            throw ValidationError(loc: ["body", "file"], msg: "The file is empty", type: "empty_file")
        case .unsupportedFormat:
            let accepted = ImageFormat.allCases.map(\.rawValue).joined(separator: ", ")
            throw FunctionError(.unsupportedMediaType, "The file is not an image in an accepted format (\(accepted))")
        case .undecodable(let error):
            call.logger.notice("Upload refused", metadata: ["reason": .string(error.detail)])
            throw ValidationError(loc: ["body", "file"], msg: error.description, type: "image_invalid")
        case .duplicate(let existingID):
            throw duplicate(existingID)
        case .unknownCollection(let collection):
            throw ValidationError(
                loc: ["body", "collection_id"], msg: Self.unknownCollection(collection), type: "value_error")
        }
    }

    /// Why a `collection_id` is refused.
    static func unknownCollection(_ id: UUID) -> String {
        "collection_id \(id.lowercasedString) names none of the team's collections (POST /api/v1/collections makes one)"
    }

    /// The 409 for bytes the team already has.
    static func duplicate(_ existingID: ImageID) -> FunctionError {
        FunctionError(
            .conflict, "An identical image already exists in this team (send allow_duplicate=true to keep both)",
            fields: ["existing_image_id": existingID.lowercasedString])
    }

    // MARK: Reading

    /// The query parameters `GET /api/v1/images` reads; any other is a 422 naming it.
    static let listParameters: Set<String> = [
        "skip", "limit", "collection_id", "tags", "uploaded_from", "uploaded_to", "embedding_status",
    ]

    /// Names each query parameter not in `accepted`.
    static func refuseUnknownParameters(_ query: QueryParameters, accepted: Set<String>, _ rules: inout InputRules) {
        for name in query.names where !accepted.contains(name) {
            rules.add(
                ["query", String(name.prefix(100))],
                "Unknown query parameter (accepted: \(accepted.sorted().joined(separator: ", ")))",
                "extra_forbidden")
        }
    }

    func list(_ call: FunctionRequest, _ principal: Principal) async throws -> ListResponse<ImageRecord> {
        let query = call.query
        var rules = InputRules()
        Self.refuseUnknownParameters(query, accepted: Self.listParameters, &rules)
        let tags = rules.tags(query.strings("tags"), location: ["query", "tags"])
        func date(_ name: String) -> Date? {
            guard let text = query.string(name) else { return nil }
            guard let date = JSONCoding.parseTimestamp(text) else {
                rules.add(["query", name], "Input should be a valid datetime (RFC 3339)", "datetime_parsing")
                return nil
            }
            return date
        }
        let from = date("uploaded_from")
        let to = date("uploaded_to")
        var status: EmbeddingStatus?
        if let text = query.string("embedding_status") {
            status = EmbeddingStatus(rawValue: text)
            if status == nil {
                rules.add(
                    ["query", "embedding_status"], "Input should be 'pending', 'processing', 'success' or 'failed'",
                    "enum")
            }
        }
        try rules.check()
        let page = try PageRequest(query: query)
        let filter = ImageFilter(
            collectionID: try query.uuid("collection_id"), tags: tags, uploadedFrom: from, uploadedTo: to,
            embeddingStatus: status)
        return ListResponse(
            "images", page: try await library.images(teamID: principal.teamID, filter: filter, page), request: page)
    }

    func image(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        return try await ownImage(call, principal)
    }

    private func ownImage(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        let id = try call.pathID("image_id", as: ImageID.self)
        guard let image = try await library.image(id: id, teamID: principal.teamID) else {
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

    // MARK: Near-duplicates

    /// The query parameters of both near-duplicate listings.
    static let nearDuplicateParameters: Set<String> = ["skip", "limit", "max_distance"]

    /// `max_distance` and the page, checked.
    private static func nearDuplicateQuery(_ query: QueryParameters) throws -> (maxDistance: Int, page: PageRequest) {
        var rules = InputRules()
        refuseUnknownParameters(query, accepted: nearDuplicateParameters, &rules)
        try rules.check()
        let maxDistance = try query.integer(
            "max_distance", default: NearDuplicateSearch.defaultMaxDistance,
            in: 0...NearDuplicateSearch.maxDistanceLimit)
        return (maxDistance, try PageRequest(query: query))
    }

    func nearDuplicates(_ call: FunctionRequest, _ principal: Principal) async throws -> NearDuplicatesResponse {
        let id = try call.pathID("image_id", as: ImageID.self)
        let (maxDistance, page) = try Self.nearDuplicateQuery(call.query)
        switch try await library.nearDuplicates(of: id, teamID: principal.teamID, maxDistance: maxDistance, page) {
        case .found(let found):
            return NearDuplicatesResponse(
                imageID: id, maxDistance: maxDistance,
                duplicates: found.items.map { NearDuplicateResult(image: $0.image, distance: $0.distance) },
                total: found.total, skip: page.skip, limit: page.limit)
        case .imageNotFound:
            throw FunctionError.notFound("Image not found")
        case .imageNotHashed(let status):
            throw FunctionError.conflict(
                """
                Image has no perceptual hash yet: it is computed when the image is processed \
                (embedding_status is \(status.rawValue))
                """)
        }
    }

    func nearDuplicateGroups(
        _ call: FunctionRequest, _ principal: Principal
    ) async throws -> NearDuplicateGroupsResponse {
        let (maxDistance, page) = try Self.nearDuplicateQuery(call.query)
        let found = try await library.nearDuplicateGroups(teamID: principal.teamID, maxDistance: maxDistance, page)
        return NearDuplicateGroupsResponse(
            maxDistance: maxDistance,
            groups: found.items.map { NearDuplicateGroupResult(size: $0.size, images: $0.images) },
            total: found.total, skip: page.skip, limit: page.limit)
    }

    // MARK: Changing

    func update(_ update: ImageUpdate, _ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        let id = try call.pathID("image_id", as: ImageID.self)
        var rules = InputRules()
        var changes = ImageChanges()
        if case .set(let description) = update.description {
            changes.description = .set(rules.description(description))
        }
        if case .set(let tags) = update.tags { changes.tags = .set(rules.tags(tags ?? [])) }
        if case .set(let collection) = update.collectionID { changes.collectionID = .set(collection) }
        do {
            try rules.check()
        } catch {
            // Another team's image, or none, is a 404 whatever the changes asked.
            guard try await library.image(id: id, teamID: principal.teamID) != nil else {
                throw FunctionError.notFound("Image not found")
            }
            throw error
        }
        switch try await library.update(id: id, teamID: principal.teamID, changes) {
        case .updated(let image): return image
        case .notFound: throw FunctionError.notFound("Image not found")
        case .unknownCollection(let collection):
            throw ValidationError(
                loc: ["body", "collection_id"], msg: Self.unknownCollection(collection), type: "value_error")
        }
    }

    func delete(_ call: FunctionRequest, _ principal: Principal) async throws -> NoContent {
        let id = try call.pathID("image_id", as: ImageID.self)
        guard let image = try await library.delete(id: id, teamID: principal.teamID) else {
            throw FunctionError.notFound("Image not found")
        }
        call.logger.info("Image deleted", metadata: ["image_id": .string(image.id.lowercasedString)])
        return NoContent()
    }

    func reprocess(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        let id = try call.pathID("image_id", as: ImageID.self)
        switch try await library.reprocess(id: id, teamID: principal.teamID) {
        case .queued(let image): return image
        case .alreadyQueued(let status):
            throw FunctionError.conflict("Image is already queued (embedding_status is \(status.rawValue))")
        case .notFound: throw FunctionError.notFound("Image not found")
        }
    }

    /// `POST /api/v1/images/reprocess-all?scope=stale|all` (admin): queues the team's images
    /// for re-embedding with the current model (see ``ImageLibrary/reprocessAll(teamID:scope:)``).
    func reprocessAll(_ call: FunctionRequest, _ principal: Principal) async throws -> ReprocessAllResponse {
        let scopeText = call.query.string("scope") ?? ReprocessScope.stale.rawValue
        guard let scope = ReprocessScope(rawValue: scopeText) else {
            throw ValidationError([
                .init(loc: ["query", "scope"], msg: "Input should be 'stale' or 'all'", type: "enum")
            ])
        }
        let result = try await library.reprocessAll(teamID: principal.teamID, scope: scope)
        call.logger.notice(
            "Re-embedding queued",
            metadata: [
                "team_id": .string(principal.teamID.lowercasedString), "queued": .stringConvertible(result.queued),
            ])
        return ReprocessAllResponse(scope: scope, queued: result.queued, progress: result.progress)
    }

    /// `GET /api/v1/images/reprocess-all` (admin): the team's images counted by embedding state
    /// against the current model; re-embedding is done when `current + failed == total`.
    func reprocessProgress(_ call: FunctionRequest, _ principal: Principal) async throws -> EmbeddingSummary {
        try await library.progress(teamID: principal.teamID)
    }
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
        description = try container.field(.description)
        tags = try container.field(.tags)
        collectionID = try container.field(.collectionID)
    }
}

extension KeyedDecodingContainer {
    /// A field that may be absent, `null`, or a value.
    func field<T: Decodable>(_ key: Key) throws -> ImageUpdate.Field<T> {
        guard contains(key) else { return .absent }
        return .set(try decodeIfPresent(T.self, forKey: key))
    }
}

/// An image near the one asked about, and how many bits their perceptual hashes differ by.
struct NearDuplicateResult: Encodable, Sendable, EncodesEveryField {
    var image: ImageRecord
    var distance: Int

    /// Writes every field (``EncodesEveryField``).
    func encode(to encoder: any Encoder) throws { try encodeEveryField(to: encoder) }
}

/// The answer of `GET /api/v1/images/{image_id}/duplicates`.
struct NearDuplicatesResponse: Encodable, Sendable, EncodesEveryField {
    var imageID: ImageID
    var maxDistance: Int
    var duplicates: [NearDuplicateResult]
    var total: Int
    var skip: Int
    var limit: Int

    /// Writes every field (``EncodesEveryField``).
    func encode(to encoder: any Encoder) throws { try encodeEveryField(to: encoder) }
}

/// One group of near-duplicates: how many images, and the oldest of them.
struct NearDuplicateGroupResult: Encodable, Sendable, EncodesEveryField {
    var size: Int
    var images: [ImageRecord]

    /// Writes every field (``EncodesEveryField``).
    func encode(to encoder: any Encoder) throws { try encodeEveryField(to: encoder) }
}

/// The answer of `GET /api/v1/images/duplicates`.
struct NearDuplicateGroupsResponse: Encodable, Sendable, EncodesEveryField {
    var maxDistance: Int
    var groups: [NearDuplicateGroupResult]
    var total: Int
    var skip: Int
    var limit: Int

    /// Writes every field (``EncodesEveryField``).
    func encode(to encoder: any Encoder) throws { try encodeEveryField(to: encoder) }
}
