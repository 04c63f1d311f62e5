import Foundation
import ImageAPICore
import RuntimeSupport
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

    @Test(
        "an unavailable dependency postpones: no attempt spent, the next delivery later and later, success once it is back"
    )
    func outagePostpones() async throws {
        let embedder = SwitchedEmbedder()
        let fixture = ImageUseCaseFixture(embedder: embedder)
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.gif")
        func deliverDue() async throws -> [ProcessingOutcome] {
            let due = try await fixture.store.claimDueMessages(
                now: fixture.clock.now(), leaseUntil: fixture.clock.now().addingTimeInterval(60), limit: 10)
            var outcomes: [ProcessingOutcome] = []
            for queued in due {
                outcomes.append(try await fixture.deliver(queued.message))
                try await fixture.store.acknowledge(messageID: queued.message.messageID)
            }
            return outcomes
        }
        for (postponement, wait) in [(1, 10.0), (2, 20.0), (3, 40.0)] {
            let outcomes = try await deliverDue()
            guard outcomes.count == 1, case .postponed(let postponed, let until, let reason) = outcomes[0] else {
                Issue.record("delivery \(postponement) was not postponed: \(outcomes)")
                return
            }
            #expect(until == fixture.clock.now().addingTimeInterval(wait), "the wait doubles")
            #expect(reason.contains("unreachable"))
            #expect(postponed.embeddingStatus == .pending && postponed.embeddingAttempts == 0, "no attempt spent")
            let stored = try #require(try await fixture.store.image(id: image.id, teamID: fixture.team))
            #expect(stored.embeddingError?.hasPrefix("Waiting for a dependency that is unavailable") == true)
            fixture.clock.advance(seconds: wait - 1)
            #expect(try await deliverDue().isEmpty, "not due before its time")
            fixture.clock.advance(seconds: 1)
        }
        embedder.down.withLock { $0 = false }
        let outcomes = try await deliverDue()
        guard outcomes.count == 1, case .embedded(let embedded, _, _) = outcomes[0] else {
            Issue.record("not embedded once the service was back: \(outcomes)")
            return
        }
        #expect(embedded.embeddingAttempts == 1, "one attempt in all: the outage spent none")
        #expect(try await fixture.store.image(id: image.id, teamID: fixture.team)?.embeddingStatus == .success)
        #expect(try await fixture.store.deadLetters(teamID: fixture.team, PageRequest()).total == 0)
    }

    @Test("an outage longer than PROCESSING_POSTPONE_LIMIT_SECONDS fails the image and keeps a dead letter saying so")
    func outageBeyondTheLimit() async throws {
        let fixture = ImageUseCaseFixture(embedder: SwitchedEmbedder(), postponeLimitSeconds: 60)
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.gif")
        var last: ProcessingOutcome?
        for _ in 0..<10 {
            let due = try await fixture.store.claimDueMessages(
                now: fixture.clock.now(), leaseUntil: fixture.clock.now().addingTimeInterval(1), limit: 10)
            for queued in due {
                last = try await fixture.deliver(queued.message)
                try await fixture.store.acknowledge(messageID: queued.message.messageID)
            }
            if case .gaveUp = last { break }
            fixture.clock.advance(seconds: 40)
        }
        guard case .gaveUp(_, _, _, let reason) = last else {
            Issue.record("never gave up: \(String(describing: last))")
            return
        }
        #expect(reason.contains("PROCESSING_POSTPONE_LIMIT_SECONDS") && reason.contains("unreachable"))
        let failed = try #require(try await fixture.store.image(id: image.id, teamID: fixture.team))
        #expect(failed.embeddingStatus == .failed)
        let letters = try await fixture.store.deadLetters(teamID: fixture.team, PageRequest()).items
        #expect(letters.count == 1 && letters.first?.lastError.contains("PROCESSING_POSTPONE_LIMIT_SECONDS") == true)
        #expect(try await fixture.store.nextDueDate() == nil, "nothing left in the outbox")
    }

    @Test(
        "a metadata store that cannot be reached makes the delivery wait for it (no answer given back, which would spend one of Pub/Sub's delivery attempts), within the wait"
    )
    func deliveryWaitsForTheStore() async throws {
        let fixture = ImageUseCaseFixture(embedder: SwitchedEmbedder())
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.gif")
        let queued = try #require(
            try await fixture.store.claimDueMessages(
                now: fixture.clock.now(), leaseUntil: fixture.clock.now().addingTimeInterval(60), limit: 1
            ).first)
        let request = try JSONCoding.makeDecoder().decode(ImageProcessingRequest.self, from: queued.message.data)
        let delivery = ProcessingDelivery(
            messageID: queued.message.messageID, data: queued.message.data, request: request)
        func pipeline(_ store: InterruptedImageStore, wait: Duration) -> EmbeddingPipeline {
            EmbeddingPipeline(images: fixture.images(over: store), clock: fixture.clock, storeWait: wait)
        }

        // Down for the start of the attempt and for recording its postponement (the embedder is down too).
        let store = InterruptedImageStore(fixture.store, begin: 2, postpone: 2)
        let outcome = try await pipeline(store, wait: .seconds(30)).process(delivery)
        guard case .postponed(let postponed, _, _) = outcome else {
            Issue.record("not postponed once the store was back: \(outcome)")
            return
        }
        #expect(store.failedCalls.withLock { $0 } == 4)
        #expect(postponed.embeddingAttempts == 0, "the outage spent no attempt")

        // Down for longer than the wait: the store's error, for the transport to deliver again.
        let longer = InterruptedImageStore(fixture.store, begin: 100, postpone: 100)
        do {
            let unexpected = try await pipeline(longer, wait: .seconds(1)).process(delivery)
            Issue.record("processed while the store was down: \(unexpected)")
        } catch {
            #expect(error is DomainError)
        }
        #expect((2...3).contains(longer.failedCalls.withLock { $0 }), "tried again within the wait, then gave up")
        let stored = try #require(try await fixture.store.image(id: image.id, teamID: fixture.team))
        #expect(stored.embeddingStatus == .pending && stored.embeddingAttempts == 0)
    }

    @Test("a begun attempt whose answer the store lost is recognised on the next try, not counted twice")
    func beginAnswerLost() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("sunset.jpg")
        let queued = try #require(
            try await fixture.store.claimDueMessages(
                now: fixture.clock.now().addingTimeInterval(60),
                leaseUntil: fixture.clock.now().addingTimeInterval(120),
                limit: 1
            ).first)
        let request = try JSONCoding.makeDecoder().decode(ImageProcessingRequest.self, from: queued.message.data)
        let store = InterruptedImageStore(fixture.store, begin: 1, beginCommits: true)
        let outcome = try await EmbeddingPipeline(
            images: fixture.images(over: store), clock: fixture.clock, storeWait: .seconds(10)
        ).process(ProcessingDelivery(messageID: queued.message.messageID, data: queued.message.data, request: request))
        guard case .embedded = outcome else {
            Issue.record("not embedded: \(outcome)")
            return
        }
        #expect(store.failedCalls.withLock { $0 } == 1)
        let stored = try #require(try await fixture.store.image(id: image.id, teamID: fixture.team))
        #expect(stored.embeddingStatus == .success && stored.embeddingAttempts == 1)
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
