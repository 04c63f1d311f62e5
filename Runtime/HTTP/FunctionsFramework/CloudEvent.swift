import Foundation
import HTTPTypes
import Hummingbird

/// A CloudEvents 1.0 event with typed data.
///
/// See <https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md> for the attributes
/// and <https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md>
/// for the binary (`ce-*` headers) and structured (`application/cloudevents+json`) HTTP modes.
public struct CloudEvent<EventData: Sendable>: Sendable {
    /// `id`: unique per `source`.
    public var id: String
    /// `source`: the context the event happened in, such as `//pubsub.googleapis.com/projects/p/topics/t`.
    public var source: String
    /// `type`: what happened, such as `google.cloud.pubsub.topic.v1.messagePublished`.
    public var type: String
    /// `specversion`: always `1.0` here.
    public var specVersion: String
    /// `subject`, when given.
    public var subject: String?
    /// `time`, when given.
    public var time: Date?
    /// `datacontenttype`, when given.
    public var dataContentType: String?
    /// `dataschema`, when given.
    public var dataSchema: String?
    /// Extension attributes (every other attribute), by lower-case name.
    public var extensions: [String: String]
    /// The event's data.
    public var data: EventData

    /// Creates an event.
    /// - Parameters:
    ///   - id: The event id.
    ///   - source: The event source.
    ///   - type: The event type.
    ///   - specVersion: The CloudEvents version.
    ///   - subject: The subject.
    ///   - time: When it happened.
    ///   - dataContentType: The media type of the data.
    ///   - dataSchema: The schema of the data.
    ///   - extensions: Extension attributes.
    ///   - data: The data.
    public init(
        id: String, source: String, type: String, specVersion: String = "1.0", subject: String? = nil,
        time: Date? = nil, dataContentType: String? = nil, dataSchema: String? = nil,
        extensions: [String: String] = [:], data: EventData
    ) {
        self.id = id
        self.source = source
        self.type = type
        self.specVersion = specVersion
        self.subject = subject
        self.time = time
        self.dataContentType = dataContentType
        self.dataSchema = dataSchema
        self.extensions = extensions
        self.data = data
    }

    /// The same event with other data.
    /// - Parameter data: The new data.
    /// - Returns: The event carrying `data`.
    public func withData<Other: Sendable>(_ data: Other) -> CloudEvent<Other> {
        CloudEvent<Other>(
            id: id, source: source, type: type, specVersion: specVersion, subject: subject, time: time,
            dataContentType: dataContentType, dataSchema: dataSchema, extensions: extensions, data: data)
    }
}

/// Why an HTTP request could not be read as a CloudEvent; answered with 400 and this reason.
public struct CloudEventDecodingError: Error, Equatable, CustomStringConvertible {
    /// The reason, for the client.
    public let reason: String

    /// Creates an error.
    /// - Parameter reason: The reason.
    public init(_ reason: String) {
        self.reason = reason
    }

    /// The reason.
    public var description: String { reason }
}

/// Reads CloudEvents from HTTP requests in either mode, and plain Pub/Sub push bodies.
public enum CloudEventHTTPDecoder {
    /// The media type of a structured-mode event.
    public static let structuredContentType = "application/cloudevents+json"

    private static let requiredAttributes = ["id", "source", "type", "specversion"]
    private static let knownAttributes: Set<String> = [
        "id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema", "data",
        "data_base64",
    ]

    /// Decodes an event whose data is left as raw bytes.
    ///
    /// - Binary mode: `ce-id`, `ce-source`, `ce-type`, `ce-specversion` headers (and any other
    ///   `ce-*` attributes); the body is the data and `Content-Type` its `datacontenttype`.
    /// - Structured mode: `Content-Type: application/cloudevents+json`; the body holds every
    ///   attribute, the data as JSON under `data` or base64 under `data_base64`.
    /// - A Pub/Sub push body (`{"message": {...}, "subscription": "..."}`) with no `ce-*` headers
    ///   becomes a `google.cloud.pubsub.topic.v1.messagePublished` event whose data is that body,
    ///   which is exactly the data Eventarc would have sent.
    /// - Parameters:
    ///   - headers: The request headers.
    ///   - body: The request body.
    /// - Returns: The event with its data as bytes.
    /// - Throws: ``CloudEventDecodingError`` saying what is missing or malformed.
    public static func decode(headers: HTTPFields, body: Data) throws -> CloudEvent<Data> {
        let contentType = headers[.contentType]?.lowercased() ?? ""
        if contentType.hasPrefix(structuredContentType) {
            return try decodeStructured(body)
        }
        if headers[HTTPField.Name("ce-specversion")!] != nil || headers[HTTPField.Name("ce-id")!] != nil
            || headers[HTTPField.Name("ce-type")!] != nil
        {
            return try decodeBinary(headers: headers, body: body)
        }
        return try decodePubSubPush(body)
    }

