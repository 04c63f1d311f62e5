import Foundation
import FunctionsFramework
import Logging

/// Decides who may call what, by deployment environment.
///
/// - Management endpoints (teams, users, key creation) are public in development and need an
///   admin key in production.
/// - Team data (a user's keys, later images and search) always needs a key, and is scoped to the
///   key's team: another team's ids answer 404, exactly like missing ones.
public struct AccessPolicy: Sendable {
    /// The deployment environment.
    public let environment: DeploymentEnvironment
    /// The key service used to authenticate.
    public let keys: APIKeyService
    /// Slows down clients that keep presenting invalid keys.
    public let failures: FailedAuthenticationLimiter

    /// Creates the policy.
    /// - Parameters:
    ///   - environment: The deployment environment.
    ///   - keys: The key service.
    ///   - failures: The limit on failed authentications per client.
    public init(
        environment: DeploymentEnvironment, keys: APIKeyService,
        failures: FailedAuthenticationLimiter = FailedAuthenticationLimiter()
    ) {
        self.environment = environment
        self.keys = keys
        self.failures = failures
    }

    /// Authorises a management call.
    /// - Parameter call: The request.
    /// - Returns: `nil` in development (public); the admin principal in production.
    /// - Throws: 401 without a valid key, 403 for a non-admin key (production only).
    public func authorizeManagement(_ call: FunctionRequest) async throws -> Principal? {
        guard environment == .production else { return nil }
        return try await requireAdmin(call)
    }

    /// Requires a valid key. A client that has presented too many invalid keys is answered 429
    /// with `Retry-After` until its allowance refills; a request without any key does not count.
    /// - Parameter call: The request.
    /// - Returns: The principal.
    /// - Throws: 401 without a valid key, 429 after too many failures.
    public func authenticate(_ call: FunctionRequest) async throws -> Principal {
        let client = call.clientAddress
        let presentsKey = (try? APIKeyService.presentedKey(in: call.headers)) != nil
        if presentsKey, let wait = failures.retryAfter(client: client) {
            throw FunctionError(
                .tooManyRequests, "Too many failed authentications; try again in \(wait) s",
                headers: [.retryAfter: String(wait)])
        }
        do {
            return try await keys.authenticate(call.headers)
        } catch let error as FunctionError where error.status == .unauthorized && presentsKey {
            failures.recordFailure(client: client)
            call.logger.notice("Failed authentication", metadata: ["client": .string(client)])
            throw error
        }
    }

    /// Requires a valid admin key.
    /// - Parameter call: The request.
    /// - Returns: The admin principal.
    /// - Throws: 401 without a valid key, 403 when its owner is not an admin.
    public func requireAdmin(_ call: FunctionRequest) async throws -> Principal {
        let principal = try await authenticate(call)
        guard principal.isAdmin else { throw FunctionError.forbidden("Admin privileges required") }
        return principal
    }
}

/// What every management function needs: the store, the settings, keys, access rules and time.
public struct APIServices: Sendable {
    /// The metadata store.
    public let store: any MetadataStore
    /// The application settings.
    public let settings: APISettings
    /// The time source.
    public let clock: any TimeSource
    /// Issues and checks API keys.
    public let keys: APIKeyService
    /// Who may call what.
    public let access: AccessPolicy

    /// Wires the services together.
    /// - Parameters:
    ///   - store: The metadata store.
    ///   - settings: The application settings.
    ///   - clock: The time source.
    public init(store: any MetadataStore, settings: APISettings, clock: any TimeSource = SystemTimeSource()) {
        self.store = store
        self.settings = settings
        self.clock = clock
        self.keys = APIKeyService(
            store: store, secret: settings.apiKeySecret, expiryDays: settings.apiKeyExpiryDays, clock: clock)
        self.access = AccessPolicy(
            environment: settings.environment, keys: keys,
            failures: FailedAuthenticationLimiter(
                capacity: settings.authFailureLimit, window: Double(settings.authFailureWindowSeconds)))
    }
}

extension Principal {
    /// Logs an audit line when an administrator acts on the management data (team, users, keys)
    /// of a team other than their own: actor key, user and team, the action and its targets.
    /// Administrators manage every team; these lines are how that power is accounted for.
    /// - Parameters:
    ///   - action: What was done, in `snake_case` (`revoke_api_key`, `update_user`, ...).
    ///   - team: The team acted on.
    ///   - targets: The ids acted on, by name (`user_id`, `key_id`, ...).
    ///   - logger: The request's logger.
    public func audit(_ action: String, team: UUID, targets: [String: UUID] = [:], logger: Logger) {
        guard team != teamID else { return }
        var metadata: Logger.Metadata = [
            "audit": "cross_team_management", "action": .string(action),
            "actor_key_id": .string(key.id.lowercasedString), "actor_user_id": .string(user.id.lowercasedString),
            "actor_team_id": .string(teamID.lowercasedString), "target_team_id": .string(team.lowercasedString),
        ]
        for (name, id) in targets { metadata[name] = .string(id.lowercasedString) }
        logger.notice("Administrator acted on another team", metadata: metadata)
    }
}
