import CLIPEmbedding
import CLIPInference
import Foundation
import Logging
import Testing

/// The embedder port over the engine: concurrent requests share batches and keep their answers.
@Suite("CLIP embedder")
struct EmbedderBatchingTests {
    @Test("concurrent images and texts are batched, each answered with its own embedding; a bad image fails alone")
    func concurrentRequests() async throws {
        let embedder = try CLIPEmbedder(
            directory: ReferenceFixture.modelDirectory, threads: 2, logger: Logger(label: "test"))
        let reference = ReferenceFixture.shared
        let images = try reference.images.map { ($0, try ReferenceFixture.imageData($0.file)) }
        let texts = Array(reference.texts.prefix(20))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (image, data) in images {
                group.addTask {
                    let vector = try await embedder.embed(image: data)
                    #expect(ReferenceFixture.maxDifference(vector, image.embedding) <= 1e-4, "\(image.file)")
                }
            }
            for text in texts {
                group.addTask {
                    let vector = try await embedder.embed(text: text.text)
                    #expect(ReferenceFixture.maxDifference(vector, text.embedding) <= 1e-4, "\(text.text)")
                }
            }
            group.addTask {
                await #expect(throws: CLIPImageError.self) {
                    try await embedder.embed(image: Data("not an image".utf8))
                }
            }
            try await group.waitForAll()
        }
        #expect(embedder.dimensions == 24 && embedder.supportsText)
    }
}
