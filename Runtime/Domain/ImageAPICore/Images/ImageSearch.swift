import Foundation

/// How a search was answered.
public enum SearchMode: String, Codable, Sendable {
    /// Text embedded by a multimodal model, compared with image embeddings.
    case semantic
    /// Full-text search over metadata.
    case text
    /// Image embeddings compared with another image's.
    case similar
    /// Both the semantic and the text ranking, fused (``HybridRanking``).
    case hybrid
}

/// A search, already checked as input.
public struct SearchQuery: Sendable, Equatable {
    /// What is searched for.
    public enum Subject: Sendable, Equatable {
        /// Images that match a text.
        case text(String)
        /// Images like one of the team's.
        case similarTo(ImageID)
    }

    /// What is searched for.
    public var subject: Subject
    /// Matches to skip before the page.
    public var skip: Int
    /// The page's size.
    public var limit: Int
    /// The lowest score (0-1) a match may have.
    public var threshold: Double
    /// Which of the team's images are searched.
    public var filter: ImageFilter
    /// The mode asked for; `nil` for the default: `hybrid` for a text when the embedder reads
    /// text, otherwise `text`, and `similar` for an image. A text mode other than `text` that the
    /// embedder cannot serve is answered in `text` mode.
    public var mode: SearchMode?

    /// Describes a search.
    /// - Parameters:
    ///   - subject: What is searched for.
    ///   - skip: Matches to skip.
    ///   - limit: The page's size.
    ///   - threshold: The lowest score a match may have.
    ///   - filter: Which images are searched.
    ///   - mode: The mode asked for, or `nil` for the default.
    public init(
        subject: Subject, skip: Int = 0, limit: Int = 10, threshold: Double = 0.7, filter: ImageFilter = .init(),
        mode: SearchMode? = nil
    ) {
        self.subject = subject
        self.skip = skip
        self.limit = limit
        self.threshold = threshold
        self.filter = filter
        self.mode = mode
    }
}

/// Where one engine placed a match: its score in that engine (0-1) and its rank (1 for the best).
public struct EngineMatch: Sendable, Equatable {
    /// The engine's score.
    public let score: Double
    /// The engine's rank, from 1.
    public let rank: Int

    /// Describes a placing.
    public init(score: Double, rank: Int) {
        self.score = score
        self.rank = rank
    }
}

/// One match: the image, its score (0-1, higher is better), and where each engine that found it
/// placed it (`semantic` for text against image embeddings, `text` for the metadata's words;
/// neither for a likeness search).
public struct SearchHit: Sendable, Equatable {
    /// The image.
    public let image: ImageRecord
    /// Its score.
    public let score: Double
    /// Its placing in the semantic ranking, where that ranking found it.
    public let semantic: EngineMatch?
    /// Its placing in the text ranking, where that ranking found it.
    public let text: EngineMatch?

    /// Describes a match.
    public init(image: ImageRecord, score: Double, semantic: EngineMatch? = nil, text: EngineMatch? = nil) {
        self.image = image
        self.score = score
        self.semantic = semantic
        self.text = text
    }
}

/// A page of matches and how they were found.
public struct SearchResults: Sendable, Equatable {
    /// The page, best first.
    public let hits: [SearchHit]
    /// Every match; exact for vector searches and for hybrid ones (the union of both engines'
    /// matches), at most ``ImageSearch/maxMatches`` in text mode.
    public let total: Int
    /// How the search was answered.
    public let mode: SearchMode
    /// The embedding model compared with (none in text mode).
    public let model: String?
    /// Whether a text query was answered by words alone because the embedder reads no text.
    public let wordsOnly: Bool

    /// Describes a page of matches.
    public init(hits: [SearchHit], total: Int, mode: SearchMode, model: String?, wordsOnly: Bool = false) {
        self.hits = hits
        self.total = total
        self.mode = mode
        self.model = model
        self.wordsOnly = wordsOnly
    }
}

