import Configuration
import Foundation
import FunctionsFramework
import Logging
import Testing

@Suite("Configuration from the environment and .env")
struct ConfigurationTests {
    @Test("defaults when nothing is set")
    func defaults() throws {
        let configuration = try ServerConfiguration(EnvironmentVariables([:]))
        #expect(configuration == ServerConfiguration())
        #expect(configuration.port == 8080)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.logLevel == .info)
    }

    @Test("logs are text lines on a terminal outside production, JSON lines otherwise, unless LOG_FORMAT says")
    func logFormat() throws {
        func format(_ variables: [String: String], terminal: Bool) throws -> LogFormat {
            try ServerConfiguration(EnvironmentVariables(variables), standardOutputIsTerminal: terminal).logFormat
        }
        #expect(try format([:], terminal: true) == .text)
        #expect(try format([:], terminal: false) == .json)
        #expect(try format(["ENVIRONMENT": "production"], terminal: true) == .json)
        #expect(try format(["LOG_FORMAT": "text"], terminal: false) == .text)
        #expect(try format(["LOG_FORMAT": "json"], terminal: true) == .json)
        #expect(throws: ConfigurationError.self) { try format(["LOG_FORMAT": "xml"], terminal: false) }
    }

    @Test("every server variable is read")
    func allVariables() throws {
        let configuration = try ServerConfiguration(
            EnvironmentVariables([
                "PORT": "9000", "HOST": "127.0.0.1", "LOG_LEVEL": "DEBUG", "MAX_REQUEST_BODY_BYTES": "4096",
                "K_SERVICE": "manage-teams", "K_REVISION": "manage-teams-00001-abc", "GOOGLE_CLOUD_PROJECT": "p",
            ]))
        #expect(
            configuration
                == ServerConfiguration(
                    host: "127.0.0.1", port: 9000, logLevel: .debug, maxRequestBodyBytes: 4096,
                    service: "manage-teams", revision: "manage-teams-00001-abc", projectID: "p", trustedProxies: 1))
        let behindBalancer = try ServerConfiguration(
            EnvironmentVariables([
                "K_SERVICE": "search", "TRUSTED_PROXIES": "2", "HTTP_BODY_MIN_BYTES_PER_SECOND": "0",
                "HTTP_BODY_RATE_WINDOW_SECONDS": "5",
            ]))
        #expect(behindBalancer.trustedProxies == 2)
        #expect(behindBalancer.connections.bodyMinimumRate == 0)
        #expect(behindBalancer.connections.bodyRateWindow == .seconds(5))
        #expect(try ServerConfiguration(EnvironmentVariables([:])).trustedProxies == 0)
    }

    @Test("the client is the X-Forwarded-For entry as many places from the end as there are trusted proxies")
    func clientAddress() {
        let chain = ["203.0.113.9, 198.51.100.7", "130.211.0.1"]
        #expect(ClientAddressMiddleware.client(forwardedFor: chain, trustedProxies: 0) == nil)
        #expect(ClientAddressMiddleware.client(forwardedFor: chain, trustedProxies: 1) == "130.211.0.1")
        #expect(ClientAddressMiddleware.client(forwardedFor: chain, trustedProxies: 2) == "198.51.100.7")
        #expect(ClientAddressMiddleware.client(forwardedFor: chain, trustedProxies: 4) == nil, "shorter than the chain")
        #expect(ClientAddressMiddleware.client(forwardedFor: [], trustedProxies: 1) == nil)
    }

    @Test("credentials in a logged URL are redacted, whatever their case; other parameters are kept")
    func redactedURLs() {
        #expect(
            RequestLoggingMiddleware.redacted(path: "/internal/outbox/relay", query: "token=abc&limit=5")
                == "/internal/outbox/relay?token=REDACTED&limit=5")
        #expect(
            RequestLoggingMiddleware.redacted(path: "/x", query: "X-Goog-Signature=s&Key=k&q=red")
                == "/x?X-Goog-Signature=REDACTED&Key=REDACTED&q=red")
        #expect(RequestLoggingMiddleware.redacted(path: "/x", query: "%74oken=abc") == "/x?%74oken=REDACTED")
        #expect(RequestLoggingMiddleware.redacted(path: "/x", query: nil) == "/x")
    }

    @Test(
        "CORS_ORIGINS as a JSON list or comma-separated",
        arguments: [
            #"["https://a.example", "https://b.example"]"#, "https://a.example, https://b.example",
        ])
    func corsOrigins(_ value: String) throws {
        let configuration = try ServerConfiguration(EnvironmentVariables(["CORS_ORIGINS": value]))
        #expect(configuration.corsOrigins == ["https://a.example", "https://b.example"])
    }

    @Test(
        "an invalid variable fails with one line naming it",
        arguments: [
            ("PORT", "eighty", "invalid configuration: PORT must be an integer from 0 to 65535 (got \"eighty\")"),
            ("PORT", "70000", "invalid configuration: PORT must be an integer from 0 to 65535 (got \"70000\")"),
            ("LOG_LEVEL", "loud", "invalid configuration: LOG_LEVEL must be one of"),
            ("CORS_ORIGINS", "[1, 2", "invalid configuration: CORS_ORIGINS must be a JSON list"),
            ("MAX_REQUEST_BODY_BYTES", "12", "invalid configuration: MAX_REQUEST_BODY_BYTES must be an integer"),
        ])
    func invalidVariable(name: String, value: String, message: String) throws {
        let error = #expect(throws: ConfigurationError.self) {
            try ServerConfiguration(EnvironmentVariables([name: value]))
        }
        #expect(error?.variable == name)
        #expect(error?.description.hasPrefix(message) == true, "got \(error?.description ?? "")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test(".env lines: comments, export, quotes, inline comments, blank lines")
    func dotEnvParsing() throws {
        let text = """
            # a comment
            export PORT=9001

            LOG_LEVEL = "debug"
            CORS_ORIGINS='["https://a.example"]'
            API_KEY_EXPIRY_DAYS=30 # a month
            EMPTY=
            """
        let values = try EnvironmentVariables.parseDotEnv(text)
        #expect(
            values == [
                "PORT": "9001", "LOG_LEVEL": "debug", "CORS_ORIGINS": #"["https://a.example"]"#,
                "API_KEY_EXPIRY_DAYS": "30", "EMPTY": "",
            ])
    }

    @Test(".env errors name the line")
    func dotEnvErrors() {
        let error = #expect(throws: ConfigurationError.self) {
            try EnvironmentVariables.parseDotEnv("PORT=1\nnot a pair\n", path: "/tmp/x.env")
        }
        #expect(error?.description == "invalid configuration: /tmp/x.env line 2 is not NAME=value")
    }

    @Test("the process environment wins over the .env file")
    func environmentOverridesDotEnv() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent(".env")
        try "PORT=7000\nLOG_LEVEL=error\n".write(to: file, atomically: true, encoding: .utf8)
        let variables = try EnvironmentVariables(environment: ["PORT": "7001"], dotEnvPath: file.path)
        #expect(variables["PORT"] == "7001")
        #expect(variables["LOG_LEVEL"] == "error")
        let missing = try EnvironmentVariables(environment: [:], dotEnvPath: folder.appendingPathComponent("no").path)
        #expect(missing.values.isEmpty)
    }

    @Test("swift-configuration's reader serves scoped reads, the environment first, and restricted copies")
    func readerScopesAndRestricts() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent(".env")
        try "QDRANT_HOST=from-file\nQDRANT_PORT=6333\nAPI_KEY_SECRET=s\n".write(
            to: file, atomically: true, encoding: .utf8)
        let variables = try EnvironmentVariables(
            environment: ["QDRANT_HOST": "vectors.internal"], dotEnvPath: file.path)
        let qdrant = variables.reader.scoped(to: "qdrant")
        #expect(qdrant.string(forKey: "host") == "vectors.internal")
        #expect(qdrant.int(forKey: "port") == 6333)
        let restricted = variables.restricted(to: ["QDRANT_HOST", "QDRANT_PORT"])
        #expect(restricted["API_KEY_SECRET"] == nil)
        #expect(restricted["QDRANT_PORT"] == "6333")
        #expect(restricted.values == ["QDRANT_HOST": "vectors.internal", "QDRANT_PORT": "6333"])
    }
}
