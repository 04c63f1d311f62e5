import Foundation
import FunctionsFramework
import OutboundHTTP
import Testing

/// Every call to a remote service (Firestore, Cloud Storage, Pub/Sub, Qdrant, Vertex AI: each
/// adapter's ``ServiceCaller``) is timed in `outbound_request_duration_seconds` by dependency and
/// status; here calls to fake-gcs-server under a dependency name of this test's own, so that the
/// other suites' calls, running beside it, do not move its series.
@Suite("Outbound call metrics")
struct OutboundMetricsTests {
    /// The count of one series of the histogram in `GET /metrics`'s text.
    static func count(dependency: String, status: String) -> Int {
        let prefix =
            #"outbound_request_duration_seconds_count{dependency="\#(dependency)",http_response_status_code="\#(status)"} "#
        let line = ProcessMetrics.text().split(separator: "\n").first { $0.hasPrefix(prefix) }
        return line.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }

    @Test("each call is counted by its dependency and status; a refused connection as an error")
    func callsByStatus() async throws {
        guard let endpoint = TestServers.storageEmulator else { return }  // TestServerTests fails in CI
        ProcessMetrics.bootstrap()
        let dependency = "metrics-test-\(UUID().uuidString.prefix(8))"
        let caller = ServiceCaller(api: "Cloud Storage (test)", dependency: dependency)
        let listed = try await caller.send(
            .GET, "\(endpoint)/storage/v1/b?project=test-project", operation: "list buckets", idempotent: true)
        #expect(listed.status.code == 200)
        let missing = try await caller.send(
            .GET, "\(endpoint)/storage/v1/b/no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())",
            operation: "read a bucket", idempotent: true)
        #expect(missing.status.code == 404)
        #expect(Self.count(dependency: dependency, status: "200") == 1)
        #expect(Self.count(dependency: dependency, status: "404") == 1)
        // Port 1 on loopback: nothing listens, the call is never answered (one attempt when not idempotent).
        await #expect(throws: ServiceCallError.self) {
            _ = try await caller.send(.GET, "http://127.0.0.1:1/", operation: "nothing", idempotent: false)
        }
        #expect(Self.count(dependency: dependency, status: "error") >= 1)
    }
}
