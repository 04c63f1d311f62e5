// The search benchmark: `scripts/bench-search.sh` (or `make bench-search`), which makes the random
// full-size ViT-B/32 of the CLIP benchmark and runs `search-bench MODEL_DIR` from a release build.
//
// For 10,000 and 100,000 stored 512-dimension vectors of one team (seeded into a SQLite file under
// .build-bench/, reused by later runs), it starts the standalone `search` binary with CLIP and
// measures through HTTP, with 1 and 8 concurrent clients:
// - `GET /api/v1/search?q=…` in `semantic` and in `hybrid` mode (the default: the same vector
//   search, the metadata text search beside it, and their fusion), at the default threshold
//   (random vectors: no match passes it, so the semantic answer is empty) and at threshold 0
//   (every vector passes: 1,000 ranked matches are fused or read back, and a page of 20 is
//   answered); one query in 16 has a word of every image's description, which the text side
//   then ranks in full (its best 1,000). Every text is new to the server's query-embedding cache
//   (a call number is appended), except in the "cached" case: the same 16 texts again and again;
// - `GET /healthz`, the HTTP overhead;
// and, in the same run, the parts alone in this process: embedding one query text with CLIP (the
// same model and threads as the server) and the vector scan alone (the same index, each call's
// query a little different, since the index remembers the answers to recent queries).
//
// `search-bench qdrant HOST:PORT` compares the embedded index with Qdrant instead
// (QdrantComparison.swift, `make bench-qdrant`), and `search-bench pgvector URL` with pgvector
// (PgvectorComparison.swift, `make bench-pgvector`).
import AsyncHTTPClient
import BenchmarkSupport
import CLIPEmbedding
import CLIPInference
import EmbeddedVectorIndex
import Foundation
import ImageAPICore
import NIOCore
import SQLiteStorage

struct Options {
    var model = ""
    // BENCH_QUICK: 200 vectors and a tenth of a second per case (each case still makes 100 calls).
    var sizes = isQuickRun ? [200] : [10_000, 100_000]
    var seconds = isQuickRun ? 0.1 : 4.0
    var threads = 2
    var dataRoot = ".build-bench"

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--sizes":
                sizes = (rest.popFirst() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--seconds":
                seconds = Double(rest.popFirst() ?? "") ?? seconds
            case "--threads":
                threads = Int(rest.popFirst() ?? "") ?? threads
            case "--data":
                dataRoot = rest.popFirst() ?? dataRoot
            default:
                model = argument
            }
        }
        // The search process it starts runs in its data folder: paths must not depend on the folder.
        model = model.isEmpty ? model : absolutePath(model)
        dataRoot = absolutePath(dataRoot)
        guard !model.isEmpty, !sizes.isEmpty else {
            throw BenchmarkFailure(
                "usage: search-bench MODEL_DIR [--sizes 10000,100000] [--seconds S] [--threads N] [--data DIR]")
        }
    }
}

let benchKey = "imk_00112233445566778899aabbccddeeff_" + String(repeating: "S", count: 43)
let queries = [
    "a dog on a beach", "a red car at night", "sunset over the lake", "a forest in autumn",
    "a cat sleeping on a sofa", "snow-capped mountains", "a city street in the rain", "a bowl of fruit",
    "children playing football in a park", "an old lighthouse on a cliff", "a plate of spaghetti",
    "a bicycle leaning against a wall", "fireworks over a harbour", "a black and white photo",
    "a field of sunflowers", "a train crossing a bridge",
]

// MARK: Measuring

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

struct Latencies {
    var values: [Double]

    func percentile(_ fraction: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))]
    }

    var summary: String {
        String(
            format: "median %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  (%d requests)", percentile(0.5) * 1000,
            percentile(0.95) * 1000, percentile(0.99) * 1000, values.count)
    }
}

/// Runs `work` from `clients` concurrent tasks for at least `duration` seconds and 100 calls
/// (after 3 warm-up calls per client), and returns every call's latency.
func measure(
    clients: Int, duration: Double, _ work: @escaping @Sendable (Int) async throws -> Void
) async throws -> Latencies {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for client in 0..<clients {
            group.addTask { for call in 0..<3 { try await work(1_000_000_000 + client * 1000 + call) } }
        }
        try await group.waitForAll()
    }
    let start = ContinuousClock.now
    let minimumCalls = max(100 / clients, 1)
    let values = try await withThrowingTaskGroup(of: [Double].self) { group in
        for client in 0..<clients {
            group.addTask {
                var mine: [Double] = []
                var call = 0
                while seconds(ContinuousClock.now - start) < duration || call < minimumCalls {
                    let began = ContinuousClock.now
                    try await work(client * 1_000_000 + call)
                    mine.append(seconds(ContinuousClock.now - began))
                    call += 1
                }
                return mine
            }
        }
        return try await group.reduce(into: [Double]()) { $0 += $1 }
    }
    return Latencies(values: values)
}

