import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageAPIHTTP

/// The Search function: `GET` and `POST /api/v1/search`, within the key's team. What each mode
/// finds and what its scores mean: ``ImageSearch``.
public struct SearchFunction: HTTPFunction {
    /// The deployed service name.
    public let name = "search"

    let api: APIServices
    let searches: ImageSearch

    /// Creates the function.
    public init(api: APIServices, images: ImageServices) {
        self.api = api
        self.searches = ImageSearch(images: images)
    }

    /// Registers the search routes.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let members = routes.authenticated(.key, by: api.access)
        members.on(.get, "/api/v1/search") { call, principal in
            try await search(try SearchRequest(query: call.query), principal: principal)
        }
        members.on(.post, "/api/v1/search", body: SearchRequest.Body.self) { body, _, principal in
            try await search(try SearchRequest(body: body), principal: principal)
        }
    }

    /// What a text query answered by the words of the metadata says: the embedder reads no text.
    static let wordsOnlyNotice = """
        Searched the words of file names, descriptions, tags and EXIF only: this server's embedder \
        (EMBEDDING_PROVIDER=visual) cannot read text. For semantic search, fetch the CLIP model \
        (make model) into CLIP_MODEL_DIR and restart, or set EMBEDDING_PROVIDER=vertex.
        """

    func search(_ request: SearchRequest, principal: Principal) async throws -> SearchResponse {
        switch try await searches.search(request.search, teamID: principal.teamID) {
        case .found(let found):
            return SearchResponse(
                results: found.hits.map(SearchResult.init), total: found.total, skip: request.search.skip,
                limit: request.search.limit, similarityThreshold: request.search.threshold, query: request.query,
                imageID: request.imageID, mode: found.mode, model: found.model,
                notice: found.wordsOnly ? Self.wordsOnlyNotice : nil)
        case .imageNotFound:
            throw FunctionError.notFound("Image not found")
        case .imageFromAnotherModel(let model, let current):
            throw FunctionError.conflict(
                """
                Image was embedded with another model (\(model)); POST /api/v1/images/reprocess-all \
                re-embeds the team's images with \(current)
                """)
        case .imageNotEmbedded(let status):
            throw FunctionError.conflict("Image has no embedding yet (embedding_status is \(status.rawValue))")
        case .modeUnavailable(_, let reason):
            throw ValidationError(loc: [request.location, "mode"], msg: reason, type: "value_error")
        }
    }
}

/// A validated search request, from the query string or a JSON body.
struct SearchRequest: Sendable {
    static let maxQueryLength = 500

    /// The text query, trimmed (absent for a similarity search).
    var query: String?
    /// The image to compare with (absent for a text search).
    var imageID: ImageID?
    /// The search itself.
    var search: SearchQuery
    /// Where the input came from: `query` or `body`.
    var location: String

    /// The JSON body of `POST /api/v1/search`.
    struct Body: Decodable, Sendable {
        var query: String?
        var imageID: ImageID?
        var skip: Int?
        var limit: Int?
        var similarityThreshold: Double?
        var collectionID: UUID?
        var tags: [String]?
        var uploadedFrom: Date?
        var uploadedTo: Date?
        var mode: String?

        enum CodingKeys: String, CodingKey {
            case query, skip, limit, tags, mode
            case imageID = "image_id"
            case similarityThreshold = "similarity_threshold"
            case collectionID = "collection_id"
            case uploadedFrom = "uploaded_from"
            case uploadedTo = "uploaded_to"
        }
    }

    init(query parameters: QueryParameters) throws {
        var rules = InputRules()
        let skip = try parameters.integer("skip", default: 0, in: 0...Int(Int32.max))
        let limit = try parameters.integer("limit", default: 10, in: 1...50)
        let collection = try parameters.uuid("collection_id")
        var threshold = 0.7
        if let text = parameters.string("similarity_threshold") {
            if let value = Double(text) {
                threshold = value
            } else {
                rules.add(["query", "similarity_threshold"], "Input should be a valid number", "float_parsing")
            }
        }
        try rules.check()
        try self.init(
            query: parameters.string("q"), imageID: nil, skip: skip, limit: limit, threshold: threshold,
            filter: ImageFilter(collectionID: collection), mode: parameters.string("mode"), location: "query",
            queryField: "q")
    }

