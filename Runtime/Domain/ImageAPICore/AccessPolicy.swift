import Foundation
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
    /// - Parameter caller: Who is calling.
    /// - Returns: `nil` in development (public); the admin principal in production.
    /// - Throws: ``DomainError`` unauthenticated without a valid key, forbidden for a non-admin
    ///   key (production only).
    public func authorizeManagement(_ caller: Caller) async throws -> Principal? {
        guard environment == .production else { return nil }
        return try await requireAdmin(caller)
    }

    /// Requires a valid key. A client that has presented too many invalid keys is answered 429
    /// for every further invalid key until its allowance refills; a valid key is never refused by
    /// this limit, and a caller presenting no key does not count.
    /// - Parameter caller: Who is calling.
    /// - Returns: The principal.
    /// - Throws: ``DomainError`` unauthenticated without a valid key, rate limited for an invalid
    ///   key after too many failures.
    public func authenticate(_ caller: Caller) async throws -> Principal {
        do {
            return try await keys.authenticate(presented: caller.presentedKey)
        } catch let error as DomainError where error.kind == .unauthenticated && caller.presentedKey != nil {
            let wait = failures.retryAfter(client: caller.client)
            failures.recordFailure(client: caller.client)
            guard let wait else {
                caller.logger.notice("Failed authentication", metadata: ["client": .string(caller.client)])
                throw error
            }
            throw DomainError(
                .rateLimited(retryAfterSeconds: wait), "Too many failed authentications; try again in \(wait) s")
        }
    }

    /// Requires a valid admin key.
    /// - Parameter caller: Who is calling.
    /// - Returns: The admin principal.
    /// - Throws: ``DomainError`` unauthenticated without a valid key, forbidden when its owner is
    ///   not an admin.
    public func requireAdmin(_ caller: Caller) async throws -> Principal {
        let principal = try await authenticate(caller)
        guard principal.isAdmin else { throw DomainError.forbidden("Admin privileges required") }
        return principal
    }
}

/// Who is calling, as far as access rules care: the key presented, where from, and the log of
/// the call. The HTTP layer makes one from each request.
public struct Caller: Sendable {
    /// The key text presented, or `nil` when none.
    public let presentedKey: String?
    /// The client's address, which failed authentications are counted by.
    public let client: String
    /// The call's logger.
    public let logger: Logger

    /// Describes a caller.
    /// - Parameters:
    ///   - presentedKey: The key text presented, or `nil`.
    ///   - client: The client's address.
    ///   - logger: The call's logger.
    public init(presentedKey: String?, client: String, logger: Logger) {
        self.presentedKey = presentedKey
        self.client = client
        self.logger = logger
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
    /// Deletes teams by the rules.
    public let teams: TeamService
    /// Creates, changes and deletes users by the rules.
    public let users: UserService
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
        self.teams = TeamService(store: store)
        self.users = UserService(store: store)
        self.keys = APIKeyService(
            store: store, secret: settings.apiKeySecret, previousSecret: settings.previousAPIKeySecret,
            expiryDays: settings.apiKeyExpiryDays, clock: clock)
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
    ///   - reachesTeamData: Whether the action gives the administrator a way into the team's
    ///     images and searches (a key minted for one of its users): said in the line as
    ///     `reaches: team_data`, so that such keys can be found and followed.
    ///   - logger: The request's logger.
    public func audit(
        _ action: String, team: TeamID, targets: [String: any TypedIdentifier] = [:], reachesTeamData: Bool = false,
        logger: Logger
    ) {
        guard team != teamID else { return }
        var metadata: Logger.Metadata = [
            "audit": "cross_team_management", "action": .string(action),
            "actor_key_id": .string(key.id.lowercasedString), "actor_user_id": .string(user.id.lowercasedString),
            "actor_team_id": .string(teamID.lowercasedString), "target_team_id": .string(team.lowercasedString),
        ]
        for (name, id) in targets { metadata[name] = .string(id.lowercasedString) }
        if reachesTeamData {
            metadata["reaches"] = "team_data"
            logger.notice(
                "Administrator acted on another team: the new key reads and changes that team's images",
                metadata: metadata)
        } else {
            logger.notice("Administrator acted on another team", metadata: metadata)
        }
    }
}
