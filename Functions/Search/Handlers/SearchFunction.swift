import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageAPIHTTP

/// The Search function: `GET` and `POST /api/v1/search`, within the key's team.
///
/// Modes and what `score` means in each (all scores lie in 0-1, higher is better):
/// - `semantic` (a text query and an embedder that embeds text): the embedder's text relevance
///   scale applied to the cosine between the query's and the image's embeddings (for CLIP a
///   logistic curve, see ``RelevanceScale``).
/// - `text` (a text query and an image-only embedder): full-text search over file name,
///   description, tags and EXIF text. `score = 0.7 × coverage + 0.3 × relative BM25`, where
///   coverage is the share of the query's words the image contains and relative BM25 is the
///   image's BM25 relevance divided by the best match's. An image containing every word scores
///   at least 0.7, so the default threshold keeps every full match.
/// - `similar` (an `image_id`): the embedder's image relevance scale applied to the cosine
///   between the two images' embeddings (`(1 + cosine) / 2` for the visual-features embedder,
///   the cosine itself for CLIP); an identical image scores 1.
public struct SearchFunction: HTTPFunction {
    /// The deployed service name.
    public let name = "search"
    /// How many text matches are ranked before paging; in text mode `total` counts at most this
    /// many. (Vector searches filter and count inside the index: their `total` is exact.)
    public static let maxMatches = 1000
    /// The most words a text query is split into.
    public static let maxQueryWords = 16

    let api: APIServices
    let images: ImageServices

    /// Creates the function.
    public init(api: APIServices, images: ImageServices) {
        self.api = api
        self.images = images
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

    func search(_ request: SearchRequest, principal: Principal) async throws -> SearchResponse {
        let found: (page: [(ImageRecord, Double)], total: Int)
        let mode: SearchMode
        if let imageID = request.imageID {
            mode = .similar
            found = try await similar(to: imageID, request, teamID: principal.teamID)
        } else if images.embedder.supportsText {
            mode = .semantic
            let vector = try await images.embedder.embed(text: request.query ?? "")
            found = try await nearest(
                vector, request, scale: images.embedder.textRelevance, teamID: principal.teamID, excluding: nil)
        } else {
            mode = .text
            // Punctuation alone has no words to match: nothing is found, which is not an error.
            let ranked = request.words.isEmpty ? [] : try await textMatches(request, teamID: principal.teamID)
            found = (Array(ranked.dropFirst(request.skip).prefix(request.limit)), ranked.count)
        }
        return SearchResponse(
            results: found.page.map { SearchResult(image: $0.0, score: $0.1) }, total: found.total,
            skip: request.skip, limit: request.limit, similarityThreshold: request.threshold, query: request.query,
            imageID: request.imageID, mode: mode, model: mode == .text ? nil : images.embedder.modelID)
    }

    private func similar(
        to imageID: ImageID, _ request: SearchRequest, teamID: TeamID
    ) async throws -> (page: [(ImageRecord, Double)], total: Int) {
        guard let image = try await images.store.image(id: imageID, teamID: teamID) else {
            throw FunctionError.notFound("Image not found")
        }
        if image.embeddingStatus == .success, let model = image.embeddingModel, model != images.embedder.modelID {
            throw FunctionError.conflict(
                """
                Image was embedded with another model (\(model)); POST /api/v1/images/reprocess-all \
                re-embeds the team's images with \(images.embedder.modelID)
                """)
        }
        guard image.embeddingStatus == .success,
            let vector = try await images.vectors.vector(imageID: imageID, teamID: teamID)
        else {
            throw FunctionError.conflict(
                "Image has no embedding yet (embedding_status is \(image.embeddingStatus.rawValue))")
        }
        return try await nearest(
            vector, request, scale: images.embedder.imageRelevance, teamID: teamID, excluding: imageID)
    }

    /// The page of nearest images and the number of all matches: the index filters (team, model,
    /// collection, tags, upload dates, threshold) and counts; the page is checked against the
    /// image records, which are the truth (an image deleted or retagged a moment ago, or a vector
    /// stored before the index kept tags, is dropped from the page).
    private func nearest(
        _ vector: [Float], _ request: SearchRequest, scale: RelevanceScale, teamID: TeamID, excluding: ImageID?
    ) async throws -> (page: [(ImageRecord, Double)], total: Int) {
        // Scores rise with the cosine, so score >= threshold  <=>  cosine >= the scale's bound.
        let matches = try await images.vectors.search(
            VectorQuery(
                vector: vector, model: images.embedder.modelID, teamID: teamID, filter: request.filter,
                minimumCosine: scale.minimumCosine(forScore: request.threshold), excluding: excluding,
                skip: request.skip, limit: request.limit))
        let records = try await images.store.images(ids: matches.hits.map(\.imageID), teamID: teamID)
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let page = matches.hits.compactMap { hit -> (ImageRecord, Double)? in
            guard let image = byID[hit.imageID], image.embeddingStatus == .success, request.filter.admits(image)
            else { return nil }
            return (image, scale.score(cosine: hit.cosine))
        }
        return (page, matches.total)
    }

    private func textMatches(_ request: SearchRequest, teamID: TeamID) async throws -> [(ImageRecord, Double)] {
        let matches = try await images.store.searchText(
            request.words, teamID: teamID, filter: request.filter, limit: Self.maxMatches)
        return TextMatch.relevance(of: matches).filter { $0.relevance >= request.threshold }
            .sorted { $0.relevance > $1.relevance }
    }
}

/// How a search was answered.
public enum SearchMode: String, Encodable, Sendable {
    /// Text embedded by a multimodal model, compared with image embeddings.
    case semantic
    /// Full-text search over metadata.
    case text
    /// Image embeddings compared with another image's.
    case similar
}

/// A validated search request, from the query string or a JSON body.
struct SearchRequest: Sendable {
    static let maxQueryLength = 500

