import AsyncHTTPClient
import Foundation
import ImageAPICore
import NIOCore
import NIOHTTP1
import PubSub
import Testing

/// The Pub/Sub publisher against Google's own Pub/Sub emulator (started by the test command).
@Suite("Pub/Sub publisher", .enabled(if: TestServers.pubSubEmulator != nil, "needs the Pub/Sub emulator"))
struct PubSubPublisherTests {
    @Test("a published outbox message arrives with its data, attributes and the image id as ordering key")
    func publishes() async throws {
        let host = try #require(TestServers.pubSubEmulator)
        let topic = "events-\(UUID().uuidString.prefix(8).lowercased())"
        let publisher = PubSubPublisher(
            endpoint: "http://\(host)", project: "test-project", topic: topic, createsTopic: true)
        let base = "http://\(host)/v1/projects/test-project"
        // A pull subscription to read back what was published (the topic is made by the first publish,
        // so it is made here first, the way the publisher makes it).
        try await publisher.createPushSubscription(
            named: "\(topic)-unused", endpoint: "http://127.0.0.1:9/unused", deadLetterTopic: "\(topic)-dead",
            maxDeliveryAttempts: 5)
        try await call(
            .PUT, "\(base)/subscriptions/\(topic)-check",
            #"{"topic": "projects/test-project/topics/\#(topic)", "enableMessageOrdering": true}"#)
        let image = ImageProcessingRequest(imageID: ImageID(), teamID: TeamID(), reason: "upload")
        let message = OutboxMessage.processing(image)
        try await publisher.publish(QueuedMessage(message: message, publishedAt: Date(), attempts: 1))

        let pulled = try await call(.POST, "\(base)/subscriptions/\(topic)-check:pull", #"{"maxMessages": 10}"#)
        let received = try #require(pulled["receivedMessages"] as? [[String: Any]])
        let first = try #require(received.first?["message"] as? [String: Any])
        #expect(received.count == 1)
        #expect(Data(base64Encoded: try #require(first["data"] as? String)) == message.data)
        let attributes = try #require(first["attributes"] as? [String: String])
        #expect(attributes["image_id"] == image.imageID.lowercasedString)
        #expect(attributes["event_id"] == message.messageID)
        #expect(first["orderingKey"] as? String == image.imageID.lowercasedString)
    }

    @discardableResult
    func call(_ method: HTTPMethod, _ url: String, _ body: String) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        #expect(response.status == .ok, "\(method) \(url): \(text)")
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }
}