/// What a search found, or why it could not run.
public enum SearchOutcome: Sendable, Equatable {
    /// The page of matches.
    case found(SearchResults)
    /// The image to compare with is not the team's.
    case imageNotFound
    /// The image to compare with was embedded with another model than the current one.
    case imageFromAnotherModel(model: String, current: String)
    /// The image to compare with has no embedding yet.
    case imageNotEmbedded(EmbeddingStatus)
    /// The mode asked for cannot answer this search, and why: a text mode for an image, or
    /// `similar` for a text. (`semantic` or `hybrid` with an embedder that reads no text is
    /// answered in `text` mode, saying so: ``SearchResults/wordsOnly``.)
    case modeUnavailable(SearchMode, reason: String)
}

/// The use case of finding a team's images, by text or by likeness.
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
/// - `similar` (an image): the embedder's image relevance scale applied to the cosine between the
///   two images' embeddings (`(1 + cosine) / 2` for the visual-features embedder, the cosine
///   itself for CLIP); an identical image scores 1.
/// - `hybrid` (a text query and an embedder that embeds text; the default then): both of the
///   above text searches over the same filter, each keeping the matches whose own score reaches
///   the threshold, fused by ``HybridRanking`` over their ranks. `score` is the fused score (1
///   for an image both rank first); each hit also carries both engines' scores and ranks.
///   The first ``maxMatches`` of each engine are ranked; `total` counts the union of both
///   engines' matches exactly.
public struct ImageSearch: Sendable {
    /// How many text matches are ranked before paging; in text mode `total` counts at most this
    /// many. (Vector searches filter and count inside the index: their `total` is exact.) In
    /// hybrid mode, how many of each engine's matches are fused.
    public static let maxMatches = 1000
    /// The most words a text query is split into.
    public static let maxQueryWords = 16

    private let images: ImageServices

    /// Creates the service.
    /// - Parameter images: The image pipeline's ports and settings.
    public init(images: ImageServices) {
        self.images = images
    }