/// A word that no stored image's metadata begins with ("zz" and letters), one per number, so that
/// a query made new with it asks the text search for nothing more.
func nonsenseWord(_ number: Int) -> String {
    var letters = "zz"
    var rest = number
    repeat {
        letters.append(Character(UnicodeScalar(UInt8(97 + rest % 26))))
        rest /= 26
    } while rest > 0
    return letters
}

// MARK: Seeding

/// Seeds (once) a data folder with one team, the bench key, and `count` images embedded with
/// `model`, each with a random unit vector; reused while its marker names the same contents.
func seededDataFolder(count: Int, model: String, dimensions: Int, root: String) async throws -> URL {
    let folder = URL(fileURLWithPath: root).appendingPathComponent("search-data-\(count)")
    let marker = folder.appendingPathComponent("seeded")
    let expected = "\(count) \(model) \(dimensions)\n"
    if (try? String(contentsOf: marker, encoding: .utf8)) == expected { return folder }
    try? FileManager.default.removeItem(at: folder)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let settings = APISettings(dataDirectory: folder.path)
    let store = try SQLiteMetadataStore(path: settings.databasePath)
    let services = APIServices(store: store, settings: settings)
    guard let key = APIKeyText(parsing: benchKey) else { throw BenchmarkFailure("the bench key does not parse") }
    let (admin, _) = try await AdministratorBootstrap(services: services).createAdministratorKey(
        email: "bench@example.com", name: "Bench", teamName: "Bench", keyText: key)
    let vectors = try SQLiteVectorIndex(path: settings.databasePath)
    var generator = SeededGenerator(state: UInt64(count))
    let start = ContinuousClock.now
    let now = Date()
    for batch in stride(from: 0, to: count, by: 5000) {
        var entries: [VectorEntry] = []
        for index in batch..<min(batch + 5000, count) {
            var image = ImageRecord(
                id: ImageID(), teamID: admin.teamID, uploaderID: admin.id, collectionID: nil,
                filename: "photo-\(index).jpg", contentType: "image/jpeg", format: "jpeg", fileSize: 100_000,
                width: 1024, height: 768, orientation: nil, sha256: String(format: "%064x", index),
                description: "Benchmark photo \(index)", tags: ["bench"], exif: [:],
                createdAt: now.addingTimeInterval(Double(index) / 1000))
            image.embeddingStatus = .success
            image.embeddingModel = model
            image.embeddingDimensions = dimensions
            image.embeddedAt = image.createdAt
            try await store.insertImage(
                image,
                publishing: .processing(
                    ImageProcessingRequest(imageID: image.id, teamID: admin.teamID, reason: "bench")),
                allowDuplicate: true)
            let values = (0..<dimensions).map { _ in Float.random(in: -1...1, using: &generator) }
            let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
            entries.append(
                VectorEntry(
                    imageID: image.id, teamID: admin.teamID, collectionID: nil, tags: image.tags,
                    createdAt: image.createdAt, model: model, vector: values.map { $0 / norm }))
        }
        try await vectors.upsert(contentsOf: entries)
        if (batch + 5000) % 25_000 == 0 { print("  seeded \(batch + 5000) of \(count) images") }
    }
    print(String(format: "  seeded %d images in %.1f s", count, seconds(ContinuousClock.now - start)))
    try expected.write(to: marker, atomically: true, encoding: .utf8)
    return folder
}

// MARK: The search process

final class SearchProcess {
    let process = Process()
    let log: URL
    var port = 0

