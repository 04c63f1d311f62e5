import ApiKeys
import Foundation
import FunctionRouter
import FunctionsFramework
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ManageTeams
import ManageUsers
import NIOCore
import ProcessEmbedding
import RuntimeSupport
import Search
import Testing
import UploadImage

@Suite("The production URL map and the local router")
struct FunctionRouterTests {
    @Test("every endpoint of every function is routed to the service whose binary serves it")
    func mapRoutesEveryEndpoint() throws {
        let api = try TestAPI()
        // Which binary hosts each function (Functions/*/Main): the dead-letter endpoints run in
        // process-embedding, beside the processing they replay into.
        let functions: [(function: any HTTPFunction, service: String)] = [
            (ManageTeamsFunction(services: api.services), "manage-teams"),
            (ManageUsersFunction(services: api.services), "manage-users"),
            (ApiKeysFunction(services: api.services), "api-keys"),
            (UploadImageFunction(api: api.services, images: api.images), "upload-image"),
            (CollectionsFunction(api: api.services, images: api.images), "upload-image"),
            (SearchFunction(api: api.services, images: api.images), "search"),
            (DeadLettersFunction(api: api.services, images: api.images), "process-embedding"),
        ]
        var checked = 0
        for (function, service) in functions {
            let routes = FunctionRoutes(router: Router(context: FunctionContext.self))
            function.registerEndpoints(on: routes)
            #expect(!routes.endpoints.isEmpty, "\(function.name) registered nothing")
            for endpoint in routes.endpoints {
                #expect(
                    ServiceURLMap.production.service(for: endpoint.path) == service,
                    "\(endpoint) is served by \(service)")
                checked += 1
            }
        }
        #expect(checked > 30)
        // Event deliveries and the scheduler's relay call go to a service's own URL, never through the map.
        #expect(ServiceURLMap.production.service(for: "/internal/outbox/relay") == nil)
        #expect(ServiceURLMap.production.service(for: "/") == nil)
    }

    @Test("a rule matches its prefix at a segment boundary, and the longest prefix wins")
    func matching() {
        let map = ServiceURLMap(rules: [.init("/api/v1/images", "images"), .init("/api/v1/images/special", "special")])
        #expect(map.service(for: "/api/v1/images") == "images")
        #expect(map.service(for: "/api/v1/images/1/download") == "images")
        #expect(map.service(for: "/api/v1/imagesx") == nil)
        #expect(map.service(for: "/api/v1/images/special/1") == "special")
        #expect(map.service(for: "/api/v1") == nil)
        #expect(ServiceURLMap.urlVariable(for: "process-embedding") == "PROCESS_EMBEDDING_URL")
    }

    /// Every service URL variable of the production map, each pointing at `base`.
    static func upstreamVariables(_ base: String) -> [String: String] {
        Dictionary(
            uniqueKeysWithValues: ServiceURLMap.production.services.map { (ServiceURLMap.urlVariable(for: $0), base) })
    }

    @Test("the router needs every service's base URL, as an http(s) URL without a path")
    func configuration() throws {
        var variables = Self.upstreamVariables("http://127.0.0.1:9")
        #expect(try FunctionRouterConfiguration(EnvironmentVariables(variables)).upstreams.count == 6)
        variables["SEARCH_URL"] = nil
        #expect(throws: ConfigurationError.self) { try FunctionRouterConfiguration(EnvironmentVariables(variables)) }
        do {
            _ = try FunctionRouterConfiguration(EnvironmentVariables(variables))
        } catch let error as ConfigurationError {
            #expect(error.variable == "SEARCH_URL")
        }
        variables["SEARCH_URL"] = "http://127.0.0.1:9/api"
        #expect(throws: ConfigurationError.self) { try FunctionRouterConfiguration(EnvironmentVariables(variables)) }
        variables["SEARCH_URL"] = "127.0.0.1:9"
        #expect(throws: ConfigurationError.self) { try FunctionRouterConfiguration(EnvironmentVariables(variables)) }
        variables["SEARCH_URL"] = "http://127.0.0.1:9, http://127.0.0.1:10"
        #expect(
            try FunctionRouterConfiguration(EnvironmentVariables(variables)).upstreams["search"]
                == ["http://127.0.0.1:9", "http://127.0.0.1:10"])
        variables["SEARCH_URL"] = "http://127.0.0.1:9,127.0.0.1:10"
        #expect(throws: ConfigurationError.self) { try FunctionRouterConfiguration(EnvironmentVariables(variables)) }
    }

    /// A service that answers `GET /api/v1/search` with its name.
    static func namedService(_ name: String) -> some ApplicationProtocol {
        let router = Router()
        router.get("/api/v1/search") { _, _ in name }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    @Test("a service's replicas take its requests in turn")
    func replicasInTurn() async throws {
        try await Self.namedService("first").test(.live) { first in
            try await Self.namedService("second").test(.live) { second in
                var variables = Self.upstreamVariables("http://127.0.0.1:9")
                variables["SEARCH_URL"] =
                    "http://127.0.0.1:\(try #require(first.port)),http://127.0.0.1:\(try #require(second.port))"
                let configuration = try FunctionRouterConfiguration(EnvironmentVariables(variables))
                let router = FunctionRouterHost.buildApplication(configuration, logger: Logger(label: "router-test"))
                try await router.test(.live) { client in
                    var answers: [String] = []
                    for _ in 0..<4 {
                        try await client.execute(uri: "/api/v1/search", method: .get) { response in
                            answers.append(String(buffer: response.body))
                        }
                    }
                    #expect(answers == ["first", "second", "first", "second"])
                }
            }
        }
    }

    /// A service that echoes what it received, and answers one path with a redirect.
    static func echoService() -> some ApplicationProtocol {
        let router = Router()
        router.post("/api/v1/images") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 24)
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            headers[HTTPField.Name("X-Seen-Path")!] = request.uri.description
            headers[HTTPField.Name("X-Seen-Forwarded-For")!] = request.headers[HTTPField.Name("X-Forwarded-For")!]
            headers[HTTPField.Name("X-Seen-Key")!] = request.headers[HTTPField.Name("X-API-Key")!]
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
        }
        router.get("/healthz") { _, _ in "ok" }
        router.get("/api/v1/images/1/download") { _, _ in
            Response(status: .temporaryRedirect, headers: [.location: "https://storage.example/signed?x=1"])
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    @Test(
        "the router streams bodies both ways, keeps the query and the caller's headers, passes redirects on unfollowed, and answers 503 with Retry-After for a service that refuses connections"
    )
    func forwarding() async throws {
        try await Self.echoService().test(.live) { service in
            let port = try #require(service.port)
            var variables = Self.upstreamVariables("http://127.0.0.1:\(port)")
            variables["SEARCH_URL"] = "http://127.0.0.1:1"
            let configuration = try FunctionRouterConfiguration(EnvironmentVariables(variables))
            let router = FunctionRouterHost.buildApplication(configuration, logger: Logger(label: "router-test"))
            try await router.test(.live) { client in
                let payload = ByteBuffer(bytes: (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
                try await client.execute(
                    uri: "/api/v1/images?collection_id=a&tags=b", method: .post,
                    headers: [HTTPField.Name("X-API-Key")!: "k"],
                    body: payload
                ) { response in
                    #expect(response.status == .ok)
                    #expect(response.body == payload)
                    #expect(response.headers[HTTPField.Name("X-Seen-Path")!] == "/api/v1/images?collection_id=a&tags=b")
                    #expect(response.headers[HTTPField.Name("X-Seen-Key")!] == "k")
                    #expect(response.headers[HTTPField.Name("X-Seen-Forwarded-For")!] == "127.0.0.1")
                }
                try await client.execute(uri: "/api/v1/images/1/download", method: .get) { response in
                    #expect(response.status == .temporaryRedirect)
                    #expect(response.headers[.location] == "https://storage.example/signed?x=1")
                }
                try await client.execute(uri: "/api/v1/search", method: .get) { response in
                    // Nothing was sent (the connection was refused): safe to retry, as a load
                    // balancer says while no instance is up.
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.retryAfter] == "1")
                    // Which address and which network error stay in the log.
                    #expect(
                        String(buffer: response.body)
                            == #"{"detail":"The search service is not taking requests at the moment; retry"}"#)
                }
                try await client.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(String(buffer: response.body).contains("search"))
                }
                try await client.execute(uri: "/openapi.json", method: .get) { response in
                    #expect(response.status == .notFound)
                    #expect(String(buffer: response.body).contains("detail"))
                }
            }
        }
    }
}
