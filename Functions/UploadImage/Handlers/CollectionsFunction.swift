import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageAPIHTTP

/// Named collections under `/api/v1/collections`, served by the UploadImage binary beside the
/// images they hold. Every route needs an API key and sees only the key's team. What the rules
/// are: ``CollectionService``.
public struct CollectionsFunction: HTTPFunction {
    /// The deployed service name.
    public let name = "collections"
    let collections: CollectionService
    let api: APIServices

    /// Creates the function.
    public init(api: APIServices, images: ImageServices) {
        self.api = api
        self.collections = CollectionService(images: images, clock: api.clock)
    }

    /// Registers the collection routes.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let members = routes.authenticated(.key, by: api.access)
        members.on(.post, "/api/v1/collections", status: .created, body: CreateCollectionRequest.self) {
            input, _, principal in try await create(input, principal)
        }
        members.on(.get, "/api/v1/collections") { call, principal in try await list(call, principal) }
        members.on(.get, "/api/v1/collections/{collection_id}") { call, principal in try await read(call, principal) }
        members.on(.put, "/api/v1/collections/{collection_id}", body: UpdateCollectionRequest.self) {
            input, call, principal in try await update(input, call, principal)
        }
        members.on(.delete, "/api/v1/collections/{collection_id}") { call, principal -> NoContent in
            try await delete(call, principal)
        }
    }

    func create(_ input: CreateCollectionRequest, _ principal: Principal) async throws -> CollectionView {
        var rules = InputRules()
        let name = rules.name(input.name)
        let description = rules.description(input.description)
        try rules.check()
        return try Self.answer(
            try await collections.create(name: name, description: description, teamID: principal.teamID))
    }

    func list(_ call: FunctionRequest, _ principal: Principal) async throws -> ListResponse<CollectionView> {
        let page = try PageRequest(query: call.query)
        return ListResponse(
            "collections", page: try await collections.list(teamID: principal.teamID, page), request: page,
            transform: CollectionView.init)
    }

    func read(_ call: FunctionRequest, _ principal: Principal) async throws -> CollectionView {
        guard
            let found = try await collections.summary(id: try call.pathUUID("collection_id"), teamID: principal.teamID)
        else { throw FunctionError.notFound("Collection not found") }
        return CollectionView(found)
    }

    func update(
        _ input: UpdateCollectionRequest, _ call: FunctionRequest, _ principal: Principal
    ) async throws -> CollectionView {
        let id = try call.pathUUID("collection_id")
        var rules = InputRules()
        var name = FieldChange<String>.keep
        if case .set(let text) = input.name {
            if let text {
                name = .set(rules.name(text))
            } else {
                rules.add(["body", "name"], "A collection's name cannot be cleared", "value_error")
            }
        }
        var description = FieldChange<String>.keep
        if case .set(let text) = input.description { description = .set(rules.description(text)) }
        var cover = FieldChange<ImageID>.keep
        if case .set(let image) = input.coverImageID { cover = .set(image) }
        try rules.check()
        return try Self.answer(
            try await collections.update(
                id: id, teamID: principal.teamID, name: name, description: description, cover: cover))
    }

    func delete(_ call: FunctionRequest, _ principal: Principal) async throws -> NoContent {
        let id = try call.pathUUID("collection_id")
        guard try await collections.delete(id: id, teamID: principal.teamID) else {
            throw FunctionError.notFound("Collection not found")
        }
        call.logger.info("Collection deleted", metadata: ["collection_id": .string(id.lowercasedString)])
        return NoContent()
    }

    /// The answer, or the error, for what a change came to.
    static func answer(_ outcome: CollectionOutcome) throws -> CollectionView {
        switch outcome {
        case .done(let summary): return CollectionView(summary)
        case .notFound: throw FunctionError.notFound("Collection not found")
        case .nameTaken(let existing):
            throw FunctionError(
                .conflict, "The team already has a collection of this name",
                fields: ["existing_collection_id": existing.lowercasedString])
        case .coverNotInCollection:
            throw ValidationError(
                loc: ["body", "cover_image_id"], msg: "The cover must be one of the collection's images",
                type: "value_error")
        case .tooMany:
            throw FunctionError.conflict(
                "The team has \(CollectionRules.maximumPerTeam) collections, the most it may hold")
        case .nameRequired:
            throw ValidationError(
                loc: ["body", "name"], msg: "Field required to name a collection images already carry", type: "missing")
        }
    }
}

/// The body of `POST /api/v1/collections`.
public struct CreateCollectionRequest: Decodable, Sendable {
    /// The name (1–100 characters, unique in the team without regard to case).
    public let name: String
    /// An optional description (up to 1000 characters).
    public let description: String?
}

/// The body of `PUT /api/v1/collections/{collection_id}`: a field left out stays, `null` clears
/// the description or the cover.
public struct UpdateCollectionRequest: Decodable, Sendable {
    /// The new name.
    public var name: ImageUpdate.Field<String> = .absent
    /// The new description.
    public var description: ImageUpdate.Field<String> = .absent
    /// The new cover: one of the collection's images.
    public var coverImageID: ImageUpdate.Field<ImageID> = .absent

    enum CodingKeys: String, CodingKey {
        case name, description
        case coverImageID = "cover_image_id"
    }

    /// Decodes the fields that are present.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.field(.name)
        description = try container.field(.description)
        coverImageID = try container.field(.coverImageID)
    }
}

/// A collection as answered: `name`, `description`, `created_at` and `updated_at` are `null` for
/// a label images carry that names no collection.
struct CollectionView: Encodable, Sendable, EncodesEveryField {
    var id: UUID
    var name: String?
    var description: String?
    var imageCount: Int
    var coverImageID: ImageID?
    var createdAt: Date?
    var updatedAt: Date?

    init(_ summary: CollectionSummary) {
        id = summary.id
        name = summary.collection?.name
        description = summary.collection?.description
        imageCount = summary.imageCount
        coverImageID = summary.coverImageID
        createdAt = summary.collection?.createdAt
        updatedAt = summary.collection?.updatedAt
    }

    /// Writes every field (``EncodesEveryField``).
    func encode(to encoder: any Encoder) throws { try encodeEveryField(to: encoder) }
}
