import Foundation
import Metrics

/// What the image pipeline records through swift-metrics (the process chooses where it goes:
/// `GET /metrics` in the functions). Names follow Prometheus's conventions: `_total` counters,
/// `_seconds` histograms.
public enum PipelineMetrics {
    /// `image_uploads_total` by `outcome`: `stored`, `duplicate`, `empty`, `unsupported_format`,
    /// `undecodable`, `unknown_collection`.
    static func upload(_ outcome: UploadOutcome) {
        let name =
            switch outcome {
            case .stored: "stored"
            case .duplicate: "duplicate"
            case .empty: "empty"
            case .unsupportedFormat: "unsupported_format"
            case .undecodable: "undecodable"
            case .unknownCollection: "unknown_collection"
            }
        Counter(label: "image_uploads_total", dimensions: [("outcome", name)]).increment()
    }

    /// `image_processing_deliveries_total` by `outcome`: `embedded`, `failed` (an attempt, more
    /// to come), `gave_up` (the last attempt; dead-lettered), `postponed` (a dependency was
    /// down), `missing`, `already_done`, `exhausted`.
    static func processing(_ outcome: ProcessingOutcome) {
        let name =
            switch outcome {
            case .embedded: "embedded"
            case .failed: "failed"
            case .gaveUp: "gave_up"
            case .postponed: "postponed"
            case .missing: "missing"
            case .alreadyDone: "already_done"
            case .exhausted: "exhausted"
            }
        Counter(label: "image_processing_deliveries_total", dimensions: [("outcome", name)]).increment()
    }

    /// `image_processing_stage_duration_seconds` by `stage`: `thumbnail`, `phash`, `embed`,
    /// `index`, each timed when it succeeds.
    static func stage<T>(_ stage: String, _ work: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        let result = try await work()
        Timer(label: "image_processing_stage_duration_seconds", dimensions: [("stage", stage)])
            .recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1)))
        return result
    }

    /// `dead_letters_total` by `source`: `handler` (processing gave up on the image, or could
    /// not read the message) or `transport` (the outbox gave up delivering it).
    static func deadLettered(source: String) {
        Counter(label: "dead_letters_total", dimensions: [("source", source)]).increment()
    }

    /// `outbox_publish_duration_seconds`: one published message, from the call to the
    /// transport's answer; and `outbox_deliveries_total{outcome="delivered"}`.
    static func published(_ took: Duration) {
        Timer(label: "outbox_publish_duration_seconds").recordNanoseconds(Int64(took / .nanoseconds(1)))
        delivery("delivered")
    }

    /// `outbox_deliveries_total` by `outcome`: `delivered`, `retried` (refused; tried again
    /// later), `waiting` (the transport was unavailable), `dead_lettered`.
    static func delivery(_ outcome: String) {
        Counter(label: "outbox_deliveries_total", dimensions: [("outcome", outcome)]).increment()
    }

    /// `query_embedding_cache_lookups_total` by `result`: `hit` or `miss`.
    static func queryCache(hit: Bool) {
        Counter(label: "query_embedding_cache_lookups_total", dimensions: [("result", hit ? "hit" : "miss")])
            .increment()
    }
}
