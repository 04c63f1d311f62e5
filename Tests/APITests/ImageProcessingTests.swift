import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageProcessing
import LocalPush
import Locking
import Logging
import ProcessEmbedding
import Testing

/// The visual-features embedder, failing its first `failures` calls.
final class FlakyEmbedder: Embedder {
    let inner = VisualFeaturesEmbedder()
    let failures: Int
    private let calls = Locked(0)

    init(failures: Int) { self.failures = failures }

    var modelID: String { inner.modelID }
    var dimensions: Int { inner.dimensions }
    var supportsText: Bool { false }
    var callCount: Int { calls.withLock { $0 } }

    func embed(image data: Data) async throws -> [Float] {
        let call = calls.withLock { count in
            count += 1
            return count
        }
        if call <= failures { throw ProcessingFailure(description: "injected failure \(call)") }
        return try await inner.embed(image: data)
    }

    func embed(text: String) async throws -> [Float] { try await inner.embed(text: text) }

    struct ProcessingFailure: Error, CustomStringConvertible { let description: String }
}

/// A push endpoint that never answers.
struct UnreachableTransport: PushTransport {
    var isReady: Bool { true }
    func push(headers: [(String, String)], body: Data) async throws -> (status: Int, body: String) {
        throw PushError("connection refused")
    }
}

extension APIClient {
    /// Delivers three times, moving the clock past each backoff: every attempt a message gets.
    func deliverThroughRetries(advancing clock: ManualClock) async throws {
        for _ in 0..<3 {
            try await deliver()
            clock.advance(seconds: 10)
        }
    }
}

