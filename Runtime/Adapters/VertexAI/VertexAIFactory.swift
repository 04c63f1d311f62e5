import Foundation
import GoogleCloudAuth
import ImageAPICore
import Logging
import RuntimeSupport

/// `EMBEDDING_PROVIDER=vertex`: Vertex AI's `multimodalembedding@001` in `GOOGLE_CLOUD_PROJECT`
/// at `VERTEX_LOCATION` (default `us-central1`), `VERTEX_EMBEDDING_DIMENSION` numbers per vector
/// (default 1408), called with Application Default Credentials. `VERTEX_API_ENDPOINT` replaces
/// the regional endpoint (a proxy, or a test server).
///
/// Scores: `VERTEX_TEXT_RELEVANCE` and `VERTEX_IMAGE_RELEVANCE` (``RelevanceScale/init(parsing:)``)
/// map the model's cosines to 0-1, default `shifted-cosine`. The model's cosine range could not be
/// measured where this was written (no access to Vertex AI); an operator calibrates with their own
/// images as the README describes.
public enum VertexAIFactory: AdapterFactory {
    /// The scope the embedder's tokens ask for.
    public static let scope = "https://www.googleapis.com/auth/cloud-platform"

    /// The project, location, dimension, endpoint and credentials' variables.
    public static let variables: Set<String> = [
        "GOOGLE_CLOUD_PROJECT", "VERTEX_LOCATION", "VERTEX_EMBEDDING_DIMENSION", "VERTEX_API_ENDPOINT",
        "GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "VERTEX_TEXT_RELEVANCE", "VERTEX_IMAGE_RELEVANCE",
    ]

    /// Builds the embedder.
    /// - Parameter variables: The variables above.
    /// - Returns: The embedder.
    /// - Throws: ``ConfigurationError`` for a missing project, an unknown dimension or location,
    ///   or an unusable key file.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<VertexEmbedder> {
        guard let project = variables["GOOGLE_CLOUD_PROJECT"] else {
            throw ConfigurationError(
                variable: "GOOGLE_CLOUD_PROJECT", reason: "must be set when EMBEDDING_PROVIDER=vertex")
        }
        let location = variables["VERTEX_LOCATION"] ?? "us-central1"
        guard location.range(of: "^[a-z]+-[a-z]+[0-9]+$", options: .regularExpression) != nil else {
            throw ConfigurationError(
                variable: "VERTEX_LOCATION", reason: "must be a region such as us-central1 (got \"\(location)\")")
        }
        let dimension = try variables.integer("VERTEX_EMBEDDING_DIMENSION", default: 1408, in: 128...1408)
        guard VertexEmbedder.allowedDimensions.contains(dimension) else {
            throw ConfigurationError(
                variable: "VERTEX_EMBEDDING_DIMENSION", reason: "must be 128, 256, 512 or 1408 (got \(dimension))")
        }
        let textRelevance = try scale(variables, "VERTEX_TEXT_RELEVANCE")
        let imageRelevance = try scale(variables, "VERTEX_IMAGE_RELEVANCE")
        let tokens = try GoogleAccessTokens.configured(variables, scope: scope)
        return BuiltAdapter(
            VertexEmbedder(
                endpoint: variables["VERTEX_API_ENDPOINT"] ?? "https://\(location)-aiplatform.googleapis.com",
                project: project, location: location, dimension: dimension, textRelevance: textRelevance,
                imageRelevance: imageRelevance
            ) { try await tokens.authorization() })
    }

    /// A relevance scale from a variable (default `shifted-cosine`).
    private static func scale(_ variables: EnvironmentVariables, _ name: String) throws -> RelevanceScale {
        guard let text = variables[name] else { return .shiftedCosine }
        guard let scale = RelevanceScale(parsing: text) else {
            throw ConfigurationError(
                variable: name,
                reason:
                    "must be shifted-cosine, cosine or logistic:<midpoint>:<width> with a positive width (got \"\(text)\")"
            )
        }
        return scale
    }
}
