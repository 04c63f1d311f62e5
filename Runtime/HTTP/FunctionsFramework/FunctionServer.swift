import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Builds and runs the HTTP server that serves one or more functions.
///
/// Every server answers `GET /healthz` (liveness) and `GET /readyz` (the readiness check), maps
/// every error to JSON, enforces the body limit, applies CORS and logs each request in Cloud
/// Logging's format. On SIGTERM or SIGINT it stops accepting connections and gives in-flight
/// requests up to ``shutdownGracePeriod`` to finish.
public enum FunctionServer {
    /// How long in-flight requests may run after SIGTERM.
    public static let shutdownGracePeriod: Duration = .seconds(10)

    /// A check that throws when the function cannot serve (its storage is unreachable, say).
    public typealias ReadinessCheck = @Sendable () async throws -> Void

    /// Builds the router for a set of functions.
    /// - Parameters:
    ///   - functions: The functions to serve on one port.
    ///   - configuration: The server settings.
    ///   - readiness: The check behind `/readyz`.
    /// - Returns: The router and the route table describing every endpoint it serves.
    public static func buildRouter(
        functions: [any HTTPFunction], configuration: ServerConfiguration, readiness: @escaping ReadinessCheck
    ) -> (router: Router<FunctionContext>, routes: FunctionRoutes) {
        ProcessMetrics.bootstrap()
        let router = Router(context: FunctionContext.self, options: [.autoGenerateHeadEndpoints])
        router.add(middleware: HTTPMetricsMiddleware())
        router.add(middleware: ClientAddressMiddleware(trustedProxies: configuration.trustedProxies))
        router.add(middleware: RequestLoggingMiddleware(projectID: configuration.projectID))
        if !configuration.corsOrigins.isEmpty {
            router.add(middleware: CORSPolicyMiddleware(allowedOrigins: configuration.corsOrigins))
        }
        router.add(middleware: ResponseHeadersMiddleware())
        router.add(middleware: ErrorMiddleware())
        let endpointLimits = functions.reduce(into: [Endpoint: Int]()) { $0.merge($1.bodyLimits) { max($0, $1) } }
        router.add(
            middleware: BodyLimitMiddleware(limit: configuration.maxRequestBodyBytes, endpointLimits: endpointLimits))

        let routes = FunctionRoutes(router: router)
        routes.on(.get, "/healthz") { _ in ["status": "ok"] }
        if configuration.metricsAccess != .closed {
            let access = configuration.metricsAccess
            routes.on(.get, "/metrics") { call -> Response in
                guard ProcessMetrics.admits(call.request, access) else {
                    throw FunctionError.unauthorized("GET /metrics needs METRICS_TOKEN as a bearer token")
                }
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: await ProcessMetrics.scrape())))
            }
        }
        routes.on(.get, "/readyz") { call -> [String: String] in
            do {
                try await readiness()
            } catch let error as DependencyUnavailable {
                // A stable sentence naming what does not answer; the log has the error itself.
                throw FunctionError(
                    .serviceUnavailable, "Not ready: \(error.dependency) does not answer", logDetail: error.detail)
            } catch {
                throw FunctionError(.serviceUnavailable, "Not ready", logDetail: "\(error)")
            }
            return ["status": "ready"]
        }
        for function in functions {
            function.registerEndpoints(on: routes)
        }
        routes.answerUnregisteredMethods()
        return (router, routes)
    }

    /// Builds the application for a set of functions.
    /// - Parameters:
    ///   - functions: The functions to serve on one port.
    ///   - configuration: The server settings.
    ///   - readiness: The check behind `/readyz`.
    ///   - logger: The server's logger.
    ///   - onListening: Called with the bound address once the server accepts connections.
    /// - Returns: The application, ready to run.
    public static func buildApplication(
        functions: [any HTTPFunction], configuration: ServerConfiguration, readiness: @escaping ReadinessCheck,
        logger: Logger, onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let (router, _) = buildRouter(functions: functions, configuration: configuration, readiness: readiness)
        let limits = configuration.connections
        let counter = ConnectionCounter()
        var connectionLogger = logger
        connectionLogger[metadataKey: "component"] = "connections"
        let guardLogger = connectionLogger
        return Application(
            router: router,
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [
                        ConnectionGuardHandler(limits: limits, counter: counter, logger: guardLogger)
                    ])),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                // One name for every function: the header tells a caller nothing about what runs.
                serverName: "image-api"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.info(
                    "Listening",
                    metadata: [
                        "address": .string("http://\(configuration.host):\(port)"),
                        "functions": .array(functions.map { .string($0.name) }),
                    ])
                await onListening(configuration.host, port)
            },
            logger: logger
        )
    }

    /// Raises the soft limit on open files to the hard limit, so that `MAX_CONNECTIONS` rather
    /// than the file-descriptor table decides how many clients are served.
    /// - Parameter logger: Where the limits are reported.
    static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        logger.debug("Open file limit", metadata: ["RLIMIT_NOFILE": .stringConvertible(limit.rlim_cur)])
    }

    /// Runs an application until SIGTERM or SIGINT, then shuts it down gracefully.
    /// - Parameters:
    ///   - application: The application (see ``buildApplication(functions:configuration:readiness:logger:onListening:)``).
    ///   - background: Services that run beside the server (such as the local Pub/Sub) and are
    ///     shut down with it.
    ///   - configuration: The server settings, whose Cloud Run service and revision are logged.
    ///   - logger: The logger.
    /// - Throws: When the server cannot bind or a service fails.
    public static func run(
        _ application: some ApplicationProtocol, background: [any Service] = [], configuration: ServerConfiguration,
        logger: Logger
    ) async throws {
        raiseOpenFileLimit(logger: logger)
        var metadata: Logger.Metadata = [:]
        if let service = configuration.service { metadata["K_SERVICE"] = .string(service) }
        if let revision = configuration.revision { metadata["K_REVISION"] = .string(revision) }
        logger.info("Starting", metadata: metadata)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(
                    service: application, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup)
            ]
                + background.map {
                    .init(
                        service: $0, successTerminationBehavior: .ignore,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = shutdownGracePeriod
        try await ServiceGroup(configuration: groupConfiguration).run()
        logger.info("Stopped")
    }
}

/// A readiness check that failed because a dependency does not answer: `/readyz` names it in
/// its answer (`Not ready: the metadata store (PostgreSQL) does not answer`) and logs the error.
public struct DependencyUnavailable: Error, CustomStringConvertible {
    /// What does not answer, for people: `the metadata store (PostgreSQL)`.
    public let dependency: String
    /// The error met, for the log.
    public let detail: String

    /// Creates the failure.
    public init(dependency: String, detail: String) {
        self.dependency = dependency
        self.detail = detail
    }

    /// The dependency and the error.
    public var description: String { "\(dependency) does not answer: \(detail)" }
}
