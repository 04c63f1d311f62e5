import FunctionsFramework

/// `POST /internal/outbox/relay`: delivers the outbox's due messages now, for a scheduler to call.
///
/// On Cloud Run an instance's CPU is throttled between requests, so the relay that runs beside the
/// server cannot be relied on to publish what an upload could not (Pub/Sub was unreachable, the
/// instance stopped first); Cloud Scheduler calls this endpoint every minute instead. It is
/// authenticated as event deliveries are (Google OIDC tokens of `PUBSUB_PUSH_SERVICE_ACCOUNT` for
/// `PUBSUB_PUSH_AUDIENCE`, or `PUBSUB_PUSH_TOKEN`), and served by every function whose events go
/// to Pub/Sub (`EVENTS_BACKEND=pubsub`).
public struct OutboxRelayEndpoint: HTTPFunction, EventRoute {
    /// The route.
    public static let path = "/internal/outbox/relay"
    /// What one call did.
    public struct Report: Codable, Sendable, Equatable {
        /// Deliveries attempted (published, or failed and rescheduled).
        public var attempted: Int
    }

    /// The route's name in logs.
    public let name = "outbox-relay"
    /// Who may call it; `nil` accepts any caller (development).
    public let authenticator: (any EventAuthenticator)?
    private let relay: OutboxRelay
    private let budget: Duration

    /// Creates the endpoint.
    /// - Parameters:
    ///   - relay: The relay whose due messages a call delivers.
    ///   - authenticator: Who may call it.
    ///   - budget: How long one call keeps delivering while messages are due.
    public init(relay: OutboxRelay, authenticator: (any EventAuthenticator)?, budget: Duration = .seconds(50)) {
        self.relay = relay
        self.authenticator = authenticator
        self.budget = budget
    }

    /// Registers `POST /internal/outbox/relay`.
    /// - Parameter routes: The route table.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let relay = self.relay
        let authenticator = self.authenticator
        let budget = self.budget
        routes.on(.post, Self.path) { call -> Report in
            if let authenticator { try await authenticator.authenticate(EventCaller(call)) }
            let deadline = ContinuousClock.now + budget
            var attempted = 0
            while ContinuousClock.now < deadline {
                let delivered = try await relay.deliverDueMessages()
                guard delivered > 0 else { break }
                attempted += delivered
            }
            call.context.logger.info("Outbox relayed on request", metadata: ["attempted": "\(attempted)"])
            return Report(attempted: attempted)
        }
    }
}
