import Foundation
import FunctionsFramework
import HTTPTypes
import Testing

/// `GET /metrics` and who may read it. (What the numbers say is checked by
/// `scripts/check-metrics.py` with `prometheus_client`'s own parser, in the test command.)
@Suite("The metrics endpoint")
struct MetricsEndpointTests {
    static func configuration(_ variables: [String: String]) throws -> ServerConfiguration {
        try ServerConfiguration(EnvironmentVariables(variables))
    }

    @Test("open in development; in production only with METRICS_TOKEN as a bearer token, and absent without one")
    func access() async throws {
        let open = try await probe(.get, "/metrics", configuration: try Self.configuration([:]))
        #expect(open.status == .ok)
        #expect(open.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")

        let closed = try Self.configuration(["ENVIRONMENT": "production"])
        #expect(closed.metricsAccess == .closed)
        #expect(try await probe(.get, "/metrics", configuration: closed).status == .notFound)

        let token = "0123456789abcdef-metrics"
        let guarded = try Self.configuration(["ENVIRONMENT": "production", "METRICS_TOKEN": token])
        #expect(try await probe(.get, "/metrics", configuration: guarded).status == .unauthorized)
        let wrong: HTTPFields = [.authorization: "Bearer \(token)x"]
        #expect(try await probe(.get, "/metrics", headers: wrong, configuration: guarded).status == .unauthorized)
        let right: HTTPFields = [.authorization: "Bearer \(token)"]
        #expect(try await probe(.get, "/metrics", headers: right, configuration: guarded).status == .ok)

        #expect(throws: ConfigurationError.self) { try Self.configuration(["METRICS_TOKEN": "short"]) }
    }

    @Test("requests are counted by route template, method and status, never by raw path")
    func routesNotPaths() async throws {
        let id = UUID().uuidString
        _ = try await probe(.get, "/items/\(id)")
        _ = try await probe(.get, "/conflict")
        _ = try await probe(.get, "/no/such/route/\(id)")
        let text = try await probe(.get, "/metrics").body
        #expect(text.contains(#"http_route="/items/{item_id}""#))
        #expect(text.contains(#"http_route="/conflict""#) && text.contains(#"http_response_status_code="409""#))
        #expect(text.contains(#"http_route="unmatched""#))
        #expect(!text.contains(id))
    }
}
