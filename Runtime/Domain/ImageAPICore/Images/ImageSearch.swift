import Foundation

/// How a search was answered.
public enum SearchMode: String, Codable, Sendable {
    /// Text embedded by a multimodal model, compared with image embeddings.
    case semantic
    /// Full-text search over metadata.
    case text
    /// Image embeddings compared with another image's.
    case similar
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

    /// Describes a search.
    /// - Parameters:
    ///   - subject: What is searched for.
    ///   - skip: Matches to skip.
    ///   - limit: The page's size.
    ///   - threshold: The lowest score a match may have.
    ///   - filter: Which images are searched.
    public init(
        subject: Subject, skip: Int = 0, limit: Int = 10, threshold: Double = 0.7, filter: ImageFilter = .init()
    ) {
        self.subject = subject
        self.skip = skip
        self.limit = limit
        self.threshold = threshold
        self.filter = filter
    }
}

/// One match: the image and its score (0-1, higher is better).
public struct SearchHit: Sendable, Equatable {
    /// The image.
    public let image: ImageRecord
    /// Its score.
    public let score: Double
}

/// A page of matches and how they were found.
public struct SearchResults: Sendable, Equatable {
    /// The page, best first.
    public let hits: [SearchHit]
    /// Every match; exact for vector searches, at most ``ImageSearch/maxMatches`` in text mode.
    public let total: Int
    /// How the search was answered.
    public let mode: SearchMode
    /// The embedding model compared with (none in text mode).
    public let model: String?
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
public struct ImageSearch: Sendable {
    /// How many text matches are ranked before paging; in text mode `total` counts at most this
    /// many. (Vector searches filter and count inside the index: their `total` is exact.)
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
        switch query.subject {
        case .similarTo(let imageID):
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
        case .text(let text) where images.embedder.supportsText:
            let vector = try await images.embedder.embed(text: text)
            let (hits, total) = try await nearest(
                vector, query, scale: images.embedder.textRelevance, teamID: teamID, excluding: nil)
            return .found(SearchResults(hits: hits, total: total, mode: .semantic, model: images.embedder.modelID))
        case .text(let text):
            // Punctuation alone has no words to match: nothing is found, which is not an error.
            let words = Self.words(of: text)
            let ranked = words.isEmpty ? [] : try await textMatches(words, query, teamID: teamID)
            let page = ranked.dropFirst(query.skip).prefix(query.limit)
            return .found(SearchResults(hits: Array(page), total: ranked.count, mode: .text, model: nil))
        }
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

    private func textMatches(_ words: [String], _ query: SearchQuery, teamID: TeamID) async throws -> [SearchHit] {
        let matches = try await images.store.searchText(
            words, teamID: teamID, filter: query.filter, limit: Self.maxMatches)
        return TextMatch.relevance(of: matches).filter { $0.relevance >= query.threshold }
            .sorted { $0.relevance > $1.relevance }
            .map { SearchHit(image: $0.image, score: $0.relevance) }
    }
}
