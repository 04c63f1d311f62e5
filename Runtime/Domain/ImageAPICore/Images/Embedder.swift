import Foundation

/// Turns images (and, for multimodal models, text) into vectors.
public protocol Embedder: Sendable {
    /// The model identifier stored with each vector (`visual-features-v1`).
    var modelID: String { get }
    /// The vector length.
    var dimensions: Int { get }
    /// Whether ``embed(text:)`` is supported (semantic text search).
    var supportsText: Bool { get }
    /// The L2-normalised embedding of an image.
    func embed(image data: Data) async throws -> [Float]
    /// The L2-normalised embedding of a text; throws ``EmbedderError/textUnsupported`` when the
    /// model has no text tower.
    func embed(text: String) async throws -> [Float]
    /// How a text query's cosine with an image becomes a 0-1 search score.
    var textRelevance: RelevanceScale { get }
    /// How an image query's cosine with another image becomes a 0-1 search score.
    var imageRelevance: RelevanceScale { get }
    /// Loads and warms the model ahead of the first request (a no-op for embedders with nothing
    /// to load); throws when the model cannot be used.
    func prepare() async throws
}

extension Embedder {
    /// `(1 + cosine) / 2` unless the embedder says otherwise.
    public var textRelevance: RelevanceScale { .shiftedCosine }
    /// `(1 + cosine) / 2` unless the embedder says otherwise.
    public var imageRelevance: RelevanceScale { .shiftedCosine }
    /// Nothing to prepare unless the embedder says otherwise.
    public func prepare() async throws {}
}

/// A monotonic map from a cosine similarity (-1...1) to a search score (0...1), and back, so that
/// a score threshold becomes a cosine bound for the vector index.
public enum RelevanceScale: Sendable, Equatable {
    /// `(1 + cosine) / 2`: 1 for the same direction, 0.5 for orthogonal vectors.
    case shiftedCosine
    /// `max(0, cosine)`.
    case cosine
    /// `1 / (1 + exp(-(cosine - midpoint) / width))`: spreads a model's narrow band of cosines
    /// over 0-1, with `midpoint` scoring 0.5.
    case logistic(midpoint: Double, width: Double)

    /// Reads a scale from its written form: `shifted-cosine`, `cosine`, or
    /// `logistic:<midpoint>:<width>` (such as `logistic:0.20:0.025`, CLIP's text scale).
    /// - Parameter text: The written form.
    /// - Returns: The scale, or `nil` when the text is none of these (or the width is not positive).
    public init?(parsing text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).lowercased().split(separator: ":").map(String.init)
        switch parts.first {
        case "shifted-cosine" where parts.count == 1: self = .shiftedCosine
        case "cosine" where parts.count == 1: self = .cosine
        case "logistic" where parts.count == 3:
            guard let midpoint = Double(parts[1]), let width = Double(parts[2]), midpoint.isFinite, width.isFinite,
                width > 0, abs(midpoint) <= 1
            else { return nil }
            self = .logistic(midpoint: midpoint, width: width)
        default: return nil
        }
    }

    /// The score of a cosine.
    public func score(cosine: Float) -> Double {
        let value = Double(cosine)
        let score: Double
        switch self {
        case .shiftedCosine: score = (1 + value) / 2
        case .cosine: score = value
        case .logistic(let midpoint, let width): score = 1 / (1 + Foundation.exp(-(value - midpoint) / width))
        }
        return min(1, max(0, score))
    }

    /// The smallest cosine whose score reaches `score`.
    public func minimumCosine(forScore score: Double) -> Float {
        switch self {
        case .shiftedCosine: return Float(2 * score - 1)
        case .cosine: return score <= 0 ? -1 : Float(score)
        case .logistic(let midpoint, let width):
            if score <= 0 { return -1 }
            if score >= 1 { return 1.0001 }
            return Float(midpoint + width * Foundation.log(score / (1 - score)))
        }
    }
}

/// Errors every embedder may throw.
public enum EmbedderError: Error, Equatable, CustomStringConvertible {
    /// The embedder compares images only.
    case textUnsupported(model: String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case .textUnsupported(let model): "the \(model) embedder cannot embed text"
        }
    }
}