    /// A text's words for the text search: lower-cased, split at anything but letters and digits,
    /// without repeats, at most ``maxQueryWords``.
    /// - Parameter text: The query.
    /// - Returns: The words.
    public static func words(of text: String) -> [String] {
        var seen: [String] = []
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            let text = String(word)
            if !seen.contains(text) { seen.append(text) }
        }
        return Array(seen.prefix(maxQueryWords))
    }

    /// Runs a search within a team.
    /// - Parameters:
    ///   - query: The search.
    ///   - teamID: The caller's team.
    /// - Returns: The page, or why there is none.
    public func search(_ query: SearchQuery, teamID: TeamID) async throws -> SearchOutcome {
        var query = query
        var syntax = SearchQuerySyntax("")
        if case .text(let text) = query.subject {
            // The query's own syntax: `tag:` narrows the filter of every mode; the rest is read below.
            syntax = SearchQuerySyntax(text)
            for tag in syntax.tags where !query.filter.tags.contains(tag) { query.filter.tags.append(tag) }
        }
        switch (query.subject, query.mode) {
        case (.similarTo, .some(let mode)) where mode != .similar:
            return .modeUnavailable(mode, reason: "An image_id is searched by likeness: mode similar")
        case (.text, .similar):
            return .modeUnavailable(.similar, reason: "mode similar compares with an image: give image_id, not a text")
        case (.similarTo(let imageID), _):
            guard let image = try await images.store.image(id: imageID, teamID: teamID) else { return .imageNotFound }
            if image.embeddingStatus == .success, let model = image.embeddingModel, model != images.embedder.modelID {
                return .imageFromAnotherModel(model: model, current: images.embedder.modelID)
            }
            guard image.embeddingStatus == .success,
                let vector = try await images.vectors.vector(imageID: imageID, teamID: teamID)
            else { return .imageNotEmbedded(image.embeddingStatus) }
            let (hits, total) = try await nearest(
                vector, query, scale: images.embedder.imageRelevance, teamID: teamID, excluding: imageID)
            return .found(SearchResults(hits: hits, total: total, mode: .similar, model: images.embedder.modelID))
        case (.text, .semantic) where images.embedder.supportsText:
            guard !syntax.onlyExcludes else {
                return .found(SearchResults(hits: [], total: 0, mode: .semantic, model: images.embedder.modelID))
            }
            let vector = try await images.embedder.embed(text: syntax.embeddedText)
            let (hits, total) = try await nearest(
                vector, query, scale: images.embedder.textRelevance, teamID: teamID, excluding: nil)
            let placed = hits.enumerated().map { index, hit in
                SearchHit(
                    image: hit.image, score: hit.score,
                    semantic: EngineMatch(score: hit.score, rank: query.skip + index + 1))
            }
            return .found(SearchResults(hits: placed, total: total, mode: .semantic, model: images.embedder.modelID))
        case (.text, .hybrid) where images.embedder.supportsText, (.text, nil) where images.embedder.supportsText:
            guard !syntax.onlyExcludes else {
                return .found(SearchResults(hits: [], total: 0, mode: .hybrid, model: images.embedder.modelID))
            }
            return .found(try await hybrid(syntax, query, teamID: teamID))
        case (.text, _):
            // Mode text, or a mode this embedder cannot serve (the answer says `text`, and why).
            // Punctuation alone has no words to match: nothing is found, which is not an error.
            let words = syntax.searchWords
            let ranked = words.isEmpty ? [] : try await textMatches(words, syntax, query, teamID: teamID)
            let page = ranked.dropFirst(query.skip).prefix(query.limit)
            return .found(
                SearchResults(
                    hits: Array(page), total: ranked.count, mode: .text, model: nil,
                    wordsOnly: !images.embedder.supportsText))
        }
    }

    /// A hybrid search: the semantic ranking (the index's first ``maxMatches`` above the
    /// threshold) and the text ranking (the same), fused by the settings' ``HybridRanking``; the
    /// page's images are checked against their records, as a semantic page is.
    private func hybrid(
        _ syntax: SearchQuerySyntax, _ query: SearchQuery, teamID: TeamID
    ) async throws -> SearchResults {
        let scale = images.embedder.textRelevance
        let model = images.embedder.modelID
        let minimumCosine = scale.minimumCosine(forScore: query.threshold)
        let vector = try await images.embedder.embed(text: syntax.embeddedText)
        let words = syntax.searchWords
        async let semanticMatches = images.vectors.search(
            VectorQuery(
                vector: vector, model: model, teamID: teamID, filter: query.filter, minimumCosine: minimumCosine,
                limit: Self.maxMatches))
        let textHits = words.isEmpty ? [] : try await textMatches(words, syntax, query, teamID: teamID)
        let semantic = try await semanticMatches

        struct Placing {
            var semantic: EngineMatch?
            var text: EngineMatch?
            var image: ImageRecord?
        }
        var placings: [ImageID: Placing] = [:]
        for (index, hit) in semantic.hits.enumerated() {
            placings[hit.imageID] = Placing(
                semantic: EngineMatch(score: scale.score(cosine: hit.cosine), rank: index + 1))
        }
        for (index, hit) in textHits.enumerated() {
            placings[hit.image.id, default: Placing()].text = EngineMatch(score: hit.score, rank: index + 1)
            placings[hit.image.id]?.image = hit.image
        }

        // The union's size: the index counted every semantic match, and a text match outside the
        // semantic ranks fetched is one more unless it is a semantic match further down.
        var total = semantic.total
        let textOnly = textHits.filter { placings[$0.image.id]?.semantic == nil }
        if semantic.total <= semantic.hits.count {
            total += textOnly.count
        } else {
            for hit in textOnly {
                if try await !isSemanticMatch(hit.image, vector, minimumCosine: minimumCosine, teamID: teamID) {
                    total += 1
                }
            }
        }

        let ranking = images.settings.hybridRanking
        let fused = placings.map { id, placing in
            (id, placing, ranking.score(semanticRank: placing.semantic?.rank, textRank: placing.text?.rank))
        }
        .sorted { left, right in
            if left.2 != right.2 { return left.2 > right.2 }
            let leftBest = min(left.1.semantic?.rank ?? .max, left.1.text?.rank ?? .max)
            let rightBest = min(right.1.semantic?.rank ?? .max, right.1.text?.rank ?? .max)
            if leftBest != rightBest { return leftBest < rightBest }
            return left.0 < right.0
        }
        let page = fused.dropFirst(query.skip).prefix(query.limit)
        let unread = page.filter { $0.1.image == nil }.map(\.0)
        let records = try await images.store.images(ids: unread, teamID: teamID)
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let hits = page.compactMap { id, placing, score -> SearchHit? in
            if let image = placing.image {
                return SearchHit(image: image, score: score, semantic: placing.semantic, text: placing.text)
            }
            guard let image = byID[id], image.embeddingStatus == .success, query.filter.admits(image) else {
                return nil
            }
            return SearchHit(image: image, score: score, semantic: placing.semantic, text: placing.text)
        }
        return SearchResults(hits: hits, total: total, mode: .hybrid, model: model)
    }

    /// Whether a text match is also a semantic match (embedded with the current model, its vector
    /// at least `minimumCosine` from the query's), for one beyond the semantic ranks fetched. Both
    /// vectors are L2-normalised, so their dot product is the cosine, as in the indexes.
    private func isSemanticMatch(
        _ image: ImageRecord, _ query: [Float], minimumCosine: Float, teamID: TeamID
    ) async throws -> Bool {
        guard image.embeddingStatus == .success, image.embeddingModel == images.embedder.modelID,
            let stored = try await images.vectors.vector(imageID: image.id, teamID: teamID),
            stored.count == query.count
        else { return false }
        return zip(stored, query).reduce(Float(0)) { $0 + $1.0 * $1.1 } >= minimumCosine
    }

    /// The page of nearest images and the number of all matches: the index filters (team, model,
    /// collection, tags, upload dates, threshold) and counts; the page is checked against the
    /// image records, which are the truth (an image deleted or retagged a moment ago, or a vector
    /// stored before the index kept tags, is dropped from the page).
    private func nearest(
        _ vector: [Float], _ query: SearchQuery, scale: RelevanceScale, teamID: TeamID, excluding: ImageID?
    ) async throws -> (hits: [SearchHit], total: Int) {
        // Scores rise with the cosine, so score >= threshold  <=>  cosine >= the scale's bound.
        let matches = try await images.vectors.search(
            VectorQuery(
                vector: vector, model: images.embedder.modelID, teamID: teamID, filter: query.filter,
                minimumCosine: scale.minimumCosine(forScore: query.threshold), excluding: excluding,
                skip: query.skip, limit: query.limit))
        let records = try await images.store.images(ids: matches.hits.map(\.imageID), teamID: teamID)
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let hits = matches.hits.compactMap { hit -> SearchHit? in
            guard let image = byID[hit.imageID], image.embeddingStatus == .success, query.filter.admits(image)
            else { return nil }
            return SearchHit(image: image, score: scale.score(cosine: hit.cosine))
        }
        return (hits, matches.total)
    }

    /// The words matches that pass the query's phrases, exclusions and cameras, scored and ranked.
    private func textMatches(
        _ words: [String], _ syntax: SearchQuerySyntax, _ query: SearchQuery, teamID: TeamID
    ) async throws -> [SearchHit] {
        let matches = try await images.store.searchText(
            words, teamID: teamID, filter: query.filter, limit: Self.maxMatches
        ).filter { syntax.admits($0.image) }
        return TextMatch.relevance(of: matches).filter { $0.relevance >= query.threshold }
            .sorted { $0.relevance > $1.relevance }
            .enumerated().map { index, match in
                SearchHit(
                    image: match.image, score: match.relevance,
                    text: EngineMatch(score: match.relevance, rank: index + 1))
            }
    }
}
