import Foundation

/// Full-text search over images' metadata. How relevant a match is, 0 to 1, is the domain's
/// definition (``TextMatch/relevance(of:)``), not any backend's.
public protocol ImageTextSearch: Sendable {
    /// Full-text search over file name, description, tags and EXIF text: the images holding at
    /// least one of the words (each matched as a prefix), best weight first, at most `limit`.
    func searchText(_ words: [String], teamID: TeamID, filter: ImageFilter, limit: Int) async throws -> [TextMatch]
}

/// One full-text match, as a backend finds it: the image, how many of the query's words it
/// holds, and the backend's own ranking weight.
public struct TextMatch: Sendable, Equatable {
    /// The matching image.
    public var image: ImageRecord
    /// The share of the query's words the image contains (0-1).
    public var coverage: Double
    /// The backend's own ranking of the match: at least 0, larger is better, comparable only
    /// between the matches of one answer (SQLite: the negated FTS5 `bm25()`; a backend without
    /// term weighting gives every match the same weight).
    public var weight: Double

    /// Creates a match.
    public init(image: ImageRecord, coverage: Double, weight: Double) {
        self.image = image
        self.coverage = coverage
        self.weight = weight
    }

    /// The relevance of each match, 0 to 1, as the API defines it for text search:
    /// `0.7 × coverage + 0.3 × weight / the best weight among the matches` (1 for the weight part
    /// when no match has any weight). Every image holding all the words scores at least 0.7.
    /// - Parameter matches: One answer's matches.
    /// - Returns: Each match's image and relevance, in the order given.
    public static func relevance(of matches: [TextMatch]) -> [(image: ImageRecord, relevance: Double)] {
        let best = matches.map(\.weight).max() ?? 0
        return matches.map { match in
            (match.image, 0.7 * match.coverage + 0.3 * (best > 0 ? max(0, match.weight) / best : 1))
        }
    }
}
