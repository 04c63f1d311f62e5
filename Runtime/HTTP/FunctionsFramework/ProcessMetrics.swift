import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Locking
import Metrics
import Prometheus

/// Who may read `GET /metrics`.
public enum MetricsAccess: Sendable, Equatable {
    /// Anyone (development).
    case open
    /// Callers presenting this token as `Authorization: Bearer …` (`METRICS_TOKEN`).
    case bearer(String)
    /// Nobody: the route is not served (production without `METRICS_TOKEN`).
    case closed
}

/// The process's metrics: swift-metrics, bootstrapped once per process onto a Prometheus
/// registry that `GET /metrics` writes out in the Prometheus text format.
public enum ProcessMetrics {
    /// Every metric the process records.
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request durations: 1 ms to 60 s.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        MetricsSystem.bootstrap(factory)
        return true
    }()

    /// Routes swift-metrics to ``registry`` (the first call does; later ones do nothing).
    public static func bootstrap() {
        _ = bootstrapped
    }

    /// Reads gauges at scrape time: their names and values now.
    public typealias GaugeReader = @Sendable () async throws -> [(name: String, value: Double)]

    private static let gaugeReaders = Locked<[String: GaugeReader]>([:])

    /// Sets what is read into gauges before each scrape, under a name (a later reader of the same
    /// name replaces it): values that live in a store, such as the outbox's depth.
    public static func readGauges(_ name: String, _ reader: @escaping GaugeReader) {
        gaugeReaders.withLock { $0[name] = reader }
    }

    /// Runs the gauge readers, each given at most `timeout` (one that fails or is late leaves its
    /// gauges as they were), then writes the registry in the Prometheus text format.
    public static func scrape(timeout: Duration = .seconds(2)) async -> String {
        let readers = gaugeReaders.withLock { Array($0.values) }
        await withTaskGroup(of: Void.self) { group in
            for reader in readers {
                group.addTask {
                    let values = await withTaskGroup(of: [(name: String, value: Double)]?.self) { race in
                        race.addTask { try? await reader() }
                        race.addTask {
                            try? await Task.sleep(for: timeout)
                            return nil
                        }
                        let first = await race.next() ?? nil
                        race.cancelAll()
                        return first
                    }
                    for (name, value) in values ?? [] { Gauge(label: name).record(value) }
                }
            }
        }
        return text()
    }

    /// The registry in the Prometheus text format.
    public static func text() -> String { registry.emitToString() }

    /// Whether a request may read the metrics under `access`.
    static func admits(_ request: Request, _ access: MetricsAccess) -> Bool {
        switch access {
        case .open: return true
        case .closed: return false
        case .bearer(let token):
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
            // Compared as digests, in constant time.
            return SHA256.hash(data: Data(header.dropFirst(7).utf8)) == SHA256.hash(data: Data(token.utf8))
        }
    }
}

/// Records every request under OpenTelemetry's HTTP server conventions:
/// `http_server_request_duration_seconds` (a histogram) by `http_route` (the route's template,
/// never the raw path; `unmatched` for no route), `http_request_method` and
/// `http_response_status_code`, and `http_server_active_requests` by method.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = FunctionContext

    func handle(
        _ request: Request, context: FunctionContext, next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        let method = request.method.rawValue
        let active = Meter(label: "http_server_active_requests", dimensions: [("http_request_method", method)])
        active.increment()
        defer { active.decrement() }
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(method, context, status: response.status.code, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            record(method, context, status: status, since: start)
            throw error
        }
    }

    private func record(_ method: String, _ context: FunctionContext, status: Int, since start: ContinuousClock.Instant)
    {
        // Hummingbird names a request no route matched `NotFound`; every route starts with "/".
        let route = context.endpointPath.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "unmatched"
        Timer(
            label: "http_server_request_duration_seconds",
            dimensions: [
                ("http_route", route), ("http_request_method", method), ("http_response_status_code", String(status)),
            ]
        ).recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1)))
    }
}
