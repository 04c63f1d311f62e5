import Foundation
import ImageAPICore
import RuntimeSupport

// The domain's settings read from the process's configuration variables: the hosting layer reads
// the environment and hands the domain plain values.

extension APISettings {
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
        let email = EmailAddress.normalised(variables["BOOTSTRAP_ADMIN_EMAIL"] ?? "admin@image-api.local")
        guard EmailAddress.isValid(email) else {
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

extension ImageSettings {
    /// Reads the settings.
    /// - Parameters:
    ///   - variables: The environment.
    ///   - dataDirectory: `DATA_DIR`, under which blobs go by default.
    /// - Throws: ``ConfigurationError`` naming the first bad variable.
    public init(_ variables: EnvironmentVariables, dataDirectory: String) throws {
        let ranking = HybridRanking(
            k: try variables.integer("SEARCH_RRF_K", default: 60, in: 1...10_000),
            semanticWeight: try variables.number("SEARCH_SEMANTIC_WEIGHT", default: 1, in: 0...100),
            textWeight: try variables.number("SEARCH_TEXT_WEIGHT", default: 1, in: 0...100))
        guard ranking.semanticWeight + ranking.textWeight > 0 else {
            throw ConfigurationError(
                variable: "SEARCH_TEXT_WEIGHT", reason: "and SEARCH_SEMANTIC_WEIGHT cannot both be 0")
        }
        let provider = try variables.choice(
            "EMBEDDING_PROVIDER", default: "auto", allowed: EmbeddingProvider.allCases.map(\.rawValue))
        self.init(
            maxUploadBytes: try variables.integer("MAX_UPLOAD_BYTES", default: 20 * 1024 * 1024, in: 1...(1 << 31)),
            maxImagePixels: try variables.integer("MAX_IMAGE_PIXELS", default: 100_000_000, in: 1...1_000_000_000),
            blobDirectory: EmbeddedDataPaths(
                dataDirectory: dataDirectory, blobs: variables["BLOB_DIR"]
            ).blobs,
            embeddingProvider: EmbeddingProvider(rawValue: provider) ?? .automatic,
            clipModelDirectory: variables["CLIP_MODEL_DIR"] ?? Self.defaultCLIPModelDirectory,
            clipThreads: try variables.integer(
                "CLIP_THREADS", default: ProcessInfo.processInfo.activeProcessorCount, in: 1...256),
            thumbnailSize: try variables.integer("THUMBNAIL_SIZE", default: 256, in: 16...2048),
            maxProcessingAttempts: try variables.integer("PROCESSING_MAX_ATTEMPTS", default: 3, in: 1...20),
            maxConcurrentUploads: try variables.integer(
                "MAX_CONCURRENT_UPLOADS", default: Self.defaultConcurrentUploads, in: 1...1024),
            uploadQueueLimit: try variables.integer("UPLOAD_QUEUE_LIMIT", default: 16, in: 0...100_000),
            decodeMemoryMegabytes: try variables.integer("DECODE_MEMORY_MB", default: 512, in: 16...1_048_576),
            postponeLimitSeconds: try variables.integer(
                "PROCESSING_POSTPONE_LIMIT_SECONDS", default: 86_400, in: 1...(30 * 86_400)),
            hybridRanking: ranking,
            queryCacheSize: try variables.integer("QUERY_CACHE_SIZE", default: 10_000, in: 0...10_000_000))
    }
}
