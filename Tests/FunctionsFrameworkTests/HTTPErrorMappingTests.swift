import Foundation
import FunctionsFramework
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

/// A function with one endpoint per kind of failure, to check how each is answered.
struct ProbeFunction: HTTPFunction {
    struct Payload: Codable, Sendable {
        let name: String
        let count: Int
    }

    struct Secret: Error {}

    let name = "probe"

    func registerEndpoints(on routes: FunctionRoutes) {
        routes.on(.post, "/echo", status: .created, body: Payload.self) { payload, _ in payload }
        routes.on(.get, "/crash") { _ -> Payload in throw Secret() }
        routes.on(.get, "/conflict") { _ -> Payload in throw FunctionError.conflict("Already there") }
        routes.on(.get, "/items/{item_id}") { call in ["id": try call.pathUUID("item_id").uuidString] }
        routes.on(.get, "/page") { call in ["limit": try call.query.integer("limit", default: 5, in: 1...10)] }
        routes.on(.delete, "/items/{item_id}") { _ in NoContent() }
    }
}

/// Runs requests against a router serving ``ProbeFunction`` and returns status, headers, body.
func probe(
    _ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: String? = nil,
    configuration: ServerConfiguration = ServerConfiguration(), logger: Logger? = nil
) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, body: String) {
    let (router, _) = FunctionServer.buildRouter(
        functions: [ProbeFunction()], configuration: configuration, readiness: {})
    let application = Application(router: router, logger: logger ?? Logger(label: "probe"))
    var sent = headers
    if body != nil && sent[.contentType] == nil { sent[.contentType] = "application/json" }
    let fields = sent
    return try await application.test(.router) { client in
        try await client.execute(
            uri: uri, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) }
        ) { ($0.status, $0.headers, String(buffer: $0.body)) }
    }
}

func detail(_ body: String) throws -> String? {
    try JSONDecoder().decode([String: String].self, from: Data(body.utf8))["detail"]
}

func issues(_ body: String) throws -> [ValidationError.Issue] {
    try JSONDecoder().decode([String: [ValidationError.Issue]].self, from: Data(body.utf8))["detail"] ?? []
}