    init(data folder: URL, model: String, threads: Int) throws {
        log = folder.appendingPathComponent("search.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("search")
        process.executableURL = binary
        process.currentDirectoryURL = folder
        process.environment = ProcessInfo.processInfo.environment.merging([
            "HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": folder.path, "LOG_LEVEL": "info",
            "EMBEDDING_PROVIDER": "clip",
            "CLIP_MODEL_DIR": model, "CLIP_THREADS": String(threads),
        ]) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
    }

    /// Waits for the "Listening" line (the model is loaded and warmed before it).
    func waitUntilListening() async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.contains(#""message":"Listening""#) {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                if let address = object?["address"] as? String, let port = Int(address.split(separator: ":").last ?? "")
                {
                    self.port = port
                    return
                }
            }
            guard process.isRunning else { throw BenchmarkFailure("search exited: \(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkFailure("search did not start listening")
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

func get(_ url: String, key: String?) async throws -> ByteBuffer {
    var request = HTTPClientRequest(url: url)
    if let key { request.headers.add(name: "X-API-Key", value: key) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
    let body = try await response.body.collect(upTo: 16 << 20)
    guard response.status == .ok else {
        throw BenchmarkFailure("\(url) answered \(response.status.code): \(String(buffer: body))")
    }
    return body
}

// MARK: Main

/// Search latency through HTTP beside its parts alone, at each size of `options`.
func runSearchBenchmark(_ options: Options) async throws {
    let files = try CLIPModelFiles(directory: URL(fileURLWithPath: options.model))
    print(
        "search-bench on \(ProcessInfo.processInfo.activeProcessorCount) cores: \(files.fingerprint), "
            + "CLIP_THREADS=\(options.threads), \(options.seconds) s per case")
    let model = try CLIPModel(files: files)
    let dimensions = model.configuration.projectionDimension

    for count in options.sizes {
        print("\n\(count) stored vectors × \(dimensions)")
        let folder = try await seededDataFolder(
            count: count, model: files.fingerprint, dimensions: dimensions, root: options.dataRoot)

        // The parts alone, in this process, before the server starts (so they do not share the CPU).
        let tokenized = queries.map { model.tokenize($0) }
        let embedding = try await measure(clients: 1, duration: options.seconds) { call in
            _ = model.embed(tokenSequences: [tokenized[call % tokenized.count]], threads: options.threads)
        }
        let databasePath = APISettings(dataDirectory: folder.path).databasePath
        let store = try SQLiteMetadataStore(path: databasePath)
        let index = try SQLiteVectorIndex(path: databasePath)
        guard let teamID = try await store.user(email: "bench@example.com")?.teamID else {
            throw BenchmarkFailure("the seeded folder has no bench user")
        }
        let queryVectors = tokenized.map { model.embed(tokenSequences: [$0], threads: options.threads)[0] }
        // The cosine bound Search derives from the default threshold 0.7 (random vectors stay below it).
        let defaultBound = CLIPEmbedder.textScale.minimumCosine(forScore: 0.7)
        var scans: [Latencies] = []
        for bound in [defaultBound, -1] {
            scans.append(
                try await measure(clients: 1, duration: options.seconds) { call in
                    // A query of its own each call: the index remembers its recent answers.
                    var vector = queryVectors[call % queryVectors.count]
                    vector[call % vector.count] *= 1 + Float(call % 1000 + 1) * 1e-6
                    let matches = try await index.search(
                        VectorQuery(
                            vector: vector, model: files.fingerprint, teamID: teamID, minimumCosine: bound, limit: 10))
                    guard bound > 0 || matches.total == count else {
                        throw BenchmarkFailure("the scan counted \(matches.total) of \(count)")
                    }
                })
        }
        print("  text embedding alone (1 text, batch 1)         \(embedding.summary)")
        print("  vector scan alone, default threshold           \(scans[0].summary)")
        print("  vector scan alone, threshold 0 (top 1,000)     \(scans[1].summary)")

        let server = try SearchProcess(data: folder, model: options.model, threads: options.threads)
        defer { server.stop() }
        try await server.waitUntilListening()
        let base = "http://127.0.0.1:\(server.port)"
        for clients in [1, 8] {
            let health = try await measure(clients: clients, duration: options.seconds) { _ in
                _ = try await get("\(base)/healthz", key: nil)
            }
            let who = "\(clients) client\(clients == 1 ? " " : "s")"
            print("  \(who): \("GET /healthz".padding(toLength: 42, withPad: " ", startingAt: 0))\(health.summary)")
            // Each call's text is new to the server's query cache unless the case says "cached"
            // (the 16 queries again and again, each embedded once in the warm-up).
            let cases: [(label: String, parameters: String, cached: Bool)] = [
                ("semantic, default threshold        ", "&mode=semantic", false),
                ("hybrid, default threshold          ", "&mode=hybrid", false),
                ("semantic, threshold 0              ", "&mode=semantic&similarity_threshold=0", false),
                ("hybrid, threshold 0                ", "&mode=hybrid&similarity_threshold=0", false),
                ("hybrid, default threshold, cached  ", "&mode=hybrid", true),
            ]
            for (number, (label, parameters, cached)) in cases.enumerated() {
                let search = try await measure(clients: clients, duration: options.seconds) { call in
                    let unique = " " + nonsenseWord((number * 10 + clients) * 10_000_000_000 + call)
                    let query = queries[call % queries.count] + (cached ? "" : unique)
                    let text = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                    _ = try await get("\(base)/api/v1/search?q=\(text)&limit=20\(parameters)", key: benchKey)
                }
                print("  \(who): search \(label)\(search.summary)")
            }
        }
    }
}

await runBenchmark("search-bench") {
    let arguments = Array(CommandLine.arguments.dropFirst())
    switch arguments.first {
    case "qdrant":
        try await runQdrantComparison(ComparisonOptions(Array(arguments.dropFirst()), usage: "qdrant HOST:PORT"))
    case "pgvector":
        try await runPgvectorComparison(ComparisonOptions(Array(arguments.dropFirst()), usage: "pgvector postgres://…"))
    case "duplicates":
        try await runDuplicateBenchmark(DuplicateOptions(Array(arguments.dropFirst())))
    default: try await runSearchBenchmark(Options(arguments))
    }
}
