// `search-bench qdrant HOST:PORT` (run by `scripts/bench-qdrant.sh`, `make bench-qdrant`): the
// embedded index against Qdrant's engine behind the Qdrant REST test double, started with
// `--approximate` so that its searches use the engine's HNSW index as a Qdrant server does.
//
// The same seeded vectors (COUNT × DIMENSIONS in clusters of 100, as embeddings of real images
// cluster; 90 % of them one team's) go into both; then the same
// queries, one at a time, measure:
// - the embedded index's search (exact: every vector of the team scored with BLAS);
// - the Qdrant index's search through the double (a `count` and a `query` call over HTTP);
// - the engine's own time for those two calls (the double's `X-Engine-Seconds`), so the double's
//   HTTP and validation overhead is reported apart from the engine; and `GET /readyz`, one round
//   trip through the double that does no engine work;
// - recall@10 of the HNSW search against the embedded index's exact top 10.
import AsyncHTTPClient
import BenchmarkSupport
import EmbeddedVectorIndex
import Foundation
import ImageAPICore
import NIOCore
import NIOHTTP1
import QdrantVectorIndex

/// The arguments of `search-bench qdrant` and `search-bench pgvector`: where the index under
/// comparison is, and the data's size.
struct ComparisonOptions {
    var target = ""
    // BENCH_QUICK: 2,000 vectors and 20 queries.
    var count = isQuickRun ? 2_000 : 100_000
    var dimensions = 512
    var queries = isQuickRun ? 20 : 200
    var dataRoot = ".build-bench"

    init(_ arguments: [String], usage: String) throws {
        var rest = arguments[...]
        guard let target = rest.popFirst() else {
            throw BenchmarkFailure(
                "usage: search-bench \(usage) [--count N] [--dimensions D] [--queries Q] [--data DIR]")
        }
        self.target = target
        while let argument = rest.popFirst() {
            switch argument {
            case "--count": count = Int(rest.popFirst() ?? "") ?? count
            case "--dimensions": dimensions = Int(rest.popFirst() ?? "") ?? dimensions
            case "--queries": queries = Int(rest.popFirst() ?? "") ?? queries
            case "--data": dataRoot = rest.popFirst() ?? dataRoot
            default: throw BenchmarkFailure("unknown argument \(argument)")
            }
        }
        dataRoot = absolutePath(dataRoot)
    }
}

/// The seeded data both comparisons load: COUNT vectors in clusters of 100, 90 % of them one
/// team's, and query vectors near random clusters' centres.
struct ComparisonData {
    let team = TeamID()
    let model: String
    let entries: [VectorEntry]
    let queryVectors: [[Float]]

    init(_ options: ComparisonOptions) {
        var generator = SeededGenerator(state: 512)
        let other = TeamID()
        let team = self.team
        model = "bench-random-\(options.dimensions)"
        let now = Date()
        let centers = (0..<max(1, options.count / 100)).map { _ in randomUnit(options.dimensions, using: &generator) }
        entries = (0..<options.count).map { [model] number in
            VectorEntry(
                imageID: ImageID(), teamID: number % 10 == 9 ? other : team, collectionID: nil, tags: ["bench"],
                createdAt: now.addingTimeInterval(Double(number)), model: model,
                vector: randomNear(centers[number % centers.count], using: &generator))
        }
        queryVectors = (0..<options.queries).map { _ in
            randomNear(centers[Int.random(in: 0..<centers.count, using: &generator)], using: &generator)
        }
    }

    /// The query of one vector: the team's 10 nearest of the model.
    func query(_ vector: [Float]) -> VectorQuery { VectorQuery(vector: vector, model: model, teamID: team, limit: 10) }

    /// Loads the entries into a new embedded index under `options.dataRoot` and times its search
    /// of every query vector: the latencies, each query's exact top 10, and the file to remove.
    func embeddedBaseline(
        _ options: ComparisonOptions
    ) async throws -> (
        times: [Double], exact: [[ImageID]], path: String
    ) {
        try FileManager.default.createDirectory(atPath: options.dataRoot, withIntermediateDirectories: true)
        let path = "\(options.dataRoot)/index-comparison-\(UUID().uuidString.prefix(8)).sqlite"
        let embedded = try SQLiteVectorIndex(path: path)
        let began = ContinuousClock.now
        for start in stride(from: 0, to: entries.count, by: 5000) {
            try await embedded.upsert(contentsOf: Array(entries[start..<min(start + 5000, entries.count)]))
        }
        print(String(format: "  embedded index loaded in %.1f s", seconds(ContinuousClock.now - began)))
        var times: [Double] = []
        var exact: [[ImageID]] = []
        for vector in queryVectors {
            let start = ContinuousClock.now
            let matches = try await embedded.search(query(vector))
            times.append(seconds(ContinuousClock.now - start))
            exact.append(matches.hits.map(\.imageID))
        }
        return (times, exact, path)
    }
}

/// A random unit vector.
func randomUnit(_ dimensions: Int, using generator: inout SeededGenerator) -> [Float] {
    normalised((0..<dimensions).map { _ in Float.random(in: -1...1, using: &generator) })
}

func normalised(_ values: [Float]) -> [Float] {
    let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return values.map { $0 / norm }
}

