import Foundation
import GoogleCloudAuth
import ImageAPICore
import RuntimeSupport

/// `EVENTS_BACKEND=pubsub`: processing events published to the Pub/Sub topic `PUBSUB_TOPIC`
/// (default `image-uploaded`) of `GOOGLE_CLOUD_PROJECT`.
///
/// With `PUBSUB_EMULATOR_HOST` set the publisher talks to that emulator without credentials (the
/// project defaults to `local-project`) and creates the topic when missing; otherwise it calls
/// `https://pubsub.googleapis.com` with Application Default Credentials.
public enum PubSubFactory: AdapterFactory {
    /// The scope the publisher's tokens ask for.
    public static let scope = "https://www.googleapis.com/auth/pubsub"

    /// The project, topic, emulator and credentials' variables.
    public static let variables: Set<String> = [
        "GOOGLE_CLOUD_PROJECT", "PUBSUB_TOPIC", "PUBSUB_DEAD_LETTER_TOPIC", "PUBSUB_EMULATOR_HOST",
        "GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST",
    ]

    /// Builds the publisher.
    /// - Parameter variables: The variables above.
    /// - Returns: The publisher; the outbox relay that drives it is the host's.
    /// - Throws: ``ConfigurationError`` when the project is missing (outside an emulator), a name is
    ///   malformed, or the key file named by `GOOGLE_APPLICATION_CREDENTIALS` cannot be used.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<PubSubPublisher> {
        let emulator = variables["PUBSUB_EMULATOR_HOST"]
        guard let project = variables["GOOGLE_CLOUD_PROJECT"] ?? (emulator == nil ? nil : "local-project") else {
            throw ConfigurationError(variable: "GOOGLE_CLOUD_PROJECT", reason: "must be set when EVENTS_BACKEND=pubsub")
        }
        let topic = variables["PUBSUB_TOPIC"] ?? ImageProcessingRequest.topic
        let deadLetterTopic = variables["PUBSUB_DEAD_LETTER_TOPIC"] ?? "\(topic)-dead-letter"
        for (name, value) in [
            ("GOOGLE_CLOUD_PROJECT", project), ("PUBSUB_TOPIC", topic), ("PUBSUB_DEAD_LETTER_TOPIC", deadLetterTopic),
        ] {
            guard value.range(of: "^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$", options: .regularExpression) != nil else {
                throw ConfigurationError(
                    variable: name,
                    reason:
                        "must be a Pub/Sub resource name: a letter, then 2 to 254 letters, digits or -._~%+ (got \"\(value)\")"
                )
            }
        }
        if let emulator {
            return BuiltAdapter(
                PubSubPublisher(
                    endpoint: emulator.contains("://") ? emulator : "http://\(emulator)", project: project,
                    topic: topic, createsTopic: true, deadLetterTopic: deadLetterTopic))
        }
        let tokens = try GoogleAccessTokens.configured(variables, scope: scope)
        return BuiltAdapter(
            PubSubPublisher(
                endpoint: "https://pubsub.googleapis.com", project: project, topic: topic,
                deadLetterTopic: deadLetterTopic
            ) {
                try await tokens.authorization()
            })
    }
}

extension PubSubFactory {
    /// What a host does with the Pub/Sub topic, without naming the adapter's types: publish to it,
    /// forward dead letters to its dead-letter topic, and, on the emulator, create the push
    /// subscription `<topic>-process-embedding` to an endpoint, with the dead-letter topic after
    /// the given attempts.
    /// - Parameter variables: The process's variables (those above).
    /// - Returns: The topic's publisher, the dead-letter topic's, and the subscription's maker.
    /// - Throws: ``ConfigurationError`` as ``make(scoped:)``.
    public static func events(
        from variables: EnvironmentVariables
    ) throws -> (
        publisher: any EventPublisher, deadLetterPublisher: any EventPublisher,
        subscribe: @Sendable (_ endpoint: String, _ maxDeliveryAttempts: Int) async throws -> Void
    ) {
        let publisher = try build(from: variables).adapter
        return (
            publisher, publisher.deadLetterPublisher,
            { endpoint, attempts in
                try await publisher.createPushSubscription(
                    named: "\(publisher.topic)-process-embedding", endpoint: endpoint,
                    deadLetterTopic: publisher.deadLetterTopic, maxDeliveryAttempts: attempts)
            }
        )
    }
}
