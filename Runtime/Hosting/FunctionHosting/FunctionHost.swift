import FirestoreStorage
import Foundation
import FunctionsFramework
import Hummingbird
import ImageAPICore
import LocalPush
import Locking
import Logging
import MemoryStorage
import PostgresStorage
import PubSub
import PushAuthentication
import SQLiteStorage
import ServiceLifecycle

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
    /// Which backend serves each group of ports.
    public let backends: BackendSelection
    /// Every variable, from which each adapter's factory is given its own.
    public let variables: EnvironmentVariables

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
        self.backends = try BackendSelection(variables)
        self.variables = variables
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

/// The adapters every function process works with, built from its configuration: the
/// metadata store behind each of its ports. Image functions add their own ports on top
/// (`ImageHost` in the `ImageHosting` target), so that management functions link no image code.
public struct HostedServices: Sendable {
    /// The process configuration.
    public let configuration: HostConfiguration
    /// Teams, users, keys and access control.
    public let api: APIServices
    /// Image metadata with its outbox, in the same store.
    public let imageStore: any ImageStore
    /// Messages given up on.
    public let deadLetters: any DeadLetterQueue
    /// The outbox, read as a queue by the local Pub/Sub.
    public let outbox: any OutboxQueue
    /// The process logger.
    public let logger: Logger
    /// Who may deliver events to the event route; `nil` accepts anyone (development only).
    public var eventAuthenticator: (any EventAuthenticator)?
    /// What the adapters built so far need run beside the server; image adapters add theirs.
    public let background: BackgroundWorkList
    /// The Pub/Sub topic with `EVENTS_BACKEND=pubsub` in a process that relays the outbox (one
    /// per process, so its credentials' tokens are fetched once); `nil` otherwise.
    public var pubSub: PubSubTopic?

    /// Bundles the services.
    public init(
        configuration: HostConfiguration, api: APIServices, imageStore: any ImageStore,
        deadLetters: any DeadLetterQueue, outbox: any OutboxQueue, logger: Logger,
        eventAuthenticator: (any EventAuthenticator)? = nil, background: BackgroundWorkList = BackgroundWorkList()
    ) {
        self.background = background
        self.configuration = configuration
        self.api = api
        self.imageStore = imageStore
        self.deadLetters = deadLetters
        self.outbox = outbox
        self.logger = logger
        self.eventAuthenticator = eventAuthenticator
    }
}

/// A reason the process must not start because of its configuration or its files (a broken
/// model, an unusable setting): ``FunctionHost/main(configuration:localDelivery:pushPath:onListening:_:)``
/// logs it and exits with status 78 (EX_CONFIG) instead of 1.
public protocol StartupRefusal: Error {
    /// The log line.
    var message: String { get }
    /// Details logged with it.
    var metadata: Logger.Metadata { get }
}

/// Everything a metadata backend implements: one object serves every metadata port.
public typealias MetadataBackendStore = MetadataStore & ImageStore & OutboxQueue & DeadLetterQueue

/// The background work of the adapters a process built, gathered as they are built.
public final class BackgroundWorkList: Sendable {
    private let work: Locked<[BackgroundWork]>

    /// Starts a list.
    /// - Parameter work: The work known so far.
    public init(_ work: [BackgroundWork] = []) {
        self.work = Locked(work)
    }

    /// Adds an adapter's work.
    /// - Parameter more: The work.
    public func add(_ more: [BackgroundWork]) {
        work.withLock { $0 += more }
    }

    /// Everything added.
    public var all: [BackgroundWork] { work.withLock { $0 } }
}

/// An adapter's background work as a service of the process's service group: cancelled when the
/// group shuts down gracefully.
struct BackgroundWorkService: Service {
    let work: BackgroundWork

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await work.run() }
    }
}

