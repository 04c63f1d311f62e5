import Foundation
import PostgresNIO
import RuntimeSupport

/// Where the PostgreSQL store connects, read from `DATABASE_URL` and `DATABASE_POOL_SIZE`.
///
/// `DATABASE_URL` is `postgres://user:password@host:port/database?sslmode=…` (or
/// `postgresql://`), as libpq reads it: user, password, port (5432) and database (the user's
/// name) may be left out; `?host=/path` connects through the Unix socket in that folder instead
/// of TCP. `sslmode` is honoured as libpq defines it: `disable`; `allow` and `prefer` (the
/// default: TLS when the server offers it); `require` (TLS, certificate not checked);
/// `verify-ca` (TLS, certificate checked against the system's authorities, host name not);
/// `verify-full` (both). `DATABASE_SCHEMA` (default `public`) names the schema the tables live in
/// (created when missing), so that several deployments can share one database.
public struct PostgresSettings: Sendable, Equatable {
    /// What `sslmode` asks for.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// Treated as `prefer`.
        case allow
        /// TLS when the server offers it, without checking its certificate.
        case prefer
        /// TLS, without checking the certificate.
        case require
        /// TLS with the certificate checked against the system's authorities; the host name not.
        case verifyCA = "verify-ca"
        /// TLS with the certificate and the host name checked.
        case verifyFull = "verify-full"
    }

    /// The server's host name or address (TCP), when not through a socket.
    public var host: String?
    /// The server's port.
    public var port: Int
    /// The folder of the server's Unix socket, when connecting through one.
    public var socketFolder: String?
    /// The user.
    public var username: String
    /// The password, if any.
    public var password: String?
    /// The database.
    public var database: String
    /// `sslmode`.
    public var tls: TLSMode
    /// The schema of the tables (`DATABASE_SCHEMA`, default `public`).
    public var schema: String
    /// The most connections this process opens (`DATABASE_POOL_SIZE`, default 10), one of them
    /// held by the outbox listener.
    public var poolSize: Int

    /// Reads `DATABASE_URL` and `DATABASE_POOL_SIZE`.
    /// - Parameter variables: The variables.
    /// - Throws: ``ConfigurationError`` naming the variable when one is missing or unusable.
    public init(_ variables: EnvironmentVariables) throws {
        guard let url = variables["DATABASE_URL"] else {
            throw ConfigurationError(
                variable: "DATABASE_URL",
                reason: "must be set when METADATA_BACKEND=postgres (postgres://user:password@host:5432/database)")
        }
        try self.init(
            url: url, schema: variables["DATABASE_SCHEMA"] ?? "public",
            poolSize: try variables.integer("DATABASE_POOL_SIZE", default: 10, in: 2...500))
    }

    /// Reads a connection URL.
    /// - Parameters:
    ///   - url: The `postgres://` URL.
    ///   - schema: The schema of the tables.
    ///   - poolSize: The most connections to open.
    /// - Throws: ``ConfigurationError`` (`DATABASE_URL`) when the URL is unusable, or
    ///   (`DATABASE_SCHEMA`) when the schema is not a plain lower-case name.
    public init(url: String, schema: String = "public", poolSize: Int = 10) throws {
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw ConfigurationError(
                variable: "DATABASE_SCHEMA",
                reason:
                    "must be 1 to 63 lower-case letters, digits or '_', not starting with a digit (got \"\(schema)\")")
        }
        self.schema = schema
        func refuse(_ reason: String) -> ConfigurationError {
            ConfigurationError(variable: "DATABASE_URL", reason: reason)
        }
        guard let components = URLComponents(string: url),
            ["postgres", "postgresql"].contains(components.scheme?.lowercased() ?? "")
        else { throw refuse("must be a postgres:// or postgresql:// URL") }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let username = components.user?.removingPercentEncoding ?? ""
        guard !username.isEmpty else { throw refuse("must name a user (postgres://user@host/database)") }
        self.username = username
        self.password = components.password?.removingPercentEncoding
        self.port = components.port ?? 5432
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.removingPercentEncoding.flatMap { $0.isEmpty ? nil : $0 } ?? username
        if let folder = query["host"], folder.hasPrefix("/") {
            self.socketFolder = folder
            self.host = nil
        } else {
            guard let host = components.host, !host.isEmpty else {
                throw refuse("must name a host (postgres://user@host/database, or ?host=/socket/folder)")
            }
            self.host = host
            self.socketFolder = nil
        }
        let mode = query["sslmode"] ?? "prefer"
        guard let tls = TLSMode(rawValue: mode) else {
            throw refuse(
                "has sslmode=\(mode); accepted: \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.tls = tls
        self.poolSize = poolSize
    }

    /// The client configuration these settings describe.
    var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketFolder {
            configuration = PostgresClient.Configuration(
                unixSocketPath: (socketFolder as NSString).appendingPathComponent(".s.PGSQL.\(port)"),
                username: username, password: password, database: database)
        } else {
            var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
            switch tls {
            case .disable, .allow, .prefer, .require: tlsConfiguration.certificateVerification = .none
            case .verifyCA: tlsConfiguration.certificateVerification = .noHostnameVerification
            case .verifyFull: tlsConfiguration.certificateVerification = .fullVerification
            }
            let clientTLS: PostgresClient.Configuration.TLS =
                switch tls {
                case .disable: .disable
                case .allow, .prefer: .prefer(tlsConfiguration)
                case .require, .verifyCA, .verifyFull: .require(tlsConfiguration)
                }
            configuration = PostgresClient.Configuration(
                host: host ?? "localhost", port: port, username: username, password: password, database: database,
                tls: clientTLS)
        }
        // The schema, then `public`, where pgvector's type lives.
        configuration.options.additionalStartupParameters = [
            ("search_path", schema == "public" ? "public" : "\(schema), public")
        ]
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// Where the server is, for messages (never the password).
    public var serverDescription: String {
        "\(username)@\(socketFolder ?? host ?? "localhost"):\(port)/\(database) (schema \(schema))"
    }
}