    private static func decodeBinary(headers: HTTPFields, body: Data) throws -> CloudEvent<Data> {
        var attributes: [String: String] = [:]
        for field in headers where field.name.canonicalName.hasPrefix("ce-") {
            let name = String(field.name.canonicalName.dropFirst(3))
            attributes[name] = field.value.removingPercentEncoding ?? field.value
        }
        attributes["datacontenttype"] = headers[.contentType]
        return try makeEvent(attributes: attributes, data: body, mode: "binary-mode", prefix: "ce-")
    }

    private static func decodeStructured(_ body: Data) throws -> CloudEvent<Data> {
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw CloudEventDecodingError("structured-mode CloudEvent body is not a JSON object")
        }
        var attributes: [String: String] = [:]
        for (name, value) in object where name != "data" && name != "data_base64" {
            switch value {
            case let text as String: attributes[name] = text
            case let number as NSNumber: attributes[name] = number.stringValue
            default:
                throw CloudEventDecodingError("CloudEvent attribute '\(name)' must be a string")
            }
        }
        let data: Data
        if let base64 = object["data_base64"] {
            guard let text = base64 as? String, let decoded = Data(base64Encoded: text) else {
                throw CloudEventDecodingError("CloudEvent 'data_base64' is not valid base64")
            }
            data = decoded
        } else if let value = object["data"] {
            if let text = value as? String, !(attributes["datacontenttype"] ?? "application/json").contains("json") {
                data = Data(text.utf8)
            } else {
                data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
            }
        } else {
            data = Data()
        }
        return try makeEvent(attributes: attributes, data: data, mode: "structured-mode", prefix: "")
    }

    private static func decodePubSubPush(_ body: Data) throws -> CloudEvent<Data> {
        guard let push = try? JSONCoding.makeDecoder().decode(PubSubPushEnvelope.self, from: body) else {
            throw CloudEventDecodingError(
                "request is neither a CloudEvent (no ce-* headers, Content-Type is not "
                    + "\(structuredContentType)) nor a Pub/Sub push body with a 'message' object")
        }
        guard let messageID = push.message.messageID else {
            throw CloudEventDecodingError("Pub/Sub push message has no 'messageId'")
        }
        let source = push.subscription.map { "//pubsub.googleapis.com/\($0)" } ?? "//pubsub.googleapis.com/"
        return CloudEvent(
            id: messageID, source: source, type: PubSubMessagePublished.eventType,
            time: push.message.publishTime.flatMap(JSONCoding.parseTimestamp), dataContentType: "application/json",
            data: body)
    }

    private static func makeEvent(
        attributes: [String: String], data: Data, mode: String, prefix: String
    ) throws -> CloudEvent<Data> {
        let missing = requiredAttributes.filter { (attributes[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            let names = missing.map { prefix + $0 }.joined(separator: ", ")
            throw CloudEventDecodingError("\(mode) CloudEvent is missing required attribute(s): \(names)")
        }
        guard attributes["specversion"] == "1.0" else {
            throw CloudEventDecodingError(
                "unsupported CloudEvents specversion '\(attributes["specversion"] ?? "")' (expected 1.0)")
        }
        var time: Date?
        if let text = attributes["time"] {
            guard let parsed = JSONCoding.parseTimestamp(text) else {
                throw CloudEventDecodingError("CloudEvent attribute '\(prefix)time' is not an RFC 3339 timestamp")
            }
            time = parsed
        }
        return CloudEvent(
            id: attributes["id"]!, source: attributes["source"]!, type: attributes["type"]!,
            specVersion: "1.0", subject: attributes["subject"], time: time,
            dataContentType: attributes["datacontenttype"], dataSchema: attributes["dataschema"],
            extensions: attributes.filter { !knownAttributes.contains($0.key) }, data: data)
    }
}

/// The outer shape of a Pub/Sub push request, used only to recognise one.
private struct PubSubPushEnvelope: Decodable {
    struct Message: Decodable {
        let messageID: String?
        let publishTime: String?

        enum CodingKeys: String, CodingKey {
            case messageId, message_id, publishTime, publish_time
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            messageID =
                try container.decodeIfPresent(String.self, forKey: .messageId)
                ?? container.decodeIfPresent(String.self, forKey: .message_id)
            publishTime =
                try container.decodeIfPresent(String.self, forKey: .publishTime)
                ?? container.decodeIfPresent(String.self, forKey: .publish_time)
        }
    }

    let message: Message
    let subscription: String?
}
