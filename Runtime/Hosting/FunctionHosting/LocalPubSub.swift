import Foundation
import RuntimeSupport

/// Settings of the local Pub/Sub that delivers the outbox.
public struct LocalPubSubSettings: Sendable {
    /// `PUBSUB_PUSH_ENDPOINT`: where messages are pushed; several URLs, separated by commas,
    /// take the deliveries in turn (replicas of ProcessEmbedding). The emulator pushes to its own
    /// ProcessEmbedding route when this is unset; a standalone function delivers nothing then.
    public var pushEndpoints: [String]
    /// `PUBSUB_MAX_DELIVERY_ATTEMPTS`: deliveries before a message is dead-lettered (default 3).
    public var maxDeliveryAttempts: Int
    /// `PUBSUB_RETRY_BASE_MS`: the first retry's delay; each next one doubles (default 1000).
    public var retryBaseMilliseconds: Int
    /// `PUBSUB_ACK_DEADLINE_SECONDS`: how long a delivery may take before it counts as failed and
    /// the message is offered again (default 120).
    public var ackDeadlineSeconds: Int

    /// Creates settings.
    public init(
        pushEndpoints: [String] = [], maxDeliveryAttempts: Int = 3, retryBaseMilliseconds: Int = 1000,
        ackDeadlineSeconds: Int = 120
    ) {
        self.pushEndpoints = pushEndpoints
        self.maxDeliveryAttempts = maxDeliveryAttempts
        self.retryBaseMilliseconds = retryBaseMilliseconds
        self.ackDeadlineSeconds = ackDeadlineSeconds
    }

    /// Reads the settings from the environment.
    public init(_ variables: EnvironmentVariables) throws {
        let endpoints = try variables.list("PUBSUB_PUSH_ENDPOINT")
        if endpoints.contains(where: { URL(string: $0)?.scheme?.hasPrefix("http") != true }) {
            throw ConfigurationError(
                variable: "PUBSUB_PUSH_ENDPOINT", reason: "must be an http(s) URL, or several separated by commas")
        }
        self.init(
            pushEndpoints: endpoints,
            maxDeliveryAttempts: try variables.integer("PUBSUB_MAX_DELIVERY_ATTEMPTS", default: 3, in: 1...100),
            retryBaseMilliseconds: try variables.integer("PUBSUB_RETRY_BASE_MS", default: 1000, in: 1...3_600_000),
            ackDeadlineSeconds: try variables.integer("PUBSUB_ACK_DEADLINE_SECONDS", default: 120, in: 1...3600))
    }
}

/// Where a process's local Pub/Sub pushes when `PUBSUB_PUSH_ENDPOINT` is not set, and the token
/// it presents there: given by a host that serves the event route itself (the emulator, whose
/// target makes it); the function binaries have none.
public struct LocalDeliveryTarget: Sendable {
    /// The token presented on each push (checked by the process's own event route), if any.
    public let token: String?
    /// The push URL, once the server's bound address is known.
    public let endpoint: @Sendable (_ host: String, _ port: Int) -> URL?

    /// Creates a target.
    /// - Parameters:
    ///   - token: The token presented on each push.
    ///   - endpoint: The push URL for the bound address.
    public init(token: String?, endpoint: @escaping @Sendable (_ host: String, _ port: Int) -> URL?) {
        self.token = token
        self.endpoint = endpoint
    }
}
