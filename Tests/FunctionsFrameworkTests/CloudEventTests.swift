import Foundation
import FunctionsFramework
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Locking
import Testing

/// Sample payloads in the shapes Google documents: the structured-mode example from the
/// google-cloudevents repository and a push-subscription body from the Pub/Sub push docs.
/// Pub/Sub itself cannot be reached here; these test the wire format only.
enum GooglePubSubSamples {
    static let structuredEvent = """
        {
          "data": {
            "subscription": "projects/test-project/subscriptions/my-subscription",
            "message": {
              "attributes": {"attr1": "attr1-value"},
              "data": "dGVzdCBtZXNzYWdlIDM=",
              "messageId": "message-id",
              "publishTime": "2021-02-05T04:06:14.109Z",
              "orderingKey": "ordering-key"
            }
          },
          "datacontenttype": "application/json",
          "id": "3103425958877813",
          "source": "//pubsub.googleapis.com/projects/test-project/topics/my-topic",
          "specversion": "1.0",
          "time": "2021-02-05T04:06:14.109Z",
          "type": "google.cloud.pubsub.topic.v1.messagePublished"
        }
        """

    static let messagePublishedData = """
        {
          "message": {
            "attributes": {"image_id": "b2d7", "team_id": "a1c3"},
            "data": "eyJpbWFnZV9pZCI6ImIyZDcifQ==",
            "messageId": "2070443601311540",
            "publishTime": "2021-02-26T19:13:55.749Z"
          },
          "subscription": "projects/myproject/subscriptions/mysubscription"
        }
        """

    static let pushBody = """
        {
          "message": {
            "attributes": {"key": "value"},
            "data": "SGVsbG8gQ2xvdWQgUHViL1N1YiEgSGVyZSBpcyBteSBtZXNzYWdlIQ==",
            "messageId": "2070443601311540",
            "message_id": "2070443601311540",
            "publishTime": "2021-02-26T19:13:55.749Z",
            "publish_time": "2021-02-26T19:13:55.749Z"
          },
          "subscription": "projects/myproject/subscriptions/mysubscription",
          "deliveryAttempt": 5
        }
        """
}

/// Collects values from concurrent code for a test to inspect.
final class Recorder<Value: Sendable>: Sendable {
    private let values = Locked<[Value]>([])

    func append(_ value: Value) { values.withLock { $0.append(value) } }

    func withLock<Result>(_ body: ([Value]) -> Result) -> Result { values.withLock { body($0) } }
}

/// A CloudEvent function that records what it receives, and fails when told to.
struct RecordingFunction: CloudEventFunction {
    typealias EventData = PubSubMessagePublished
    let name = "recorder"
    let eventPath = "/events"
    let acceptedEventTypes: Set<String> = [PubSubMessagePublished.eventType]
    let received = Recorder<CloudEvent<PubSubMessagePublished>>()
    let failing: Bool

    init(failing: Bool = false) { self.failing = failing }

    func handle(_ event: CloudEvent<PubSubMessagePublished>, context: FunctionContext) async throws {
        received.append(event)
        if failing { throw CancellationError() }
    }
}

@Suite("CloudEvents over HTTP (wire format of Google's documented Pub/Sub payloads)")
struct CloudEventTests {
    /// Posts a request to a router serving `function` and returns the status and body.
    func deliver(
        to function: RecordingFunction, headers: HTTPFields, body: String
    ) async throws -> (status: HTTPResponse.Status, body: String) {
        let (router, _) = FunctionServer.buildRouter(
            functions: [CloudEventEndpoint(function)], configuration: ServerConfiguration(), readiness: {})
        return try await Application(router: router).test(.router) { client in
            try await client.execute(
                uri: "/events", method: .post, headers: headers, body: ByteBuffer(string: body)
            ) { response in (response.status, String(buffer: response.body)) }
        }
    }

    @Test("structured mode: every attribute and the message are decoded")
    func structuredMode() async throws {
        let function = RecordingFunction()
        let result = try await deliver(
            to: function, headers: [.contentType: "application/cloudevents+json; charset=utf-8"],
            body: GooglePubSubSamples.structuredEvent)
        #expect(result.status == .noContent)
        let event = try #require(function.received.withLock { $0.first })
        #expect(event.id == "3103425958877813")
        #expect(event.source == "//pubsub.googleapis.com/projects/test-project/topics/my-topic")
        #expect(event.type == "google.cloud.pubsub.topic.v1.messagePublished")
        #expect(event.specVersion == "1.0")
        #expect(event.dataContentType == "application/json")
        #expect(event.time == JSONCoding.parseTimestamp("2021-02-05T04:06:14.109Z"))
        #expect(event.data.subscription == "projects/test-project/subscriptions/my-subscription")
        #expect(String(decoding: event.data.message.data, as: UTF8.self) == "test message 3")
        #expect(event.data.message.attributes == ["attr1": "attr1-value"])
        #expect(event.data.message.messageID == "message-id")
        #expect(event.data.message.orderingKey == "ordering-key")
        #expect(event.data.message.publishTime == JSONCoding.parseTimestamp("2021-02-05T04:06:14.109Z"))
        #expect(event.data.deliveryAttempt == nil)
    }

