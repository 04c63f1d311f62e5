import Foundation
import Logging

/// The settings every function server reads, whatever the function.
public struct ServerConfiguration: Sendable, Equatable {
    /// The default request-body limit: 1 MiB, ample for JSON bodies.
    public static let defaultMaxRequestBodyBytes = 1 << 20

    /// `HOST`: the address to bind (default `0.0.0.0`).
    public var host: String
    /// `PORT`: the port to bind (default 8080; 0 picks a free port and logs it).
    public var port: Int
    /// `LOG_LEVEL`: the lowest level written (default `info`).
    public var logLevel: Logger.Level
    /// `CORS_ORIGINS`: origins allowed to call from browsers; `*` allows any; empty disables CORS.
    public var corsOrigins: [String]
    /// `MAX_REQUEST_BODY_BYTES`: the largest request body accepted (default 1 MiB).
    public var maxRequestBodyBytes: Int
    /// `K_SERVICE`: the Cloud Run service name, when deployed.
    public var service: String?
    /// `K_REVISION`: the Cloud Run revision, when deployed.
    public var revision: String?
    /// `GOOGLE_CLOUD_PROJECT`: qualifies trace ids in logs.
    public var projectID: String?
    /// `MAX_CONNECTIONS` and the `HTTP_*` limits on connections.
    public var connections: ConnectionLimits
    /// `TRUSTED_PROXIES`: proxies in front of the server that append the caller's address to
    /// `X-Forwarded-For` (default 1 on Cloud Run, whose front end appends one; 0 elsewhere, where
    /// the connection's peer is the client). Behind Google's external Application Load Balancer
    /// it is 2: the client is the second-to-last entry, the balancer itself the last.
    public var trustedProxies: Int
    /// Who may read `GET /metrics` (``MetricsAccess``): anyone in development; in production
    /// only with `METRICS_TOKEN` as a bearer token, and nobody when it is not set.
    public var metricsAccess: MetricsAccess = .open
    /// `LOG_FORMAT`: `json` or `text`; by default text when standard output is a terminal and
    /// `ENVIRONMENT` is not `production`, else JSON.
    public var logFormat: LogFormat = .json

    /// Creates a configuration from values.
    /// - Parameters:
    ///   - host: The bind address.
    ///   - port: The port.
    ///   - logLevel: The lowest level logged.
    ///   - corsOrigins: Allowed browser origins.
    ///   - maxRequestBodyBytes: The body limit.
    ///   - service: The Cloud Run service.
    ///   - revision: The Cloud Run revision.
    ///   - projectID: The Google Cloud project.
    ///   - connections: The limits on connections.
    ///   - trustedProxies: Proxies that append to `X-Forwarded-For`.
    public init(
        host: String = "0.0.0.0", port: Int = 8080, logLevel: Logger.Level = .info, corsOrigins: [String] = [],
        maxRequestBodyBytes: Int = defaultMaxRequestBodyBytes, service: String? = nil, revision: String? = nil,
        projectID: String? = nil, connections: ConnectionLimits = ConnectionLimits(), trustedProxies: Int = 0
    ) {
        self.connections = connections
        self.trustedProxies = trustedProxies
        self.host = host
        self.port = port
        self.logLevel = logLevel
        self.corsOrigins = corsOrigins
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.service = service
        self.revision = revision
        self.projectID = projectID
    }

    /// Reads and validates the server variables.
    /// - Parameters:
    ///   - variables: The process's configuration variables.
    ///   - standardOutputIsTerminal: Whether logs go to a terminal (text lines by default then).
    /// - Throws: ``ConfigurationError`` naming the first invalid variable.
    public init(
        _ variables: EnvironmentVariables, standardOutputIsTerminal: Bool = isatty(STDOUT_FILENO) == 1
    ) throws {
        let levelNames = Logger.Level.allCases.map(\.rawValue)
        let levelName = try variables.choice("LOG_LEVEL", default: "info", allowed: levelNames)
        self.init(
            host: variables["HOST"] ?? "0.0.0.0",
            port: try variables.integer("PORT", default: 8080, in: 0...65535),
            logLevel: Logger.Level(rawValue: levelName) ?? .info,
            corsOrigins: try variables.list("CORS_ORIGINS"),
            maxRequestBodyBytes: try variables.integer(
                "MAX_REQUEST_BODY_BYTES", default: Self.defaultMaxRequestBodyBytes, in: 1024...(1 << 30)),
            service: variables["K_SERVICE"],
            revision: variables["K_REVISION"],
            projectID: variables["GOOGLE_CLOUD_PROJECT"],
            connections: try ConnectionLimits(variables),
            trustedProxies: try variables.integer(
                "TRUSTED_PROXIES", default: variables["K_SERVICE"] == nil ? 0 : 1, in: 0...16)
        )
        let token = variables["METRICS_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let token, token.count < 16 {
            throw ConfigurationError(variable: "METRICS_TOKEN", reason: "must be at least 16 characters")
        }
        let production = variables["ENVIRONMENT"] == "production"
        metricsAccess = token.map(MetricsAccess.bearer) ?? (production ? .closed : .open)
        let terminal = standardOutputIsTerminal && !production
        let format = try variables.choice(
            "LOG_FORMAT", default: terminal ? LogFormat.text.rawValue : LogFormat.json.rawValue,
            allowed: LogFormat.allCases.map(\.rawValue))
        logFormat = LogFormat(rawValue: format) ?? .json
    }
}
