import Foundation

/// How hybrid search fuses the semantic and the text ranking: Reciprocal Rank Fusion. An image
/// at rank `r` (1 for the best) of an engine gets `weight / (k + r)` from it, and the sum over the
/// engines that found it orders the results. The score a result shows is that sum divided by the
/// most it can be (first in both engines), so it lies in 0-1: 1 for an image both engines rank
/// first, and with equal weights 0.5 for one that only one engine found and ranks first.
public struct HybridRanking: Sendable, Equatable {
    /// `SEARCH_RRF_K`: the rank offset (default 60, as in Cormack et al.'s Reciprocal Rank
    /// Fusion); a larger `k` flattens the difference between the first ranks.
    public var k: Int
    /// `SEARCH_SEMANTIC_WEIGHT`: the semantic ranking's weight (default 1).
    public var semanticWeight: Double
    /// `SEARCH_TEXT_WEIGHT`: the text ranking's weight (default 1).
    public var textWeight: Double

    /// Describes the fusion.
    /// - Parameters:
    ///   - k: The rank offset, at least 1.
    ///   - semanticWeight: The semantic ranking's weight, at least 0.
    ///   - textWeight: The text ranking's weight, at least 0.
    public init(k: Int = 60, semanticWeight: Double = 1, textWeight: Double = 1) {
        self.k = max(1, k)
        self.semanticWeight = max(0, semanticWeight)
        self.textWeight = max(0, textWeight)
    }

    /// The fused score of an image, 0-1.
    /// - Parameters:
    ///   - semanticRank: Its rank in the semantic ranking (1 for the best), if it is there.
    ///   - textRank: Its rank in the text ranking, if it is there.
    /// - Returns: The weighted sum of `1 / (k + rank)` over both, divided by its greatest value.
    public func score(semanticRank: Int?, textRank: Int?) -> Double {
        let best = (semanticWeight + textWeight) / Double(k + 1)
        guard best > 0 else { return 0 }
        var sum = 0.0
        if let semanticRank { sum += semanticWeight / Double(k + semanticRank) }
        if let textRank { sum += textWeight / Double(k + textRank) }
        return min(1, sum / best)
    }
}