/// Turns configuration into adapters and serves functions with them: the whole of a
/// function's `main`, so that each executable only says which functions it serves.
public enum FunctionHost {
    /// Builds the metadata store `METADATA_BACKEND` names, through its adapter's factory: one
    /// object serves every metadata port.
    /// - Parameter configuration: The process configuration.
    /// - Returns: The store (migrated, for SQLite) and the work it needs run.
    /// - Throws: When the store cannot be opened.
    public static func openStore(
        _ configuration: HostConfiguration
    ) throws -> BuiltAdapter<any MetadataBackendStore> {
        switch configuration.backends.metadata {
        case .sqlite: try SQLiteStorageFactory.build(from: configuration.variables).map { $0 }
        case .memory: try MemoryMetadataStoreFactory.build(from: configuration.variables).map { $0 }
        case .firestore: try FirestoreStorageFactory.build(from: configuration.variables).map { $0 }
        case .postgres: try PostgresStorageFactory.build(from: configuration.variables).map { $0 }
        }
    }

    /// Opens the metadata store, wires the services and registers `BOOTSTRAP_ADMIN_KEY` when set.
    /// - Parameters:
    ///   - configuration: The process configuration.
    ///   - logger: Where to report what was done.
    ///   - relaysOutbox: Whether this process delivers the outbox: only then, with
    ///     `EVENTS_BACKEND=pubsub`, is the Pub/Sub publisher built (and its settings required), and
    ///     dead letters forwarded to the dead-letter topic.
    /// - Returns: The services.
    /// - Throws: When the store cannot be opened or the bootstrap key conflicts.
    public static func makeServices(
        _ configuration: HostConfiguration, logger: Logger, relaysOutbox: Bool = true
    ) async throws -> HostedServices {
        let settings = configuration.settings
        let built = try openStore(configuration)
        let store = built.adapter
        let background = BackgroundWorkList(built.background)
        if configuration.backends.metadata == .memory {
            logger.warning(
                "METADATA_BACKEND=memory: metadata lives in this process only and is lost when it stops (tests and demos)"
            )
        }
        let api = APIServices(store: store, settings: settings)
        if let text = settings.bootstrapAdminKey, let key = APIKeyText(parsing: text) {
            // A store that refuses or cannot be reached yet (a grant not yet visible) is retried.
            let created = try await StartupRetry().run(
                "Registering BOOTSTRAP_ADMIN_KEY", logger: logger, isFinal: { $0 is AdministratorBootstrap.Refusal }
            ) {
                try await AdministratorBootstrap(services: api).ensureKey(key, email: settings.bootstrapAdminEmail)
            }
            if created {
                logger.notice(
                    "Registered BOOTSTRAP_ADMIN_KEY", metadata: ["email": .string(settings.bootstrapAdminEmail)])
            }
        }
        var deadLetters: any DeadLetterQueue = store
        var pubSub: PubSubTopic?
        if configuration.backends.events == .pubsub, relaysOutbox {
            let topic = PubSubTopic(try PubSubFactory.events(from: configuration.variables))
            deadLetters = DeadLetterTopicForwarder(queue: store, topic: topic.deadLetterPublisher, logger: logger)
            pubSub = topic
        }
        var services = HostedServices(
            configuration: configuration, api: api, imageStore: store, deadLetters: deadLetters, outbox: store,
            logger: logger, background: background)
        services.pubSub = pubSub
        return services
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

    /// Builds what a process serves and runs beside its functions, from its configuration: the
    /// services, the functions `makeFunctions` makes from them, and, where the process writes the
    /// outbox (`relaysOutbox`), the relay that delivers it: to Pub/Sub with `EVENTS_BACKEND=pubsub`
    /// (and the scheduler's relay endpoint), or through the local Pub/Sub when
    /// `PUBSUB_PUSH_ENDPOINT` is set or a `localDelivery` target is given (to several endpoints in
    /// turn when it names several: a standalone relay process in front of ProcessEmbedding's
    /// replicas). Any other process builds no relay and needs no Pub/Sub settings.
    /// - Parameters:
    ///   - configuration: The process configuration.
    ///   - relaysOutbox: Whether this process's functions write the outbox (uploads, reprocessing,
    ///     dead-letter replays), so that it delivers it; `false` for the management functions and
    ///     Search.
    ///   - localDelivery: Where the local Pub/Sub pushes when `PUBSUB_PUSH_ENDPOINT` is not set
    ///     (the emulator's own event route); `nil` for the function binaries.
    ///   - pushPath: Where this process takes Pub/Sub's pushes (ProcessEmbedding: `/`). With
    ///     `createsResources` and `PUBSUB_EMULATOR_HOST`, the process creates the topic, the
    ///     dead-letter topic and a push subscription to this path once it listens.
    ///   - createsResources: Whether the process was started with `--create-resources`.
    ///   - logger: The process logger.
    ///   - makeFunctions: Builds the functions to serve from the services.
    /// - Returns: The process's plan.
    /// - Throws: When an adapter cannot be built, or `makeFunctions` throws.
    public static func buildServices(
        configuration: HostConfiguration, relaysOutbox: Bool, localDelivery: LocalDeliveryTarget? = nil,
        pushPath: String? = nil, createsResources: Bool = false, logger: Logger,
        _ makeFunctions: @Sendable (HostedServices) async throws -> [any HTTPFunction]
    ) async throws -> ProcessPlan {
        var services = try await makeServices(configuration, logger: logger, relaysOutbox: relaysOutbox)
        if relaysOutbox {
            // What waits in the outbox, read when /metrics is scraped.
            let outbox = services.outbox
            ProcessMetrics.readGauges("outbox") {
                let backlog = try await outbox.backlog()
                let age = backlog.oldestPublishedAt.map { max(0, Date().timeIntervalSince($0)) } ?? 0
                return [("outbox_messages", Double(backlog.messages)), ("outbox_oldest_message_age_seconds", age)]
            }
        }
        let pushToken = configuration.pushAuthentication.token ?? localDelivery?.token
        services.eventAuthenticator = configuration.pushAuthentication.makeAuthenticator(extraToken: pushToken)
        var functions = try await makeFunctions(services)
        // `--create-resources`: this process's own push URL, for the subscription it creates.
        let ownPushPath = createsResources ? pushPath : nil
        let localPush = LocalPushFactory.build(
            endpoints: configuration.pubSub.pushEndpoints.compactMap(URL.init(string:)),
            timeout: .seconds(Int64(configuration.pubSub.ackDeadlineSeconds)), bearerToken: pushToken)
        let storeName = "the metadata store (\(configuration.backends.metadata.displayName))"
        let relay: OutboxRelay?
        var subscribeOnListening: (@Sendable (URL) async throws -> Void)?
        switch relaysOutbox ? configuration.backends.events : nil {
        case nil:
            relay = nil
        case .local:
            relay =
                localDelivery != nil || !configuration.pubSub.pushEndpoints.isEmpty
                ? OutboxRelay(
                    queue: services.outbox, settings: configuration.pubSub, publisher: localPush.publisher,
                    logger: logger, storeName: storeName)
                : nil
        case .pubsub:
            let topic = try services.pubSub ?? PubSubTopic(PubSubFactory.events(from: configuration.variables))
            let pubSubRelay = OutboxRelay(
                queue: services.outbox, settings: configuration.pubSub, publisher: topic.publisher, logger: logger,
                storeName: storeName)
            relay = pubSubRelay
            if services.eventAuthenticator != nil || configuration.settings.environment != .production {
                functions.append(OutboxRelayEndpoint(relay: pubSubRelay, authenticator: services.eventAuthenticator))
            } else {
                logger.notice(
                    """
                    \(OutboxRelayEndpoint.path) is not served: in production it needs PUBSUB_PUSH_AUDIENCE and \
                    PUBSUB_PUSH_SERVICE_ACCOUNT, or PUBSUB_PUSH_TOKEN, to authenticate the scheduler
                    """)
            }
            if configuration.variables["PUBSUB_EMULATOR_HOST"] != nil, localDelivery != nil || ownPushPath != nil {
                // A local run on the Pub/Sub emulator: its push subscription delivers to this process.
                let attempts = configuration.pubSub.maxDeliveryAttempts
                subscribeOnListening = { endpoint in try await topic.subscribe(endpoint.absoluteString, attempts) }
            }
        }
        return ProcessPlan(
            services: services, functions: functions, relay: relay, useLocalPushEndpoint: localPush.useEndpointIfUnset,
            subscribeOnListening: subscribeOnListening, localDelivery: localDelivery, ownPushPath: ownPushPath)
    }

    /// The process's HTTP application: its functions behind the server's middleware, `/healthz`
    /// and `/readyz` (the metadata store's readiness); once it listens, the local Pub/Sub learns
    /// the process's own event route and a run on the Pub/Sub emulator creates its subscription.
    /// - Parameters:
    ///   - plan: What ``buildServices(configuration:relaysOutbox:localDelivery:pushPath:createsResources:logger:_:)`` built.
    ///   - configuration: The server settings.
    ///   - logger: The process logger.
    ///   - onListening: Called with the bound address once the server accepts connections.
    /// - Returns: The application.
    public static func buildApplication(
        _ plan: ProcessPlan, configuration: ServerConfiguration, logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let store = plan.services.api.store
        let metadata = plan.services.configuration.backends.metadata.displayName
        let localDelivery = plan.localDelivery
        let ownPushPath = plan.ownPushPath
        let useLocalPushEndpoint = plan.useLocalPushEndpoint
        let subscribe = plan.subscribeOnListening
        return FunctionServer.buildApplication(
            functions: plan.functions, configuration: configuration,
            readiness: {
                do {
                    try await store.checkReady()
                } catch {
                    throw DependencyUnavailable(dependency: "the metadata store (\(metadata))", detail: "\(error)")
                }
            }, logger: logger,
            onListening: { host, port in
                if let url = localDelivery?.endpoint(host, port) { useLocalPushEndpoint(url) }
                let ownPush = ownPushPath.flatMap { path in
                    URL(string: "http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(port)\(path)")
                }
                if let url = localDelivery?.endpoint(host, port) ?? ownPush, let subscribe {
                    let push = localDelivery?.token.map { url.appending(queryItems: [.init(name: "token", value: $0)]) }
                    do {
                        try await subscribe(push ?? url)
                        logger.info(
                            "Pub/Sub emulator: push subscription to this process created",
                            metadata: ["endpoint": .string(url.absoluteString)])
                    } catch {
                        logger.error(
                            "Pub/Sub emulator: cannot create the push subscription", metadata: ["error": "\(error)"])
                    }
                }
                await onListening(host, port)
            })
    }

    /// Runs a function process: reads configuration (exiting 78 when it is invalid), bootstraps
    /// logging, builds its services (``buildServices(configuration:relaysOutbox:localDelivery:pushPath:createsResources:logger:_:)``)
    /// and its application (``buildApplication(_:configuration:logger:onListening:)``), serves, and
    /// shuts down gracefully on SIGTERM. Each function's `main` is one call of this, saying what
    /// the process runs.
    /// - Parameters:
    ///   - configuration: The configuration, when the caller has already read it.
    ///   - relaysOutbox: Whether this process's functions write the outbox, so that it delivers it.
    ///   - localDelivery: Where the local Pub/Sub pushes when `PUBSUB_PUSH_ENDPOINT` is not set.
    ///   - pushPath: Where this process takes Pub/Sub's pushes, for `--create-resources`.
    ///   - onListening: Called with the bound address once the server accepts connections.
    ///   - makeFunctions: Builds the functions to serve from the services (and whatever further
    ///     ports they need); a ``StartupRefusal`` it throws stops the process with status 78.
    public static func main(
        configuration: HostConfiguration? = nil,
        relaysOutbox: Bool,
        localDelivery: LocalDeliveryTarget? = nil,
        pushPath: String? = nil,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in },
        _ makeFunctions: @escaping @Sendable (HostedServices) async throws -> [any HTTPFunction]
    ) async {
        let configuration = configuration ?? HostConfiguration.loadOrExit()
        CloudLoggingLogHandler.bootstrap(level: configuration.server.logLevel, format: configuration.server.logFormat)
        let logger = Logger(label: configuration.server.service ?? "image-api")
        do {
            logManagementMode(configuration.settings, host: configuration.server.host, logger: logger)
            let plan = try await buildServices(
                configuration: configuration, relaysOutbox: relaysOutbox, localDelivery: localDelivery,
                pushPath: pushPath, createsResources: CommandLine.arguments.dropFirst().contains("--create-resources"),
                logger: logger, makeFunctions)
            if configuration.settings.environment == .production, plan.services.eventAuthenticator == nil,
                plan.functions.contains(where: { $0 is any EventRoute })
            {
                logger.critical(
                    """
                    ENVIRONMENT=production needs authenticated event deliveries: set PUBSUB_PUSH_AUDIENCE and \
                    PUBSUB_PUSH_SERVICE_ACCOUNT (Pub/Sub push with OIDC tokens) or PUBSUB_PUSH_TOKEN; not starting
                    """)
                exit(78)
            }
            let application = buildApplication(
                plan, configuration: configuration.server, logger: logger, onListening: onListening)
            try await FunctionServer.run(
                application, background: plan.background, configuration: configuration.server, logger: logger)
        } catch let refusal as any StartupRefusal {
            logger.critical("\(refusal.message)", metadata: refusal.metadata)
            exit(78)
        } catch let error as ConfigurationError {
            // A backend's own setting, read when its factory builds it: the same one line as any other.
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(78)
        } catch {
            logger.critical("Function stopped", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}

/// What one process serves and runs beside its functions, as
/// ``FunctionHost/buildServices(configuration:relaysOutbox:localDelivery:pushPath:createsResources:logger:_:)``
/// built it from the configuration.
public struct ProcessPlan: Sendable {
    /// The adapters and services.
    public let services: HostedServices
    /// The functions the process serves (with the relay endpoint where a Pub/Sub relay runs).
    public let functions: [any HTTPFunction]
    /// The outbox relay, where the process writes the outbox and delivers it; `nil` otherwise.
    public let relay: OutboxRelay?
    let useLocalPushEndpoint: @Sendable (URL) -> Void
    let subscribeOnListening: (@Sendable (URL) async throws -> Void)?
    let localDelivery: LocalDeliveryTarget?
    let ownPushPath: String?

    /// Everything run beside the server: the relay, and the adapters' background work.
    public var background: [any Service] {
        (relay.map { [$0] } ?? []) + services.background.all.map(BackgroundWorkService.init)
    }
}

/// The Pub/Sub topic as a host uses it (from ``PubSubFactory``): publish, forward dead letters,
/// and on the emulator subscribe a push endpoint.
public struct PubSubTopic: Sendable {
    /// Publishes processing events to the topic.
    public let publisher: any EventPublisher
    /// Publishes given-up messages to the dead-letter topic.
    public let deadLetterPublisher: any EventPublisher
    /// Creates the push subscription to an endpoint, with the dead-letter topic after the attempts.
    public let subscribe: @Sendable (_ endpoint: String, _ maxDeliveryAttempts: Int) async throws -> Void

    /// Wraps what the factory built.
    /// - Parameter built: The factory's publishers and subscription maker.
    public init(
        _ built: (
            publisher: any EventPublisher, deadLetterPublisher: any EventPublisher,
            subscribe: @Sendable (_ endpoint: String, _ maxDeliveryAttempts: Int) async throws -> Void
        )
    ) {
        publisher = built.publisher
        deadLetterPublisher = built.deadLetterPublisher
        subscribe = built.subscribe
    }
}
