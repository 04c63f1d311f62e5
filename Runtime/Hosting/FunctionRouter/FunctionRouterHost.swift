import AsyncHTTPClient
import Foundation
import FunctionsFramework
import Hummingbird
import Logging
import RuntimeSupport

/// The local router's configuration: where it listens and each service's base URL.
public struct FunctionRouterConfiguration: Sendable {
    /// The server settings (`PORT`, `HOST`, `LOG_LEVEL`).
    public let server: ServerConfiguration
    /// The URL map it routes by.
    public let map: ServiceURLMap
    /// Each service's base URLs, read from `<SERVICE>_URL` (`MANAGE_TEAMS_URL`, …): one, or
    /// several replicas' separated by commas, which take the service's requests in turn.
    public let upstreams: [String: [String]]

    /// Reads the configuration.
    /// - Parameters:
    ///   - variables: The process's variables.
    ///   - map: The URL map.
    /// - Throws: ``ConfigurationError`` naming the first missing or invalid service URL.
    public init(_ variables: EnvironmentVariables, map: ServiceURLMap = .production) throws {
        self.server = try ServerConfiguration(variables)
        self.map = map
        var upstreams: [String: [String]] = [:]
        for service in map.services {
            let variable = ServiceURLMap.urlVariable(for: service)
            let values = try variables.list(variable)
            guard !values.isEmpty else {
                throw ConfigurationError(
                    variable: variable, reason: "is required: the base URL of the \(service) service")
            }
            for value in values {
                guard let url = URL(string: value), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
                    url.path.isEmpty || url.path == "/"
                else {
                    throw ConfigurationError(
                        variable: variable,
                        reason:
                            "must be http(s) base URLs without a path, separated by commas, such as http://127.0.0.1:8081"
                    )
                }
            }
            upstreams[service] = values
        }
        self.upstreams = upstreams
    }
}

/// The router in front of the separate function processes of a local cloud topology: the
/// production load balancer's URL map on one port.
public enum FunctionRouterHost {
    /// Builds the router's application.
    ///
    /// It answers its own `GET /healthz`, and `GET /readyz` when every service answers its
    /// `/healthz`; everything the URL map routes goes to the service behind it (to its
    /// replicas in turn); anything else is a JSON 404.
    /// - Parameters:
    ///   - configuration: The configuration.
    ///   - logger: The logger.
    ///   - client: The HTTP client to forward with.
    ///   - onListening: Called with the bound address once the server accepts connections.
    /// - Returns: The application, ready to run.
    public static func buildApplication(
        _ configuration: FunctionRouterConfiguration, logger: Logger, client: HTTPClient = ServiceProxy.client,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: FunctionContext.self)
        router.add(middleware: RequestLoggingMiddleware(projectID: configuration.server.projectID))
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: ServiceProxy(map: configuration.map, upstreams: configuration.upstreams, client: client))
        let routes = FunctionRoutes(router: router)
        routes.on(.get, "/healthz") { _ in ["status": "ok"] }
        let upstreams = configuration.upstreams
        routes.on(.get, "/readyz") { _ -> [String: String] in
            for (service, bases) in upstreams.sorted(by: { $0.key < $1.key }) {
                for base in bases {
                    let status = try? await client.execute(
                        HTTPClientRequest(url: "\(base)/healthz"), timeout: .seconds(5)
                    )
                    .status.code
                    guard status == 200 else {
                        throw FunctionError.unavailable(
                            "Not ready: the \(service) service at \(base) answers /healthz with \(status.map(String.init) ?? "no answer")"
                        )
                    }
                }
            }
            return ["status": "ready"]
        }
        return Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.server.host, port: configuration.server.port), serverName: "image-api"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.server.port
                logger.info(
                    "Listening",
                    metadata: [
                        "address": .string("http://\(configuration.server.host):\(port)"),
                        "routes": .dictionary(
                            .init(
                                uniqueKeysWithValues: configuration.map.rules.map {
                                    ($0.pathPrefix, .string($0.service))
                                })),
                    ])
                await onListening(configuration.server.host, port)
            },
            logger: logger)
    }

    /// Runs the router: reads its configuration (exiting 78 when it is invalid), serves until
    /// SIGTERM or SIGINT.
    public static func main() async {
        let configuration: FunctionRouterConfiguration
        do {
            configuration = try FunctionRouterConfiguration(EnvironmentVariables())
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(78)
        }
        CloudLoggingLogHandler.bootstrap(level: configuration.server.logLevel, format: configuration.server.logFormat)
        let logger = Logger(label: "router")
        do {
            try await FunctionServer.run(
                buildApplication(configuration, logger: logger), configuration: configuration.server, logger: logger)
        } catch {
            logger.critical("Router stopped", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