/// A unit vector near `center` (cosine about 0.7): embeddings of real images form clusters like
/// these, while uniformly random vectors are all about equally far apart, the case no
/// approximate index is built for.
func randomNear(_ center: [Float], using generator: inout SeededGenerator) -> [Float] {
    let scale = (3 / Float(center.count)).squareRoot()
    return normalised(center.map { $0 + scale * Float.random(in: -1...1, using: &generator) })
}

/// One call to the double, returning the client's round trip and the engine's time.
func timedCall(_ url: String, method: HTTPMethod, body: String?) async throws -> (round: Double, engine: Double) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    request.headers.add(name: "Content-Type", value: "application/json")
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let began = ContinuousClock.now
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
    let answer = try await response.body.collect(upTo: 16 << 20)
    let round = seconds(ContinuousClock.now - began)
    guard response.status == .ok else { throw BenchmarkFailure("\(url): \(String(buffer: answer))") }
    return (round, Double(response.headers.first(name: "X-Engine-Seconds") ?? "") ?? .nan)
}

func runQdrantComparison(_ options: ComparisonOptions) async throws {
    guard let colon = options.target.lastIndex(of: ":"),
        let port = Int(options.target[options.target.index(after: colon)...])
    else { throw BenchmarkFailure("usage: search-bench qdrant HOST:PORT [--count N] [--dimensions D] [--queries Q]") }
    let host = String(options.target[..<colon])
    print(
        "search-bench qdrant on \(ProcessInfo.processInfo.activeProcessorCount) cores: \(options.count) vectors × "
            + "\(options.dimensions), \(options.queries) queries, Qdrant test double at \(host):\(port)"
    )
    let data = ComparisonData(options)
    let (team, model, entries, queryVectors) = (data.team, data.model, data.entries, data.queryVectors)

    // Loading (not the measured part), and the embedded index's exact searches.
    let (embeddedTimes, exact, path) = try await data.embeddedBaseline(options)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let settings = QdrantSettings(
        host: host, port: port, collectionPrefix: "bench-\(UUID().uuidString.prefix(8).lowercased())")
    let qdrant = QdrantVectorIndex(settings: settings)
    let collectionURL = "\(settings.baseURL)/collections/\(settings.collection(for: model))"
    try await qdrant.prepare(model: model, dimensions: options.dimensions)
    var began = ContinuousClock.now
    for start in stride(from: 0, to: entries.count, by: 1000) {
        try await qdrant.upsert(contentsOf: Array(entries[start..<min(start + 1000, entries.count)]))
        if (start + 1000) % 20_000 == 0 { print("  qdrant: \(start + 1000) of \(entries.count) points written") }
    }
    print(String(format: "  qdrant loaded in %.1f s; waiting for the HNSW index", seconds(ContinuousClock.now - began)))
    began = ContinuousClock.now
    while true {
        let info = try await get(collectionURL, key: nil)
        if String(buffer: info).contains(#""status": "green""#) { break }
        try await Task.sleep(for: .milliseconds(500))
    }
    print(String(format: "  HNSW index built in %.1f s", seconds(ContinuousClock.now - began)))

    // The measured part: the same queries, one at a time, each backend in turn.
    let query = data.query
    var qdrantTimes: [Double] = []
    var recall = 0.0
    for (number, vector) in queryVectors.enumerated() {
        let start = ContinuousClock.now
        let matches = try await qdrant.search(query(vector))
        qdrantTimes.append(seconds(ContinuousClock.now - start))
        recall += Double(Set(matches.hits.map(\.imageID)).intersection(exact[number]).count) / 10
    }
    // The engine's share: the same two calls, sent directly, with the engine's own time read back.
    var engineTimes: [Double] = []
    var rawTimes: [Double] = []
    let filter =
        #"{"must": [{"key": "team_id", "match": {"value": "\#(team.lowercasedString)"}}, "#
        + #"{"key": "model", "match": {"value": "\#(model)"}}]}"#
    for vector in queryVectors {
        let numbers = vector.map { String($0) }.joined(separator: ",")
        let count = try await timedCall(
            "\(collectionURL)/points/count", method: .POST, body: #"{"filter": \#(filter), "exact": true}"#)
        let nearest = try await timedCall(
            "\(collectionURL)/points/query", method: .POST,
            body: #"{"query": [\#(numbers)], "filter": \#(filter), "limit": 10, "offset": 0, "with_payload": false}"#)
        engineTimes.append(count.engine + nearest.engine)
        rawTimes.append(count.round + nearest.round)
    }
    var readiness: [Double] = []
    for _ in queryVectors {
        readiness.append(try await timedCall("\(settings.baseURL)/readyz", method: .GET, body: nil).round)
    }

    let embeddedLatency = Latencies(values: embeddedTimes)
    let qdrantLatency = Latencies(values: qdrantTimes)
    print("  embedded index search (exact)                    \(embeddedLatency.summary)")
    print("  Qdrant index search through the double (HNSW)    \(qdrantLatency.summary)")
    print("    the same count + query sent directly           \(Latencies(values: rawTimes).summary)")
    print("    of which the engine's own time                 \(Latencies(values: engineTimes).summary)")
    print("    one round trip to the double (GET /readyz)     \(Latencies(values: readiness).summary)")
    print(
        String(
            format: "  Qdrant / embedded median latency: %.2f×; recall@10 of HNSW against exact search: %.3f",
            qdrantLatency.percentile(0.5) / embeddedLatency.percentile(0.5), recall / Double(queryVectors.count)))
    _ = try await timedCall(collectionURL, method: .DELETE, body: nil)
}