@Suite("Errors are JSON with the right status")
struct HTTPErrorMappingTests {
    @Test("a valid body reaches the handler and is answered with the endpoint's status")
    func success() async throws {
        let result = try await probe(.post, "/echo", body: #"{"name": "a", "count": 2}"#)
        #expect(result.status == .created)
        #expect(result.headers[.contentType] == "application/json")
        #expect(result.body == #"{"count":2,"name":"a"}"#)
    }

    @Test("an unknown route is a JSON 404")
    func unknownRoute() async throws {
        let result = try await probe(.get, "/nowhere")
        #expect(result.status == .notFound)
        #expect(try detail(result.body) == "Not Found")
        #expect(result.headers[.contentType] == "application/json")
    }

    @Test("a known path with another method is a JSON 405 with Allow")
    func wrongMethod() async throws {
        let result = try await probe(.put, "/items/6f1d4c4e-4d53-4a4f-9e8b-2f0e8f5f2c11")
        #expect(result.status == .methodNotAllowed)
        #expect(result.headers[.allow] == "DELETE, GET, HEAD")
        #expect(try detail(result.body) == "Method Not Allowed")
    }

    @Test("an unexpected error is a generic JSON 500 that reveals nothing")
    func unexpectedError() async throws {
        let result = try await probe(.get, "/crash")
        #expect(result.status == .internalServerError)
        #expect(try detail(result.body) == "Internal server error")
    }

    @Test("a FunctionError keeps its status and detail")
    func functionError() async throws {
        let result = try await probe(.get, "/conflict")
        #expect(result.status == .conflict)
        #expect(try detail(result.body) == "Already there")
    }

    @Test("a missing field is a 422 located in the body")
    func missingField() async throws {
        let result = try await probe(.post, "/echo", body: #"{"name": "a"}"#)
        #expect(result.status == .unprocessableContent)
        #expect(try issues(result.body) == [.init(loc: ["body", "count"], msg: "Field required", type: "missing")])
    }

    @Test("a field of the wrong type is a 422 naming the type")
    func wrongType() async throws {
        let result = try await probe(.post, "/echo", body: #"{"name": "a", "count": "two"}"#)
        #expect(result.status == .unprocessableContent)
        let issue = try #require(try issues(result.body).first)
        #expect(issue.loc == ["body", "count"])
        #expect(issue.type == "integer_type")
    }

    @Test("a body that is not JSON, or no body, is a 422", arguments: ["{nope", ""])
    func notJSON(_ body: String) async throws {
        let result = try await probe(.post, "/echo", body: body)
        #expect(result.status == .unprocessableContent)
        #expect(try issues(result.body).first?.loc == ["body"])
    }

    @Test("a malformed path id is a 422 located in the path")
    func malformedPathID() async throws {
        let result = try await probe(.get, "/items/not-a-uuid")
        #expect(result.status == .unprocessableContent)
        #expect(try issues(result.body).first?.loc == ["path", "item_id"])
    }

    @Test("out-of-range and non-integer query values are 422, not clamped", arguments: ["0", "11", "-3", "ten"])
    func queryBounds(_ value: String) async throws {
        let result = try await probe(.get, "/page?limit=\(value)")
        #expect(result.status == .unprocessableContent)
        #expect(try issues(result.body).first?.loc == ["query", "limit"])
    }

    @Test("a body over the configured limit is a JSON 413")
    func bodyTooLarge() async throws {
        let big = #"{"name": ""# + String(repeating: "x", count: 5000) + #"", "count": 1}"#
        let result = try await probe(
            .post, "/echo", body: big, configuration: ServerConfiguration(maxRequestBodyBytes: 1024))
        #expect(result.status == .contentTooLarge)
        #expect(try detail(result.body)?.contains("1024 bytes") == true)
    }

    @Test("health and readiness are served by every function")
    func health() async throws {
        #expect(try await probe(.get, "/healthz").body == #"{"status":"ok"}"#)
        let ready = try await probe(.get, "/readyz")
        #expect(ready.status == .ok)
        #expect(ready.body == #"{"status":"ready"}"#)
    }

    @Test("readiness answers 503 when the check fails")
    func notReady() async throws {
        struct Down: Error {}
        let (router, _) = FunctionServer.buildRouter(
            functions: [], configuration: ServerConfiguration(), readiness: { throw Down() })
        let status = try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { $0.status }
        }
        #expect(status == .serviceUnavailable)
        let (named, _) = FunctionServer.buildRouter(
            functions: [], configuration: ServerConfiguration(),
            readiness: { throw DependencyUnavailable(dependency: "the metadata store (PostgreSQL)", detail: "refused") }
        )
        let body = try await Application(router: named).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { String(buffer: $0.body) }
        }
        #expect(try detail(body) == "Not ready: the metadata store (PostgreSQL) does not answer")
    }
}

@Suite("CORS follows CORS_ORIGINS")
struct CORSTests {
    let configuration = ServerConfiguration(corsOrigins: ["https://app.example.com"])

    @Test("a listed origin gets Access-Control-Allow-Origin")
    func allowedOrigin() async throws {
        let result = try await probe(
            .get, "/healthz", headers: [.origin: "https://app.example.com"], configuration: configuration)
        #expect(result.headers[.accessControlAllowOrigin] == "https://app.example.com")
    }

    @Test("an unlisted origin gets no CORS headers")
    func otherOrigin() async throws {
        let result = try await probe(
            .get, "/healthz", headers: [.origin: "https://evil.example.com"], configuration: configuration)
        #expect(result.status == .ok)
        #expect(result.headers[.accessControlAllowOrigin] == nil)
    }