    @Test("binary mode: attributes from ce-* headers, data from the body, extensions kept")
    func binaryMode() async throws {
        let function = RecordingFunction()
        let headers: HTTPFields = [
            .contentType: "application/json",
            HTTPField.Name("ce-id")!: "1234",
            HTTPField.Name("ce-source")!: "//pubsub.googleapis.com/projects/p/topics/image-uploaded",
            HTTPField.Name("ce-type")!: "google.cloud.pubsub.topic.v1.messagePublished",
            HTTPField.Name("ce-specversion")!: "1.0",
            HTTPField.Name("ce-time")!: "2021-02-26T19:13:55.749Z",
            HTTPField.Name("ce-subject")!: "images/b2d7",
            HTTPField.Name("ce-traceparent")!: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ]
        let result = try await deliver(to: function, headers: headers, body: GooglePubSubSamples.messagePublishedData)
        #expect(result.status == .noContent)
        let event = try #require(function.received.withLock { $0.first })
        #expect(event.id == "1234")
        #expect(event.subject == "images/b2d7")
        #expect(event.extensions["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        #expect(event.data.message.attributes["image_id"] == "b2d7")
        #expect(String(decoding: event.data.message.data, as: UTF8.self) == #"{"image_id":"b2d7"}"#)
    }

    @Test("a plain Pub/Sub push body becomes a messagePublished event with its delivery attempt")
    func pushBody() async throws {
        let function = RecordingFunction()
        let result = try await deliver(
            to: function, headers: [.contentType: "application/json"], body: GooglePubSubSamples.pushBody)
        #expect(result.status == .noContent)
        let event = try #require(function.received.withLock { $0.first })
        #expect(event.type == PubSubMessagePublished.eventType)
        #expect(event.id == "2070443601311540")
        #expect(event.source == "//pubsub.googleapis.com/projects/myproject/subscriptions/mysubscription")
        #expect(event.data.deliveryAttempt == 5)
        #expect(
            String(decoding: event.data.message.data, as: UTF8.self) == "Hello Cloud Pub/Sub! Here is my message!")
    }

    @Test("snake_case message_id and publish_time alone are accepted")
    func snakeCaseFields() throws {
        let body = """
            {"message": {"data": "", "message_id": "42", "publish_time": "2021-02-26T19:13:55Z"}, "subscription": "s"}
            """
        let decoded = try JSONCoding.makeDecoder().decode(PubSubMessagePublished.self, from: Data(body.utf8))
        #expect(decoded.message.messageID == "42")
        #expect(decoded.message.publishTime == JSONCoding.parseTimestamp("2021-02-26T19:13:55Z"))
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let name: String
        let headers: HTTPFields
        let body: String
        let reason: String
        var testDescription: String { name }
    }

    static let malformed: [Malformed] = [
        .init(
            name: "binary mode without ce-id",
            headers: [
                HTTPField.Name("ce-source")!: "s", HTTPField.Name("ce-type")!: PubSubMessagePublished.eventType,
                HTTPField.Name("ce-specversion")!: "1.0",
            ], body: GooglePubSubSamples.messagePublishedData, reason: "missing required attribute(s): ce-id"),
        .init(
            name: "structured mode that is not JSON", headers: [.contentType: "application/cloudevents+json"],
            body: "{not json", reason: "not a JSON object"),
        .init(
            name: "unsupported specversion",
            headers: [
                HTTPField.Name("ce-id")!: "1", HTTPField.Name("ce-source")!: "s",
                HTTPField.Name("ce-type")!: PubSubMessagePublished.eventType,
                HTTPField.Name("ce-specversion")!: "0.3",
            ], body: GooglePubSubSamples.messagePublishedData, reason: "unsupported CloudEvents specversion '0.3'"),
        .init(
            name: "unknown event type",
            headers: [
                HTTPField.Name("ce-id")!: "1", HTTPField.Name("ce-source")!: "s",
                HTTPField.Name("ce-type")!: "google.cloud.storage.object.v1.finalized",
                HTTPField.Name("ce-specversion")!: "1.0",
            ], body: "{}", reason: "unsupported event type 'google.cloud.storage.object.v1.finalized'"),
        .init(
            name: "neither a CloudEvent nor a push body", headers: [.contentType: "application/json"],
            body: #"{"hello": "world"}"#, reason: "neither a CloudEvent"),
        .init(
            name: "message data that is not base64", headers: [.contentType: "application/json"],
            body: #"{"message": {"data": "%%%", "messageId": "1", "publishTime": "2021-02-26T19:13:55Z"}}"#,
            reason: "message.data is not valid base64"),
        .init(
            name: "message without publishTime", headers: [.contentType: "application/json"],
            body: #"{"message": {"data": "", "messageId": "1"}}"#, reason: "publishTime"),
    ]

    @Test("malformed envelopes and unknown types answer 400 with the reason", arguments: malformed)
    func malformedEvents(_ sample: Malformed) async throws {
        let function = RecordingFunction()
        let result = try await deliver(to: function, headers: sample.headers, body: sample.body)
        #expect(result.status == .badRequest)
        let detail = try JSONDecoder().decode([String: String].self, from: Data(result.body.utf8))["detail"]
        #expect(detail?.contains(sample.reason) == true, "detail was \(detail ?? "nil")")
        #expect(function.received.withLock { $0.isEmpty })
    }

    @Test("a failing handler answers 500 so the event is delivered again")
    func failingHandler() async throws {
        let function = RecordingFunction(failing: true)
        let result = try await deliver(
            to: function, headers: [.contentType: "application/json"], body: GooglePubSubSamples.pushBody)
        #expect(result.status == .internalServerError)
        #expect(result.body == #"{"detail":"Internal server error"}"#)
        #expect(function.received.withLock { $0.count } == 1)
    }
}
