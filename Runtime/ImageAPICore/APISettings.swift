import Foundation
import RuntimeSupport

/// Whether management endpoints are open (development) or need an admin key (production).
public enum DeploymentEnvironment: String, Sendable {
    /// Team, user and key-creation endpoints are public, as in the service this replaces.
    case development
    /// Every management endpoint needs an admin key; `API_KEY_SECRET` must be set.
    case production
}

/// The application settings shared by every function, read from configuration variables.
public struct APISettings: Sendable {
    /// The `API_KEY_SECRET` used when none is configured; refused in production.
    public static let developmentKeySecret = "development-only-api-key-secret-change-me"

    /// `ENVIRONMENT`: `development` (default) or `production`.
    public var environment: DeploymentEnvironment
    /// `API_KEY_SECRET`: the HMAC key that protects stored key hashes.
    public var apiKeySecret: String
    /// `API_KEY_PREVIOUS_SECRET`: the key secret before a rotation; keys hashed with it still
    /// authenticate while it is set (new keys are hashed with ``apiKeySecret``).
    public var previousAPIKeySecret: String?
    /// `API_KEY_EXPIRY_DAYS`: how long a new key works (default 365).
    public var apiKeyExpiryDays: Int
    /// `DATA_DIR`: where embedded data lives (default `./data`).
    public var dataDirectory: String
    /// `DATABASE_PATH`: the SQLite file (default `$DATA_DIR/imagedb.sqlite`).
    public var databasePath: String
    /// `BOOTSTRAP_ADMIN_KEY`: an admin key to create at startup when it does not exist yet.
    public var bootstrapAdminKey: String?
    /// `BOOTSTRAP_ADMIN_EMAIL`: the e-mail of the admin user that key belongs to.
    public var bootstrapAdminEmail: String
    /// `AUTH_FAILURE_LIMIT`: failed authentications a client may make in a row (default 20).
    public var authFailureLimit: Int
    /// `AUTH_FAILURE_WINDOW_SECONDS`: the time in which that allowance refills (default 60).
    public var authFailureWindowSeconds: Int

    /// Creates settings from values.
    public init(
        environment: DeploymentEnvironment = .development, apiKeySecret: String = developmentKeySecret,
        previousAPIKeySecret: String? = nil, apiKeyExpiryDays: Int = 365, dataDirectory: String = "./data",
        databasePath: String? = nil,
        bootstrapAdminKey: String? = nil, bootstrapAdminEmail: String = "admin@image-api.local",
        authFailureLimit: Int = 20, authFailureWindowSeconds: Int = 60
    ) {
        self.authFailureLimit = authFailureLimit
        self.authFailureWindowSeconds = authFailureWindowSeconds
        self.environment = environment
        self.apiKeySecret = apiKeySecret
        self.previousAPIKeySecret = previousAPIKeySecret
        self.apiKeyExpiryDays = apiKeyExpiryDays
        self.dataDirectory = dataDirectory
        self.databasePath = EmbeddedDataPaths(dataDirectory: dataDirectory, database: databasePath).database
        self.bootstrapAdminKey = bootstrapAdminKey
        self.bootstrapAdminEmail = bootstrapAdminEmail
    }

    /// Reads and validates the settings.
    /// - Parameter variables: The process's configuration variables.
    /// - Throws: ``ConfigurationError`` naming the first invalid variable; in production a missing,
    ///   default or short `API_KEY_SECRET` is refused.
    public init(_ variables: EnvironmentVariables) throws {
        let environmentName = try variables.choice(
            "ENVIRONMENT", default: "development", allowed: ["development", "production"])
        let environment = DeploymentEnvironment(rawValue: environmentName) ?? .development
        let secret = variables["API_KEY_SECRET"]
        if environment == .production {
            guard let secret, secret != Self.developmentKeySecret, secret.count >= 32 else {
                throw ConfigurationError(
                    variable: "API_KEY_SECRET",
                    reason: "must be set to a random value of at least 32 characters when ENVIRONMENT=production")
            }
        }
        let previousSecret = variables["API_KEY_PREVIOUS_SECRET"]
        if let previousSecret, previousSecret.count < 32 || previousSecret == secret {
            throw ConfigurationError(
                variable: "API_KEY_PREVIOUS_SECRET",
                reason: "must be the API_KEY_SECRET used before the current one (at least 32 characters)")
        }
        let bootstrapKey = variables["BOOTSTRAP_ADMIN_KEY"]
        if let bootstrapKey, APIKeyText(parsing: bootstrapKey) == nil {
            throw ConfigurationError(
                variable: "BOOTSTRAP_ADMIN_KEY", reason: "must be a key in the form \(APIKeyText.formatDescription)")
        }
        let email = (variables["BOOTSTRAP_ADMIN_EMAIL"] ?? "admin@image-api.local").lowercased()
        guard EmailAddress.isPlausible(email) else {
            throw ConfigurationError(variable: "BOOTSTRAP_ADMIN_EMAIL", reason: "must be an e-mail address")
        }
        self.init(
            environment: environment,
            apiKeySecret: secret ?? Self.developmentKeySecret,
            previousAPIKeySecret: previousSecret,
            apiKeyExpiryDays: try variables.integer("API_KEY_EXPIRY_DAYS", default: 365, in: 1...3650),
            dataDirectory: EmbeddedDataPaths(variables).dataDirectory,
            databasePath: EmbeddedDataPaths(variables).database,
            bootstrapAdminKey: bootstrapKey,
            bootstrapAdminEmail: email,
            authFailureLimit: try variables.integer("AUTH_FAILURE_LIMIT", default: 20, in: 1...1_000_000),
            authFailureWindowSeconds: try variables.integer("AUTH_FAILURE_WINDOW_SECONDS", default: 60, in: 1...86_400))
    }
}