    var query: String?
    var imageID: ImageID?
    var skip: Int
    var limit: Int
    var threshold: Double
    var filter: ImageFilter

    /// The query's words, lower-cased, without repeats.
    var words: [String] {
        var seen: [String] = []
        for word in (query ?? "").lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            let text = String(word)
            if !seen.contains(text) { seen.append(text) }
        }
        return Array(seen.prefix(SearchFunction.maxQueryWords))
    }

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

        enum CodingKeys: String, CodingKey {
            case query, skip, limit, tags
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
            filter: ImageFilter(collectionID: collection), location: "query", queryField: "q")
    }

    init(body: Body) throws {
        var rules = InputRules()
        let tags = rules.tags(body.tags ?? [])
        if let skip = body.skip, skip < 0 {
            rules.add(["body", "skip"], "Input should be greater than or equal to 0", "greater_than_equal")
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
            location: "body", queryField: "query")
    }

    private init(
        query: String?, imageID: ImageID?, skip: Int, limit: Int, threshold: Double, filter: ImageFilter,
        location: String, queryField: String
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
        try rules.check()
        self.query = text
        self.imageID = imageID
        self.skip = skip
        self.limit = limit
        self.threshold = threshold
        self.filter = filter
    }
}

/// One search hit.
struct SearchResult: Encodable, Sendable {
    var image: ImageRecord
    var score: Double
}

/// The answer to a search.
struct SearchResponse: Encodable, Sendable {
    var results: [SearchResult]
    var total: Int
    var skip: Int
    var limit: Int
    var similarityThreshold: Double
    var query: String?
    var imageID: ImageID?
    var mode: SearchMode
    var model: String?

    enum CodingKeys: String, CodingKey {
        case results, total, skip, limit, query, mode, model
        case similarityThreshold = "similarity_threshold"
        case imageID = "image_id"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(results, forKey: .results)
        try container.encode(total, forKey: .total)
        try container.encode(skip, forKey: .skip)
        try container.encode(limit, forKey: .limit)
        try container.encode(similarityThreshold, forKey: .similarityThreshold)
        try container.encode(query, forKey: .query)
        try container.encode(imageID?.lowercasedString, forKey: .imageID)
        try container.encode(mode, forKey: .mode)
        try container.encode(model, forKey: .model)
    }
}
