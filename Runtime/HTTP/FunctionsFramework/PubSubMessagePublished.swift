import Foundation

/// The data of a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent, which is also the
/// body of a Pub/Sub push request.
///
/// Shapes documented at <https://cloud.google.com/eventarc/docs/cloudevents> (the
/// `MessagePublishedData` type of google-cloudevents) and
/// <https://cloud.google.com/pubsub/docs/push#receive_push>. Push bodies carry both camelCase
/// and snake_case copies of `messageId` and `publishTime`; either is accepted.
public struct PubSubMessagePublished: Decodable, Sendable, Equatable {
    /// The CloudEvent type this data belongs to.
    public static let eventType = "google.cloud.pubsub.topic.v1.messagePublished"

    /// A published Pub/Sub message.
    public struct Message: Decodable, Sendable, Equatable {
        /// The payload, base64-decoded.
        public let data: Data
        /// The message attributes.
        public let attributes: [String: String]
        /// The id the server assigned on publish.
        public let messageID: String
        /// When the server received the publish call.
        public let publishTime: Date
        /// The ordering key, when the publisher set one.
        public let orderingKey: String?

        enum CodingKeys: String, CodingKey {
            case data, attributes, orderingKey
            case messageId, message_id, publishTime, publish_time
        }

        /// Creates a message.
        /// - Parameters:
        ///   - data: The payload.
        ///   - attributes: The attributes.
        ///   - messageID: The server-assigned id.
        ///   - publishTime: The publish time.
        ///   - orderingKey: The ordering key.
        public init(
            data: Data, attributes: [String: String] = [:], messageID: String, publishTime: Date,
            orderingKey: String? = nil
        ) {
            self.data = data
            self.attributes = attributes
            self.messageID = messageID
            self.publishTime = publishTime
            self.orderingKey = orderingKey
        }

        /// Decodes a message, base64-decoding `data`.
        /// - Parameter decoder: The decoder.
        /// - Throws: `DecodingError` when `data` is not base64, or the id or time is missing.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let text = try container.decodeIfPresent(String.self, forKey: .data) {
                guard let bytes = Data(base64Encoded: text) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .data, in: container, debugDescription: "message.data is not valid base64")
                }
                data = bytes
            } else {
                data = Data()
            }
            attributes = try container.decodeIfPresent([String: String].self, forKey: .attributes) ?? [:]
            guard
                let id = try container.decodeIfPresent(String.self, forKey: .messageId)
                    ?? container.decodeIfPresent(String.self, forKey: .message_id)
            else {
                throw DecodingError.keyNotFound(
                    CodingKeys.messageId, .init(codingPath: container.codingPath, debugDescription: "messageId"))
            }
            messageID = id
            guard
                let time = try container.decodeIfPresent(Date.self, forKey: .publishTime)
                    ?? container.decodeIfPresent(Date.self, forKey: .publish_time)
            else {
                throw DecodingError.keyNotFound(
                    CodingKeys.publishTime, .init(codingPath: container.codingPath, debugDescription: "publishTime"))
            }
            publishTime = time
            orderingKey = try container.decodeIfPresent(String.self, forKey: .orderingKey)
        }
    }

    /// The message.
    public let message: Message
    /// The subscription that delivered it: `projects/{project}/subscriptions/{subscription}`.
    public let subscription: String?
    /// How many times delivery was attempted, when the subscription has a dead-letter policy.
    public let deliveryAttempt: Int?

    /// Creates the data.
    /// - Parameters:
    ///   - message: The message.
    ///   - subscription: The subscription.
    ///   - deliveryAttempt: The delivery attempt.
    public init(message: Message, subscription: String?, deliveryAttempt: Int?) {
        self.message = message
        self.subscription = subscription
        self.deliveryAttempt = deliveryAttempt
    }
}