    @Test("a preflight from a listed origin is answered with the allowed methods and headers")
    func preflight() async throws {
        let result = try await probe(
            .options, "/echo",
            headers: [.origin: "https://app.example.com", .accessControlRequestMethod: "POST"],
            configuration: configuration)
        #expect(result.status == .noContent)
        #expect(result.headers[.accessControlAllowMethods]?.contains("POST") == true)
        #expect(result.headers[.accessControlAllowHeaders]?.contains("X-API-Key") == true)
    }
}

@Suite("Structured logs in Cloud Logging's format")
struct LoggingTests {
    @Test("an entry has severity, message, time and metadata at the top level")
    func format() throws {
        let line = CloudLoggingLogHandler.format(
            level: .warning, message: "careful", label: "test", metadata: ["team_id": "t1"],
            time: Date(timeIntervalSince1970: 0))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["severity"] as? String == "WARNING")
        #expect(object["message"] as? String == "careful")
        #expect(object["time"] as? String == "1970-01-01T00:00:00.000Z")
        #expect(object["team_id"] as? String == "t1")
        #expect(!line.contains("\n"))
    }

    @Test("a text line: time, level, message, then the fields that matter, quoted where needed")
    func textLine() {
        let line = CloudLoggingLogHandler.textLine(
            level: .warning, message: "metadata store (PostgreSQL at 127.0.0.1:1) unreachable",
            metadata: [
                "team_id": "t1", "reason": "connection refused", "logging.googleapis.com/trace": "projects/p/traces/1",
                "httpRequest": ["status": "200"],
            ], time: Date(timeIntervalSince1970: 0))
        #expect(
            line
                == #"1970-01-01T00:00:00.000Z WARNING metadata store (PostgreSQL at 127.0.0.1:1) unreachable reason="connection refused" team_id=t1"#
        )
    }

    @Test("levels map to Cloud Logging severities")
    func severities() {
        #expect(CloudLoggingLogHandler.severity(.trace) == "DEBUG")
        #expect(CloudLoggingLogHandler.severity(.notice) == "NOTICE")
        #expect(CloudLoggingLogHandler.severity(.critical) == "CRITICAL")
    }

    @Test("traceparent and X-Cloud-Trace-Context are read; malformed values are ignored")
    func traceHeaders() {
        let w3c = TraceContext(headers: [
            HTTPField.Name("traceparent")!: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ])
        #expect(
            w3c == TraceContext(traceID: "0af7651916cd43dd8448eb211c80319c", spanID: "b7ad6b7169203331", sampled: true))
        let cloud = TraceContext(headers: [
            HTTPField.Name("X-Cloud-Trace-Context")!: "105445aa7843bc8bf206b12000100000/1;o=1"
        ])
        #expect(cloud == TraceContext(traceID: "105445aa7843bc8bf206b12000100000", spanID: "1", sampled: true))
        #expect(TraceContext(headers: [HTTPField.Name("traceparent")!: "00-xyz-1-01"]) == nil)
        #expect(TraceContext(headers: [HTTPField.Name("X-Cloud-Trace-Context")!: "short/1"]) == nil)
    }

    @Test("a request's log line carries its trace, qualified by the project, and httpRequest")
    func requestLogCarriesTrace() async throws {
        let lines = Recorder<String>()
        let logger = Logger(label: "probe") { label in
            CloudLoggingLogHandler(label: label, level: .info) { line in lines.append(line) }
        }
        let item = UUID().uuidString
        _ = try await probe(
            .get, "/items/\(item)",
            headers: [HTTPField.Name("X-Cloud-Trace-Context")!: "105445aa7843bc8bf206b12000100000/7;o=1"],
            configuration: ServerConfiguration(projectID: "my-project"), logger: logger)
        // Health checks succeed every few seconds: at debug, below this logger's level.
        _ = try await probe(
            .get, "/healthz", configuration: ServerConfiguration(projectID: "my-project"), logger: logger)
        #expect(lines.withLock { $0.allSatisfy { !$0.contains("/healthz") } })
        let line = try #require(lines.withLock { $0.first { $0.contains("GET /items/\(item) 200") } })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(
            object["logging.googleapis.com/trace"] as? String
                == "projects/my-project/traces/105445aa7843bc8bf206b12000100000")
        #expect(object["logging.googleapis.com/spanId"] as? String == "7")
        let http = try #require(object["httpRequest"] as? [String: Any])
        #expect(http["status"] as? Int == 200)
        #expect(http["requestMethod"] as? String == "GET")
    }
}
