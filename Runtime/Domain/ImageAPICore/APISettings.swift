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
}
