import CLIPInference
import FileSystemStorage
import Foundation
import FunctionsFramework
import ImageAPICore
import ImageProcessing
import Logging
import PushAuthentication
import SQLiteStorage
import ServiceLifecycle
import Synchronization

/// Everything a function process reads from its configuration.
public struct HostConfiguration: Sendable {
    /// The server settings (port, logging, CORS, limits).
    public var server: ServerConfiguration
    /// The application settings (environment, keys, storage).
    public let settings: APISettings
    /// The image pipeline's limits and choices.
    public let images: ImageSettings
    /// The local Pub/Sub's endpoint, attempts and backoff.
    public let pubSub: LocalPubSubSettings
    /// Who may deliver events to the event route.
    public let pushAuthentication: PushAuthenticationSettings

    /// Reads and validates every configuration variable.
    /// - Parameters:
    ///   - variables: The process's configuration variables.
    ///   - loopbackInDevelopment: Whether to listen on 127.0.0.1 when `HOST` is unset in
    ///     development (the emulator: its management endpoints are public there).
    /// - Throws: ``ConfigurationError`` naming the first invalid variable.
    public init(_ variables: EnvironmentVariables, loopbackInDevelopment: Bool = false) throws {
        self.server = try ServerConfiguration(variables)
        self.settings = try APISettings(variables)
        if loopbackInDevelopment, variables["HOST"] == nil, settings.environment == .development {
            server.host = "127.0.0.1"
        }
        self.images = try ImageSettings(variables, dataDirectory: settings.dataDirectory)
        self.pubSub = try LocalPubSubSettings(variables)
        self.pushAuthentication = try PushAuthenticationSettings(variables)
    }

    /// Reads the configuration of this process, or prints the one-line reason and exits with
    /// status 78 (EX_CONFIG).
    /// - Parameter loopbackInDevelopment: Whether an unset `HOST` means 127.0.0.1 in development.
    /// - Returns: The configuration.
    public static func loadOrExit(loopbackInDevelopment: Bool = false) -> HostConfiguration {
        do {
            return try HostConfiguration(EnvironmentVariables(), loopbackInDevelopment: loopbackInDevelopment)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(78)
        }
    }
}

/// The adapters a function process works with, built from its configuration.
public struct HostedServices: Sendable {
    /// Teams, users, keys and access control.
    public let api: APIServices
    /// The image pipeline's ports.
    public let images: ImageServices
    /// The outbox, read as a queue by the local Pub/Sub.
    public let outbox: any OutboxQueue
    /// Who may deliver events to the event route; `nil` accepts anyone (development only).
    public var eventAuthenticator: (any EventAuthenticator)?

    /// Bundles the services.
    public init(
        api: APIServices, images: ImageServices, outbox: any OutboxQueue,
        eventAuthenticator: (any EventAuthenticator)? = nil
    ) {
        self.api = api
        self.images = images
        self.outbox = outbox
        self.eventAuthenticator = eventAuthenticator
    }
}

/// Turns configuration into adapters and serves functions with them: the whole of a
/// function's `main`, so that each executable only says which functions it serves.
public enum FunctionHost {
    /// Opens the metadata store the settings name (the embedded SQLite file).
    /// - Parameter settings: The application settings.
    /// - Returns: The store, migrated.
    /// - Throws: When the store cannot be opened.
    public static func openStore(_ settings: APISettings) throws -> SQLiteMetadataStore {
        try SQLiteMetadataStore(path: settings.databasePath)
    }

    /// The process's one decode-memory budget (`DECODE_MEMORY_MB`), made on first use.
    private static let budget = Mutex<DecodeMemoryBudget?>(nil)

    /// The libvips codec with the process's decode-memory budget, shared by uploads, thumbnails
    /// and the visual-features embedder.
    /// - Parameter settings: The image settings.
    /// - Returns: The codec.
    public static func codec(_ settings: ImageSettings) -> VipsImageCodec {
        let shared = budget.withLock { budget in
            if let budget { return budget }
            let made = DecodeMemoryBudget(capacity: settings.decodeMemoryMegabytes << 20)
            budget = made
            return made
        }
        return VipsImageCodec(memoryBudget: shared)
    }