    init(body: Body) throws {
        var rules = InputRules()
        let tags = rules.tags(body.tags ?? [])
        // The same range as every skip in a query string.
        if let skip = body.skip, !(0...Int(Int32.max)).contains(skip) {
            rules.add(["body", "skip"], "Input should be between 0 and \(Int32.max)", "range")
        }
        if let limit = body.limit, !(1...50).contains(limit) {
            rules.add(["body", "limit"], "Input should be between 1 and 50", "range")
        }
        // uploaded_to before uploaded_from is an empty range: it matches nothing (not an error, so
        // that what the OpenAPI document accepts, the server accepts).
        try rules.check()
        try self.init(
            query: body.query, imageID: body.imageID, skip: body.skip ?? 0, limit: body.limit ?? 10,
            threshold: body.similarityThreshold ?? 0.7,
            filter: ImageFilter(
                collectionID: body.collectionID, tags: tags, uploadedFrom: body.uploadedFrom,
                uploadedTo: body.uploadedTo),
            mode: body.mode, location: "body", queryField: "query")
    }

    private init(
        query: String?, imageID: ImageID?, skip: Int, limit: Int, threshold: Double, filter: ImageFilter,
        mode: String?, location: String, queryField: String
    ) throws {
        var rules = InputRules()
        let trimmed = query?.trimmingCharacters(in: .whitespacesAndNewlines)
        let text = trimmed?.isEmpty == false ? trimmed : nil
        if query != nil && text == nil {
            // A query given blank is a mistake to name, not a query to drop (beside an image_id too).
            rules.add(
                [location, queryField], "String should contain a character that is not a space",
                "string_pattern_mismatch")
        } else if imageID != nil && text != nil {
            rules.add([location, queryField], "Give either \(queryField) or image_id, not both", "value_error")
        } else if imageID == nil && text == nil {
            rules.add(
                [location, queryField],
                location == "query" ? "Field required" : "Give \(queryField) (text) or image_id (an image)",
                "missing")
        }
        if let text, text.count > Self.maxQueryLength {
            rules.add(
                [location, queryField], "String should have at most \(Self.maxQueryLength) characters",
                "string_too_long")
        }
        if !(0...1).contains(threshold) {
            rules.add(
                [location, "similarity_threshold"], "Input should be between 0 and 1", "range")
        }
        let chosen = mode.flatMap(SearchMode.init(rawValue:))
        if let mode, chosen == nil {
            rules.add(
                [location, "mode"],
                "Input should be 'hybrid', 'semantic', 'text' or 'similar' (got '\(mode.prefix(50))')",
                "enum")
        }
        try rules.check()
        self.query = text
        self.imageID = imageID
        self.location = location
        self.search = SearchQuery(
            subject: imageID.map { .similarTo($0) } ?? .text(text ?? ""), skip: skip, limit: limit,
            threshold: threshold, filter: filter, mode: chosen)
    }
}

/// One search hit: the image, its score, and where each engine placed it (`null` where an
/// engine did not find it or did not run).
struct SearchResult: Encodable, Sendable, EncodesEveryField {
    var image: ImageRecord
    var score: Double
    var semanticScore: Double?
    var semanticRank: Int?
    var textScore: Double?
    var textRank: Int?

    init(_ hit: SearchHit) {
        image = hit.image
        score = hit.score
        semanticScore = hit.semantic?.score
        semanticRank = hit.semantic?.rank
        textScore = hit.text?.score
        textRank = hit.text?.rank
    }

    /// Writes every field (``EncodesEveryField``).
    func encode(to encoder: any Encoder) throws {
        try encodeEveryField(to: encoder)
    }
}

/// The answer to a search.
struct SearchResponse: Encodable, Sendable, EncodesEveryField {
    var results: [SearchResult]
    var total: Int
    var skip: Int
    var limit: Int
    var similarityThreshold: Double
    var query: String?
    var imageID: ImageID?
    var mode: SearchMode
    var model: String?
    var notice: String?

    /// Writes every field (``EncodesEveryField``).
    func encode(to encoder: any Encoder) throws {
        try encodeEveryField(to: encoder)
    }
}
