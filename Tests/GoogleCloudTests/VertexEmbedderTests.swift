import Foundation
import Hummingbird
import HummingbirdTesting
import ImageAPICore
import Locking
import RuntimeSupport
import Testing
import VertexAI

/// A stand-in for Vertex AI's `multimodalembedding@001:predict`, answering as Google documents the
/// request and response. Nothing here reaches Google.
final class PredictServer: Sendable {
    /// The bodies received.
    let requests = Locked<[Data]>([])
    /// How many of the next calls answer 429 (quota).
    let quotaRefusals = Locked(0)
    let path =
        "/v1/projects/test-project/locations/us-central1/publishers/google/models/multimodalembedding@001:predict"

    func serving<T: Sendable>(_ body: @Sendable (_ base: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post(RouterPath(path)) { request, _ -> Response in
            #expect(request.headers[.authorization] == "Bearer ya29.vertex-test")
            let refuse = self.quotaRefusals.withLock { count in
                defer { count = max(0, count - 1) }
                return count > 0
            }
            if refuse {
                return Response(
                    status: .tooManyRequests,
                    body: .init(
                        byteBuffer: ByteBuffer(string: #"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#)))
            }
            let data = Data(buffer: try await request.body.collect(upTo: 1 << 24))
            self.requests.withLock { $0.append(data) }
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let instance = try #require((json["instances"] as? [[String: Any]])?.first)
            let dimension = try #require((json["parameters"] as? [String: Any])?["dimension"] as? Int)
            // Not normalised, as the model's vectors are not: the embedder normalises them.
            let field = instance["text"] != nil ? "textEmbedding" : "imageEmbedding"
            let vector = (0..<dimension).map { index in index == 0 ? 3.0 : (index == 1 ? 4.0 : 0.0) }
            let answer = try JSONSerialization.data(withJSONObject: [
                "predictions": [[field: vector]], "deployedModelId": "123",
            ])
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(data: answer)))
        }
        return try await Application(router: router).test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }

    func embedder(_ base: String, dimension: Int = 128) -> VertexEmbedder {
        VertexEmbedder(
            endpoint: base, project: "test-project", location: "us-central1", dimension: dimension
        ) { "Bearer ya29.vertex-test" }
    }
}

@Suite("Vertex AI embedder")
struct VertexEmbedderTests {
    @Test(
        "images and texts go as the documented predict request (local test server, not Google); vectors come back normalised"
    )
    func predictWireFormat() async throws {
        let server = PredictServer()
        try await server.serving { base in
            let embedder = server.embedder(base, dimension: 256)
            #expect(embedder.modelID == "vertex-multimodalembedding@001-256")
            let image = try await embedder.embed(image: Data([0xFF, 0xD8, 0xFF, 0x01]))
            #expect(image.count == 256)
            #expect(abs(image[0] - 0.6) < 1e-6 && abs(image[1] - 0.8) < 1e-6)
            let text = try await embedder.embed(text: "a red car at night")
            #expect(text.count == 256)
            let sent = try server.requests.withLock { $0 }.map {
                try #require(try JSONSerialization.jsonObject(with: $0) as? [String: Any])
            }
            #expect(sent.count == 2)
            let imageInstance = (sent[0]["instances"] as? [[String: Any]])?.first?["image"] as? [String: String]
            #expect(imageInstance?["bytesBase64Encoded"] == Data([0xFF, 0xD8, 0xFF, 0x01]).base64EncodedString())
            #expect((sent[1]["instances"] as? [[String: Any]])?.first?["text"] as? String == "a red car at night")
            #expect((sent[1]["parameters"] as? [String: Any])?["dimension"] as? Int == 256)
        }
    }

    @Test("a 429 is retried; a quota still spent after the retries is a 503-kind refusal with a retry time")
    func quota() async throws {
        let server = PredictServer()
        try await server.serving { base in
            let embedder = server.embedder(base)
            server.quotaRefusals.withLock { $0 = 2 }
            let afterRetries = try await embedder.embed(text: "lake")
            #expect(afterRetries.count == 128, "two 429s, then an answer")
            server.quotaRefusals.withLock { $0 = 10 }
            let refusal = await #expect(throws: DomainError.self) { try await embedder.embed(text: "lake") }
            #expect(refusal?.kind == .unavailableFor(retryAfterSeconds: VertexEmbedder.quotaRetryAfterSeconds))
        }
    }

    @Test("VERTEX_TEXT_RELEVANCE and VERTEX_IMAGE_RELEVANCE choose the score scales; a malformed one stops the start")
    func relevanceScales() throws {
        let base = [
            "GOOGLE_CLOUD_PROJECT": "p", "GCE_METADATA_HOST": "127.0.0.1:9",
            "VERTEX_TEXT_RELEVANCE": "logistic:0.12:0.02",
        ]
        let embedder = try VertexAIFactory.make(scoped: EnvironmentVariables(base)).adapter
        #expect(embedder.textRelevance == .logistic(midpoint: 0.12, width: 0.02))
        #expect(embedder.imageRelevance == .shiftedCosine)
        #expect(abs(embedder.textRelevance.score(cosine: 0.12) - 0.5) < 1e-6)
        for bad in ["logistic:0.1", "logistic:0.1:0", "logistic:2:0.1", "sigmoid", "cosine:1"] {
            var variables = base
            variables["VERTEX_IMAGE_RELEVANCE"] = bad
            let refused = #expect(throws: ConfigurationError.self) {
                try VertexAIFactory.make(scoped: EnvironmentVariables(variables))
            }
            #expect(refused?.variable == "VERTEX_IMAGE_RELEVANCE", "\(bad)")
        }
        #expect(RelevanceScale(parsing: " Cosine ") == .cosine)
        #expect(RelevanceScale(parsing: "shifted-cosine") == .shiftedCosine)
    }
}