@Suite("Embedding pipeline: ProcessEmbedding and the local Pub/Sub")
struct ImageProcessingTests {
    @Test("an upload goes pending, then success, with a thumbnail and a vector")
    func processes() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let uploaded = try await client.upload("rotated.jpg", key: ann.key).decode(ImageRecord.self)
            #expect(uploaded.embeddingStatus == .pending)
            #expect(try await client.thumbnail(uploaded.id, key: ann.key).status == .notFound)
            try await client.deliver()
            let image = try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self)
            #expect(image.embeddingStatus == .success)
            #expect(image.embeddingModel == "visual-features-v1")
            #expect(image.embeddingDimensions == 144)
            #expect(image.embeddingAttempts == 1 && image.embeddingError == nil && image.embeddedAt != nil)
            let vector = try #require(try await api.vectors.vector(imageID: image.id, teamID: ann.team.id))
            #expect(vector.count == 144)
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-4)
            #expect(try await api.store.nextDueDate() == nil)

            // The thumbnail is a JPEG with the EXIF orientation applied: stored 64x32 with
            // orientation 6, it is displayed (and thumbnailed) in portrait.
            let thumbnail = try await client.thumbnail(image.id, key: ann.key)
            #expect(thumbnail.status == .ok)
            #expect(thumbnail.headers[.contentType] == "image/jpeg")
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("thumb-\(UUID()).jpg").path
            try thumbnail.body.write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let decoded = try await VipsImageCodec().inspect(fileAt: path, maxPixels: 1_000_000)
            #expect(decoded.width == 128 && decoded.height == 256)
        }
    }

    @Test("two injected embedder failures are retried with backoff, then the image succeeds")
    func retriesThenSucceeds() async throws {
        let embedder = FlakyEmbedder(failures: 2)
        let api = try TestAPI(embedder: embedder)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let uploaded = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            try await client.deliver()
            var image = try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self)
            // Retries remain: still pending, with the error and the attempt recorded, and a
            // reprocess request cannot start a second chain of retries.
            #expect(image.embeddingStatus == .pending)
            #expect(image.embeddingAttempts == 1)
            #expect(image.embeddingError == "injected failure 1")
            #expect(try await client.reprocess(uploaded.id, key: ann.key).status == .conflict)
            // Not due again before the backoff (1 s, then 2 s) has passed.
            try await client.deliver()
            #expect(embedder.callCount == 1)
            api.clock.advance(seconds: 1.1)
            try await client.deliver()
            image = try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self)
            #expect(image.embeddingAttempts == 2 && image.embeddingError == "injected failure 2")
            api.clock.advance(seconds: 1.1)
            try await client.deliver()
            #expect(embedder.callCount == 2)
            api.clock.advance(seconds: 1.0)
            try await client.deliver()
            image = try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self)
            #expect(image.embeddingStatus == .success)
            #expect(image.embeddingAttempts == 3 && image.embeddingError == nil)
            #expect(try await api.store.deadLetters(teamID: ann.team.id, PageRequest()).total == 0)
            #expect(try await api.store.nextDueDate() == nil)
        }
    }

    @Test("after the third failure the image stays failed and the message is dead-lettered")
    func failsAfterThree() async throws {
        let embedder = FlakyEmbedder(failures: .max)
        let api = try TestAPI(embedder: embedder)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let uploaded = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            try await client.deliverThroughRetries(advancing: api.clock)
            try await client.deliver()
            #expect(embedder.callCount == 3)
            let image = try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self)
            #expect(image.embeddingStatus == .failed)
            #expect(image.embeddingAttempts == 3)
            #expect(image.embeddingError == "injected failure 3")
            let letters = try await api.store.deadLetters(teamID: ann.team.id, PageRequest()).items
            #expect(letters.count == 1)
            #expect(letters.first?.source == "handler")
            #expect(letters.first?.lastError == "injected failure 3")
            let request = try JSONCoding.makeDecoder().decode(
                ImageProcessingRequest.self, from: try #require(letters.first?.data))
            #expect(request.imageID == image.id)
            #expect(try await api.store.nextDueDate() == nil)
            #expect(try await client.thumbnail(image.id, key: ann.key).status == .ok)

            // Reprocessing re-queues it; with a working embedder it would now succeed.
            let requeued = try await client.reprocess(image.id, key: ann.key)
            #expect(requeued.status == .accepted)
            let pending = try requeued.decode(ImageRecord.self)
            #expect(pending.embeddingStatus == .pending && pending.embeddingAttempts == 0)
            #expect(try await client.reprocess(image.id, key: ann.key).status == .conflict)
            #expect(try await api.store.nextDueDate() != nil)
        }
    }

    @Test("a failed image can be reprocessed to success")
    func reprocessSucceeds() async throws {
        let embedder = FlakyEmbedder(failures: 3)
        let api = try TestAPI(embedder: embedder)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let uploaded = try await client.upload("lake.png", key: ann.key).decode(ImageRecord.self)
            try await client.deliverThroughRetries(advancing: api.clock)
            #expect(
                try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self).embeddingStatus == .failed
            )
            #expect(try await client.reprocess(uploaded.id, key: ann.key).status == .accepted)
            try await client.deliver()
            let image = try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self)
            #expect(image.embeddingStatus == .success && image.embeddingAttempts == 1)
        }
    }

    @Test("redelivering a processed message changes nothing; a deleted image's message is dropped")
    func idempotentRedelivery() async throws {
        let embedder = FlakyEmbedder(failures: 0)
        let api = try TestAPI(embedder: embedder)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let image = try await client.uploadProcessed("sunset.jpg", key: ann.key)
            let message = OutboxMessage.processing(
                ImageProcessingRequest(imageID: image.id, teamID: ann.team.id, reason: "upload"))
            let queued = QueuedMessage(message: message, publishedAt: api.clock.now(), attempts: 1)
            let transport = RouterPushTransport(client: client.client)
            for _ in 0..<2 {
                let answer = try await transport.push(
                    headers: LocalPushPublisher.headers(for: queued), body: try LocalPushPublisher.body(for: queued))
                #expect(answer.status == 204)
            }
            #expect(embedder.callCount == 1)
            #expect(api.vectors.count == 1)
            let after = try await client.getImage(image.id, key: ann.key).decode(ImageRecord.self)
            #expect(after == image)

            #expect(try await client.deleteImage(image.id, key: ann.key).status == .noContent)
            let late = try await transport.push(
                headers: LocalPushPublisher.headers(for: queued), body: try LocalPushPublisher.body(for: queued))
            #expect(late.status == 204)
            #expect(api.vectors.count == 0)
            #expect(try api.blobFiles().isEmpty)
            #expect(try await api.store.deadLetters(teamID: ann.team.id, PageRequest()).total == 0)
        }
    }

    @Test("replayed or forged deliveries after the last attempt never raise the attempts past the limit")
    func replayAfterLastAttempt() async throws {
        let embedder = FlakyEmbedder(failures: .max)
        let api = try TestAPI(embedder: embedder)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let uploaded = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            try await client.deliverThroughRetries(advancing: api.clock)
            #expect(embedder.callCount == 3)
            let letter = try #require(try await api.store.deadLetters(teamID: ann.team.id, PageRequest()).items.first)
            let transport = RouterPushTransport(client: client.client)
            for replay in 0..<5 {
                let message = OutboxMessage(
                    topic: ImageProcessingRequest.topic, messageID: "forged-\(replay)", data: letter.data)
                let queued = QueuedMessage(message: message, publishedAt: api.clock.now(), attempts: 1)
                let answer = try await transport.push(
                    headers: LocalPushPublisher.headers(for: queued), body: try LocalPushPublisher.body(for: queued))
                #expect(answer.status == 204)
            }
            #expect(embedder.callCount == 3)
            let image = try await client.getImage(uploaded.id, key: ann.key).decode(ImageRecord.self)
            #expect(image.embeddingStatus == .failed && image.embeddingAttempts == 3)
            #expect(try await api.store.deadLetters(teamID: ann.team.id, PageRequest()).total == 1)
        }
    }

    @Test("a dead letter keeps a bounded prefix of a huge malformed payload")
    func boundedDeadLetter() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let huge = Data(("{\"image_id\": \"" + String(repeating: "x", count: 500_000) + "\"}").utf8)
            let message = OutboxMessage(topic: ImageProcessingRequest.topic, messageID: "m-huge", data: huge)
            let queued = QueuedMessage(message: message, publishedAt: api.clock.now(), attempts: 1)
            let answer = try await RouterPushTransport(client: client.client).push(
                headers: LocalPushPublisher.headers(for: queued), body: try LocalPushPublisher.body(for: queued))
            #expect(answer.status == 204)
            let letter = try #require(try await api.store.deadLetter(messageID: "m-huge"))
            #expect(letter.data.count == DeadLetter.maximumStoredBytes)
            #expect(letter.data == huge.prefix(DeadLetter.maximumStoredBytes))
        }
    }

    @Test("a malformed message is acknowledged and dead-lettered by the handler")
    func malformedMessage() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let message = OutboxMessage(
                topic: ImageProcessingRequest.topic, messageID: "m-1", data: Data(#"{"image_id": 7}"#.utf8))
            let queued = QueuedMessage(message: message, publishedAt: api.clock.now(), attempts: 1)
            let answer = try await RouterPushTransport(client: client.client).push(
                headers: LocalPushPublisher.headers(for: queued), body: try LocalPushPublisher.body(for: queued))
            #expect(answer.status == 204)
            let letter = try await api.store.deadLetter(messageID: "m-1")
            #expect(letter?.lastError.hasPrefix("malformed message") == true)
            #expect(letter?.teamID == nil, "a payload naming no team is listed for no team")
        }
    }

    @Test(
        "an unreadable delivery (no envelope, another event type, broken base64) is acknowledged with 204 and dead-lettered, never refused"
    )
    func unreadableDeliveries() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let deliveries: [(String, String)] = [
                ("application/json", #"{"hello": "world"}"#),
                (
                    "application/json",
                    #"{"message": {"data": "%%%", "messageId": "1", "publishTime": "2027-01-01T00:00:00Z"}}"#
                ),
                ("application/cloudevents+json", "{not json"),
            ]
            for (type, body) in deliveries {
                let answer = try await RouterPushTransport(client: client.client).push(
                    headers: [("Content-Type", type)], body: Data(body.utf8))
                #expect(answer.status == 204, "\(body): \(answer.body)")
            }
            for (_, body) in deliveries {
                let id = ProcessEmbeddingFunction.unreadableMessageID(for: Data(body.utf8))
                let letter = try #require(try await api.store.deadLetter(messageID: id), "\(body)")
                #expect(letter.lastError.hasPrefix("unreadable delivery: ") && letter.data == Data(body.utf8))
            }
            #expect(
                Set(deliveries.map { ProcessEmbeddingFunction.unreadableMessageID(for: Data($0.1.utf8)) }).count == 3)
        }
    }

    @Test("an unreachable push endpoint is retried with backoff, then dead-lettered with the last error")
    func deliveryDeadLetter() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let image = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            let pubSub = OutboxRelay(
                queue: api.store, settings: api.pubSubSettings,
                publisher: LocalPushPublisher(transport: UnreachableTransport()), clock: api.clock,
                logger: Logger(label: "test"))
            #expect(try await pubSub.deliverDueMessages() == 1)
            #expect(try await pubSub.deliverDueMessages() == 0)
            api.clock.advance(seconds: 1.1)
            #expect(try await pubSub.deliverDueMessages() == 1)
            api.clock.advance(seconds: 1.1)
            #expect(try await pubSub.deliverDueMessages() == 0)
            api.clock.advance(seconds: 1.0)
            #expect(try await pubSub.deliverDueMessages() == 1)
            let letters = try await api.store.deadLetters(teamID: ann.team.id, PageRequest()).items
            #expect(letters.count == 1)
            #expect(letters.first?.source == "delivery")
            #expect(letters.first?.attempts == 3)
            #expect(letters.first?.lastError == "connection refused")
            #expect(try await api.store.nextDueDate() == nil)
            let stored = try await client.getImage(image.id, key: ann.key).decode(ImageRecord.self)
            #expect(stored.embeddingStatus == .pending)
        }
    }
}