    /// The embedder the settings choose. With `EMBEDDING_PROVIDER=auto`, CLIP is used when
    /// `CLIP_MODEL_DIR` holds a model and the visual-features embedder otherwise, with one log
    /// line saying why and how to get the model.
    /// - Parameters:
    ///   - settings: The image settings.
    ///   - logger: Where the choice and the model's load are reported.
    /// - Returns: The embedder.
    /// - Throws: ``CLIPModelError`` when CLIP is chosen (or a model directory is present) but a
    ///   file is missing or wrong: the process must not start with a model it cannot trust.
    public static func makeEmbedder(_ settings: ImageSettings, logger: Logger) throws -> any Embedder {
        let directory = URL(fileURLWithPath: settings.clipModelDirectory)
        func clip() throws -> CLIPEmbedder {
            let embedder = try CLIPEmbedder(
                directory: directory, threads: settings.clipThreads, maxPixels: settings.maxImagePixels, logger: logger)
            logger.info(
                "Embedding with CLIP",
                metadata: ["model": .string(embedder.modelID), "threads": .stringConvertible(settings.clipThreads)])
            return embedder
        }
        switch settings.embeddingProvider {
        case .visual:
            return VisualFeaturesEmbedder(codec: codec(settings))
        case .clip:
            return try clip()
        case .automatic:
            if CLIPModelFiles.looksLikeModel(directory) { return try clip() }
            logger.notice(
                """
                No CLIP model in \(settings.clipModelDirectory): using the visual-features embedder \
                (image similarity only, no semantic text search). Run `make model` to download \
                openai/clip-vit-base-patch32 there, or set CLIP_MODEL_DIR.
                """)
            return VisualFeaturesEmbedder(codec: codec(settings))
        }
    }

    /// Opens the stores, wires the services and registers `BOOTSTRAP_ADMIN_KEY` when set.
    /// - Parameters:
    ///   - configuration: The process configuration.
    ///   - embedder: The embedder to use instead of the configured one (tests inject failures).
    ///   - logger: Where to report what was done.
    /// - Returns: The services.
    /// - Throws: When a store cannot be opened or the bootstrap key conflicts.
    public static func makeServices(
        _ configuration: HostConfiguration, embedder: (any Embedder)? = nil, logger: Logger
    ) async throws -> HostedServices {
        let settings = configuration.settings
        let store = try openStore(settings)
        let api = APIServices(store: store, settings: settings)
        let images = ImageServices(
            store: store, blobs: try FileSystemBlobStore(root: configuration.images.blobDirectory),
            codec: codec(configuration.images),
            embedder: try embedder ?? makeEmbedder(configuration.images, logger: logger),
            vectors: try SQLiteVectorIndex(store: store), deadLetters: store, settings: configuration.images)
        if let text = settings.bootstrapAdminKey, let key = APIKeyText(parsing: text) {
            let created = try await AdministratorBootstrap(services: api)
                .ensureKey(key, email: settings.bootstrapAdminEmail)
            if created {
                logger.notice(
                    "Registered BOOTSTRAP_ADMIN_KEY", metadata: ["email": .string(settings.bootstrapAdminEmail)])
            }
        }
        return HostedServices(api: api, images: images, outbox: store)
    }

    /// Logs, once at start, which management mode is in force, loudly when development mode
    /// listens beyond the loopback interface.
    /// - Parameters:
    ///   - settings: The application settings.
    ///   - host: The address the server binds.
    ///   - logger: The process logger.
    public static func logManagementMode(_ settings: APISettings, host: String, logger: Logger) {
        switch settings.environment {
        case .development:
            logger.warning(
                """
                ENVIRONMENT=development: team, user and API-key creation endpoints are public. \
                Set ENVIRONMENT=production to require an admin key.
                """)
            if !isLoopback(host) {
                logger.critical(
                    """
                    ENVIRONMENT=development and HOST=\(host): the public management endpoints are reachable \
                    from other machines. Anyone who can connect can create administrators. Use HOST=127.0.0.1 \
                    or ENVIRONMENT=production.
                    """)
            }
        case .production:
            logger.info("ENVIRONMENT=production: management endpoints require an admin API key")
        }
    }

