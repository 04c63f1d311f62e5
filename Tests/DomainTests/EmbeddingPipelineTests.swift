import Foundation
import ImageAPICore
import Testing

@Suite("EmbeddingPipeline: an uploaded image made searchable, each delivery safe to repeat")
struct EmbeddingPipelineTests {
    @Test("a delivery makes the thumbnail and the vector and leaves the image success; a redelivery does nothing")
    func embeds() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("sunset.jpg")
        let outcomes = try await fixture.deliverAll()
        try #require(outcomes.count == 1)
        guard case .embedded(let embedded, let model, _) = outcomes[0] else {
            Issue.record("not embedded: \(outcomes[0])")
            return
        }
        #expect(embedded.id == image.id && model == fixture.images.embedder.modelID)
        let stored = try #require(try await fixture.store.image(id: image.id, teamID: fixture.team))
        #expect(stored.embeddingStatus == .success && stored.embeddingAttempts == 1)
        #expect(try await fixture.blobs.exists(at: image.thumbnailBlobKey))
        let vector = try #require(try await fixture.vectors.vector(imageID: image.id, teamID: fixture.team))
        #expect(vector.count == fixture.images.embedder.dimensions)

        let message = OutboxMessage.processing(
            ImageProcessingRequest(imageID: image.id, teamID: fixture.team, reason: "upload"))
        guard case .alreadyDone = try await fixture.deliver(message) else {
            Issue.record("a redelivery was processed again")
            return
        }
    }

    @Test("a message for an image deleted since is dropped")
    func missing() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.png")
        _ = try await fixture.library.delete(id: image.id, teamID: fixture.team)
        let outcomes = try await fixture.deliverAll()
        #expect(outcomes == [.missing(image.id)])
        #expect(try await fixture.vectors.vector(imageID: image.id, teamID: fixture.team) == nil)
    }

    @Test("failed attempts keep the image pending until the last, which fails it and keeps a dead letter")
    func attemptsThenDeadLetter() async throws {
        let fixture = ImageUseCaseFixture(embedder: RefusingEmbedder())
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.gif")
        let message = OutboxMessage.processing(
            ImageProcessingRequest(imageID: image.id, teamID: fixture.team, reason: "upload"))
        for attempt in 1...2 {
            guard case .failed(_, let seen, let limit, let reason) = try await fixture.deliver(message) else {
                Issue.record("attempt \(attempt) was not a retryable failure")
                return
            }
            #expect(seen == attempt && limit == 3 && reason.contains("refused"))
            let current = try #require(try await fixture.store.image(id: image.id, teamID: fixture.team))
            #expect(current.embeddingStatus == .pending)
        }
        guard case .gaveUp(_, let attempts, _, _) = try await fixture.deliver(message) else {
            Issue.record("the last attempt did not give up")
            return
        }
        #expect(attempts == 3)
        let failed = try #require(try await fixture.store.image(id: image.id, teamID: fixture.team))
        #expect(failed.embeddingStatus == .failed)
        let letter = try #require(try await fixture.store.deadLetter(messageID: message.messageID))
        #expect(letter.attempts == 3 && letter.data == message.data && letter.lastError.contains("refused"))
        guard case .exhausted = try await fixture.deliver(message) else {
            Issue.record("a delivery after the last attempt was processed")
            return
        }
    }

    @Test("an unprocessable delivery becomes one dead letter per body")
    func unprocessable() async throws {
        let fixture = ImageUseCaseFixture()
        let body = Data("not a message".utf8)
        let id = EmbeddingPipeline.unreadableMessageID(for: body)
        try await fixture.pipeline.deadLetterUnprocessable(messageID: id, data: body, reason: "unreadable")
        try await fixture.pipeline.deadLetterUnprocessable(messageID: id, data: body, reason: "unreadable")
        #expect(id == EmbeddingPipeline.unreadableMessageID(for: Data("not a message".utf8)))
        #expect(id != EmbeddingPipeline.unreadableMessageID(for: Data("another".utf8)))
        let letter = try #require(try await fixture.store.deadLetter(messageID: id))
        #expect(letter.data == body && letter.lastError == "unreadable")
    }
}
