import Foundation
import FunctionsFramework
import ImageAPICore
import Logging
import SQLiteStorage

/// Everything a function process reads from its configuration.
public struct HostConfiguration: Sendable {
    /// The server settings (port, logging, CORS, limits).
    public let server: ServerConfiguration
    /// The application settings (environment, keys, storage).
    public let settings: APISettings

    /// Reads and validates every configuration variable.
    /// - Parameter variables: The process's configuration variables.
    /// - Throws: ``ConfigurationError`` naming the first invalid variable.
    public init(_ variables: EnvironmentVariables) throws {
        self.server = try ServerConfiguration(variables)
        self.settings = try APISettings(variables)
    }

    /// Reads the configuration of this process, or prints the one-line reason and exits with
    /// status 78 (EX_CONFIG).
    /// - Returns: The configuration.
    public static func loadOrExit() -> HostConfiguration {
        do {
            return try HostConfiguration(EnvironmentVariables())
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(78)
        }
    }
}

/// Turns configuration into adapters and serves functions with them: the whole of a
/// function's `main`, so that each executable only says which functions it serves.
public enum FunctionHost {
    /// Opens the metadata store the settings name (the embedded SQLite file).
    /// - Parameter settings: The application settings.
    /// - Returns: The store, migrated.
    /// - Throws: When the store cannot be opened.
    public static func openStore(_ settings: APISettings) throws -> any MetadataStore {
        try SQLiteMetadataStore(path: settings.databasePath)
    }

    /// Opens the store, wires the services and registers `BOOTSTRAP_ADMIN_KEY` when set.
    /// - Parameters:
    ///   - settings: The application settings.
    ///   - logger: Where to report what was done.
    /// - Returns: The services.
    /// - Throws: When the store cannot be opened or the bootstrap key conflicts.
    public static func makeServices(_ settings: APISettings, logger: Logger) async throws -> APIServices {
        let services = APIServices(store: try openStore(settings), settings: settings)
        if let text = settings.bootstrapAdminKey, let key = APIKeyText(parsing: text) {
            let created = try await AdministratorBootstrap(services: services)
                .ensureKey(key, email: settings.bootstrapAdminEmail)
            if created {
                logger.notice(
                    "Registered BOOTSTRAP_ADMIN_KEY", metadata: ["email": .string(settings.bootstrapAdminEmail)])
            }
        }
        return services
    }

    /// Logs the management mode: a warning in development, where management endpoints are public.
    /// - Parameters:
    ///   - settings: The application settings.
    ///   - logger: The logger.
    public static func logManagementMode(_ settings: APISettings, logger: Logger) {
        switch settings.environment {
        case .development:
            logger.warning(
                """
                ENVIRONMENT=development: team, user and API-key creation endpoints are public. \
                Set ENVIRONMENT=production to require an admin key.
                """)
        case .production:
            logger.info("ENVIRONMENT=production: management endpoints require an admin API key")
        }
    }

    /// Runs functions until SIGTERM: reads configuration (exiting on an invalid variable), sets up
    /// Cloud Logging, opens storage and serves every function on `$PORT`.
    /// - Parameters:
    ///   - configuration: The configuration; read from the environment when `nil`.
    ///   - onListening: Called with the bound address once the server accepts connections.
    ///   - makeFunctions: Builds the functions from the wired services.
    public static func main(
        configuration: HostConfiguration? = nil,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in },
        _ makeFunctions: @escaping @Sendable (APIServices) -> [any HTTPFunction]
    ) async {
        let configuration = configuration ?? HostConfiguration.loadOrExit()
        CloudLoggingLogHandler.bootstrap(level: configuration.server.logLevel)
        let logger = Logger(label: configuration.server.service ?? "image-api")
        do {
            logManagementMode(configuration.settings, logger: logger)
            let services = try await makeServices(configuration.settings, logger: logger)
            let application = FunctionServer.buildApplication(
                functions: makeFunctions(services), configuration: configuration.server,
                readiness: { try await services.store.checkReady() }, logger: logger, onListening: onListening)
            try await FunctionServer.run(application, configuration: configuration.server, logger: logger)
        } catch {
            logger.critical("Function stopped", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
