import AsyncHTTPClient
import Foundation
import GoogleCloudAuth
import ImageAPICore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OutboundHTTP

/// Vertex AI's multimodal embedding model (`multimodalembedding@001`) behind the embedder port
/// (`EMBEDDING_PROVIDER=vertex`).
///
/// Each image or text is one `:predict` call: images as `bytesBase64Encoded`, texts as `text`,
/// with `parameters.dimension` (128, 256, 512 or 1408). The model reads at most 32 tokens of a
/// text; a longer query is logged (the count here is of words, which undercounts tokens). The
/// model id stored with each vector names the model and the dimension, so a change of provider
/// or dimension marks vectors stale for `reprocess-all`. Calls are retried with jittered backoff
/// on 429 and 5xx; when Vertex AI still answers 429 (quota), the embedder refuses with
/// `DomainError` `unavailableFor` (503 with `Retry-After` on search).
public final class VertexEmbedder: Embedder {
    /// The dimensions the model offers.
    public static let allowedDimensions = [128, 256, 512, 1408]
    /// The model's limit on a text's length, in tokens.
    public static let textTokenLimit = 32
    /// How long a client is asked to wait when the quota is spent.
    public static let quotaRetryAfterSeconds = 30

    /// `vertex-multimodalembedding@001-<dimension>`.
    public let modelID: String
    /// The vector length.
    public let dimensions: Int
    /// How a text query's cosine becomes a score (`VERTEX_TEXT_RELEVANCE`).
    public let textRelevance: RelevanceScale
    /// How an image-to-image cosine becomes a score (`VERTEX_IMAGE_RELEVANCE`).
    public let imageRelevance: RelevanceScale
    private let url: String
    private let caller: ServiceCaller
    private let logger: Logger

    /// Creates the embedder.
    /// - Parameters:
    ///   - endpoint: The API's base URL (`https://<location>-aiplatform.googleapis.com`).
    ///   - project: `GOOGLE_CLOUD_PROJECT`.
    ///   - location: `VERTEX_LOCATION`.
    ///   - dimension: `VERTEX_EMBEDDING_DIMENSION`, one of ``allowedDimensions``.
    ///   - client: The HTTP client.
    ///   - logger: Where long queries are reported.
    ///   - textRelevance: How a text query's cosine becomes a score.
    ///   - imageRelevance: How an image-to-image cosine becomes a score.
    ///   - authorization: The `Authorization` header's value for each call.
    public init(
        endpoint: String, project: String, location: String, dimension: Int, client: HTTPClient = ServiceCaller.client,
        logger: Logger = Logger(label: "vertex-ai"), textRelevance: RelevanceScale = .shiftedCosine,
        imageRelevance: RelevanceScale = .shiftedCosine,
        authorization: @escaping @Sendable () async throws -> String?
    ) {
        self.textRelevance = textRelevance
        self.imageRelevance = imageRelevance
        let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.url =
            "\(base)/v1/projects/\(project)/locations/\(location)/publishers/google/models/multimodalembedding@001:predict"
        self.dimensions = dimension
        self.modelID = "vertex-multimodalembedding@001-\(dimension)"
        self.caller = ServiceCaller(api: "Vertex AI", client: client, authorization: authorization)
        self.logger = logger
    }

    /// Texts and images share one space.
    public var supportsText: Bool { true }

    /// The embedding of an image's bytes.
    public func embed(image data: Data) async throws -> [Float] {
        try await predict(
            instance: ["image": ["bytesBase64Encoded": data.base64EncodedString()]], field: "imageEmbedding")
    }

    /// The embedding of a text query.
    public func embed(text: String) async throws -> [Float] {
        let words = text.split(whereSeparator: \.isWhitespace).count
        if words > Self.textTokenLimit {
            logger.notice(
                "Search text longer than the model reads: Vertex AI embeds its first \(Self.textTokenLimit) tokens",
                metadata: ["words": .stringConvertible(words)])
        }
        return try await predict(instance: ["text": text], field: "textEmbedding")
    }

    private func predict(instance: [String: Any], field: String) async throws -> [Float] {
        let body: [String: Any] = ["instances": [instance], "parameters": ["dimension": dimensions]]
        let operation = "predict (\(field))"
        let response = try await caller.send(
            .POST, url, headers: ["Content-Type": "application/json"],
            body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)), operation: operation,
            idempotent: true, timeout: .seconds(60))
        if response.status == .tooManyRequests {
            _ = try? await response.body.collect(upTo: 1 << 16)
            throw DomainError(
                .unavailableFor(retryAfterSeconds: Self.quotaRetryAfterSeconds),
                "The embedding model's quota is spent for now; try again shortly")
        }
        guard response.status == .ok else { throw await caller.failure(response, operation) }
        let answer = try JSONSerialization.jsonObject(
            with: Data(buffer: try await response.body.collect(upTo: 1 << 22)))
        guard let predictions = (answer as? [String: Any])?["predictions"] as? [[String: Any]],
            let values = predictions.first?[field] as? [NSNumber], values.count == dimensions
        else {
            throw ServiceCallError(
                api: "Vertex AI", operation: operation, status: 200,
                detail: "the answer has no \(field) of \(dimensions) numbers")
        }
        let vector = values.map(\.floatValue)
        let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0 else {
            throw ServiceCallError(api: "Vertex AI", operation: operation, status: 200, detail: "a zero vector")
        }
        return vector.map { $0 / norm }
    }
}