    /// Whether an address is on the loopback interface only.
    /// - Parameter host: The bind address.
    /// - Returns: `true` for 127.0.0.0/8, `::1` and `localhost`.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The token this process's local Pub/Sub presents: `PUBSUB_PUSH_TOKEN` when set; in
    /// production, when the process delivers to itself, a random one made at start (so that its
    /// own event route stays closed to everyone else); otherwise none.
    /// - Parameters:
    ///   - configuration: The process configuration.
    ///   - deliversToSelf: Whether the local Pub/Sub pushes to this process.
    /// - Returns: The token, if any.
    public static func ownPushToken(_ configuration: HostConfiguration, deliversToSelf: Bool) -> String? {
        if let token = configuration.pushAuthentication.token { return token }
        guard configuration.settings.environment == .production, deliversToSelf,
            configuration.pubSub.pushEndpoint == nil
        else { return nil }
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Runs a function process: reads configuration (exiting 78 when it is invalid), bootstraps
    /// logging, builds the services, serves the functions and shuts down gracefully on SIGTERM.
    ///
    /// When `PUBSUB_PUSH_ENDPOINT` is set, or `deliversToSelf` is true, the process also runs the
    /// local Pub/Sub that delivers the outbox (to its own ProcessEmbedding route by default).
    /// - Parameters:
    ///   - configuration: The configuration, when the caller has already read it.
    ///   - deliversToSelf: Whether the local Pub/Sub pushes to this process when no endpoint is set.
    ///   - preparesEmbedder: Whether the embedder's model is loaded and warmed before serving
    ///     (processes that embed: ProcessEmbedding for uploads, Search for text queries); otherwise it
    ///     loads on first use.
    ///   - onListening: Called with the bound address once the server accepts connections.
    ///   - makeFunctions: Builds the functions to serve from the services.
    public static func main(
        configuration: HostConfiguration? = nil,
        deliversToSelf: Bool = false,
        preparesEmbedder: Bool = false,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in },
        _ makeFunctions: @escaping @Sendable (HostedServices) -> [any HTTPFunction]
    ) async {
        let configuration = configuration ?? HostConfiguration.loadOrExit()
        CloudLoggingLogHandler.bootstrap(level: configuration.server.logLevel)
        let logger = Logger(label: configuration.server.service ?? "image-api")
        do {
            logManagementMode(configuration.settings, host: configuration.server.host, logger: logger)
            var services = try await makeServices(configuration, logger: logger)
            if preparesEmbedder { try await services.images.embedder.prepare() }
            let pushToken = ownPushToken(configuration, deliversToSelf: deliversToSelf)
            services.eventAuthenticator = configuration.pushAuthentication.makeAuthenticator(extraToken: pushToken)
            let functions = makeFunctions(services)
            let store = services.api.store
            if configuration.settings.environment == .production, services.eventAuthenticator == nil,
                functions.contains(where: { $0 is any EventRoute })
            {
                logger.critical(
                    """
                    ENVIRONMENT=production needs authenticated event deliveries: set PUBSUB_PUSH_AUDIENCE and \
                    PUBSUB_PUSH_SERVICE_ACCOUNT (Pub/Sub push with OIDC tokens) or PUBSUB_PUSH_TOKEN; not starting
                    """)
                exit(78)
            }
            let transport = HTTPPushTransport(
                endpoint: configuration.pubSub.pushEndpoint.flatMap(URL.init(string:)),
                timeout: .seconds(Int64(configuration.pubSub.ackDeadlineSeconds)), bearerToken: pushToken)
            let pubSub =
                deliversToSelf || configuration.pubSub.pushEndpoint != nil
                ? LocalPubSub(
                    queue: services.outbox, settings: configuration.pubSub, transport: transport, logger: logger)
                : nil
            let application = FunctionServer.buildApplication(
                functions: functions, configuration: configuration.server,
                readiness: { try await store.checkReady() }, logger: logger,
                onListening: { host, port in
                    let local = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
                    if let url = URL(string: "http://\(local):\(port)\(LocalPubSub.defaultPushPath)") {
                        transport.useIfUnset(url)
                    }
                    await onListening(host, port)
                })
            try await FunctionServer.run(
                application, background: pubSub.map { [$0] } ?? [], configuration: configuration.server, logger: logger)
        } catch let error as CLIPModelError {
            logger.critical(
                "The CLIP model cannot be used; not starting",
                metadata: ["error": "\(error)", "directory": .string(configuration.images.clipModelDirectory)])
            exit(78)
        } catch {
            logger.critical("Function stopped", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
