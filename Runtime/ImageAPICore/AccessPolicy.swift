import Foundation
import FunctionsFramework

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
