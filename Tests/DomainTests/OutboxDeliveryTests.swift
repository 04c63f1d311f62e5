import Foundation
import ImageAPICore
import Locking
import Logging
import Testing

/// A publisher that refuses its first `failures` messages, then takes them, recording each.
final class CountingPublisher: EventPublisher {
    private let state: Locked<(failures: Int, taken: [String])>
    init(failures: Int) { state = Locked((failures, [])) }
    var isReady: Bool { true }
    var taken: [String] { state.withLock { $0.taken } }
    func publish(_ queued: QueuedMessage) async throws {
        try state.withLock { state in
            if state.failures > 0 {
                state.failures -= 1
                throw PublishRefusal()
            }
            state.taken.append(queued.message.messageID)
        }
    }
    struct PublishRefusal: Error, CustomStringConvertible {
        var description: String { "the topic is unavailable" }
    }
}

@Suite("OutboxDelivery: the outbox published, retried with backoff, dead-lettered after the last attempt")
struct OutboxDeliveryTests {
    static let policy = OutboxDeliveryPolicy(leaseSeconds: 30, maxAttempts: 3, retryBaseSeconds: 2)

    @Test("a taken message leaves the outbox; a refused one is due again after 2 s, then 4 s")
    func retriesWithBackoff() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        let image = try await fixture.upload("lake.png")
        let publisher = CountingPublisher(failures: 2)
        let delivery = OutboxDelivery(
            queue: fixture.store, publisher: publisher, policy: Self.policy, clock: fixture.clock,
            logger: Logger(label: "test"))
        #expect(try await delivery.deliverDueMessages() == 1)
        #expect(try await fixture.store.nextDueDate() == fixture.clock.now().addingTimeInterval(2))
        #expect(try await delivery.deliverDueMessages() == 0)
        fixture.clock.advance(seconds: 2)
        #expect(try await delivery.deliverDueMessages() == 1)
        #expect(try await fixture.store.nextDueDate() == fixture.clock.now().addingTimeInterval(4))
        fixture.clock.advance(seconds: 4)
        #expect(try await delivery.deliverDueMessages() == 1)
        #expect(publisher.taken.count == 1)
        #expect(try await fixture.store.nextDueDate() == nil)
        let request = OutboxMessage.processing(
            ImageProcessingRequest(imageID: image.id, teamID: fixture.team, reason: "upload"))
        #expect(try await fixture.store.deadLetter(messageID: request.messageID) == nil)
    }

    @Test("after the last attempt the message is a dead letter with the last error")
    func deadLetters() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        _ = try await fixture.upload("lake.png")
        let delivery = OutboxDelivery(
            queue: fixture.store, publisher: CountingPublisher(failures: 10), policy: Self.policy,
            clock: fixture.clock, logger: Logger(label: "test"))
        for _ in 1...3 {
            #expect(try await delivery.deliverDueMessages() == 1)
            fixture.clock.advance(seconds: 60)
        }
        #expect(try await fixture.store.nextDueDate() == nil)
        let letters = try await fixture.store.deadLetters(teamID: fixture.team, PageRequest())
        #expect(letters.items.count == 1)
        #expect(letters.items.first?.attempts == 3 && letters.items.first?.lastError == "the topic is unavailable")
    }

    @Test(
        "an unavailable transport keeps the message past the last attempt, retried at most every 10 minutes, until it takes it"
    )
    func outagesKeepTheMessage() async throws {
        let fixture = ImageUseCaseFixture()
        defer { fixture.removeStaging() }
        _ = try await fixture.upload("lake.png")
        let publisher = CountingPublisher(failures: 12)
        let delivery = OutboxDelivery(
            queue: fixture.store, publisher: publisher, policy: Self.policy, clock: fixture.clock,
            logger: Logger(label: "test"), outages: OutageClassifier { $0 is CountingPublisher.PublishRefusal })
        var waits: [Double] = []
        for _ in 1...12 {
            #expect(try await delivery.deliverDueMessages() == 1)
            let due = try #require(try await fixture.store.nextDueDate(), "the message stays in the outbox")
            waits.append(due.timeIntervalSince(fixture.clock.now()))
            fixture.clock.advance(seconds: waits.last ?? 0)
        }
        #expect(waits.prefix(4) == [2, 4, 8, 16] && waits.suffix(3).allSatisfy { $0 == 600 })
        #expect(try await delivery.deliverDueMessages() == 1)
        #expect(publisher.taken.count == 1)
        #expect(try await fixture.store.nextDueDate() == nil)
        #expect(try await fixture.store.deadLetters(teamID: fixture.team, PageRequest()).total == 0)
    }
}
