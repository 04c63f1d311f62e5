// The image-pipeline benchmark: `swift run -c release image-bench` (see README, Benchmarks).
// `--quick` for fewer rounds; BENCH_QUICK=1 for the smallest sizes, to check that it runs.
//
// 1. Uploads through a real emulator process with 8 concurrent clients: uploads per second and
//    MB/s for ~100 KB and ~5 MB JPEGs, and the time from upload to `success` (the server's own
//    created_at → embedded_at).
// 2. Search latency of the embedded vector index over 10,000 and 100,000 vectors of 512
//    dimensions, against the memory-bandwidth bound of the same scan measured in the same run.
import AsyncHTTPClient
import BenchmarkSupport
import COpenBLAS
import EmbeddedVectorIndex
import Foundation
import ImageAPICore
import ImageProcessing
import NIOCore
import NIOFoundationCompat
import SQLiteStorage

let arguments = CommandLine.arguments.dropFirst()
let quick = arguments.contains("--quick") || isQuickRun

func percentile(_ values: [Double], _ fraction: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))]
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func milliseconds(_ value: Double) -> String { String(format: "%.3f ms", value * 1000) }

// MARK: Test images

/// A square RGB image as an uncompressed baseline TIFF (a format the codec's loaders accept, written
/// without a library): the header, the pixels, then one directory of ten entries.
func uncompressedTIFF(side: Int, rgb pixels: [UInt8]) -> Data {
    var data = Data()
    func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }
    let pixelOffset = 8
    let bitsOffset = pixelOffset + pixels.count
    let directoryOffset = bitsOffset + 6
    data.append(contentsOf: Array("II".utf8))
    append(UInt16(42))
    append(UInt32(directoryOffset))
    data.append(contentsOf: pixels)
    for _ in 0..<3 { append(UInt16(8)) }
    // Entries in tag order: tag, type (3 short, 4 long), count, value or offset.
    let entries: [(UInt16, UInt16, UInt32, UInt32)] = [
        (256, 4, 1, UInt32(side)), (257, 4, 1, UInt32(side)), (258, 3, 3, UInt32(bitsOffset)), (259, 3, 1, 1),
        (262, 3, 1, 2), (273, 4, 1, UInt32(pixelOffset)), (277, 3, 1, 3), (278, 4, 1, UInt32(side)),
        (279, 4, 1, UInt32(pixels.count)), (284, 3, 1, 1),
    ]
    append(UInt16(entries.count))
    for (tag, type, count, value) in entries {
        append(tag)
        append(type)
        append(count)
        if type == 3 && count == 1 {
            append(UInt16(value))
            append(UInt16(0))
        } else {
            append(value)
        }
    }
    append(UInt32(0))
    return data
}

/// A JPEG of random noise (noise does not compress, so the size is predictable) of about `bytes`.
func noiseJPEG(bytes target: Int) async throws -> Data {
    let codec = VipsImageCodec()
    var side = max(64, Int((Double(target) / 1.2).squareRoot()))
    var best = Data()
    for _ in 0..<6 {
        var generator = SystemRandomNumberGenerator()
        let pixels = (0..<side * side * 3).map { _ in UInt8.random(in: 0...255, using: &generator) }
        best = try await codec.thumbnail(of: uncompressedTIFF(side: side, rgb: pixels), size: side)
        let ratio = Double(target) / Double(best.count)
        if abs(ratio - 1) < 0.1 { break }
        side = Int(Double(side) * ratio.squareRoot())
    }
    return best
}

// MARK: Emulator process

final class EmulatorProcess {
    let process = Process()
    let folder: URL
    var port = 0
    let output: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("image-bench-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        output = folder.appendingPathComponent("emulator.log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("emulator")
        process.executableURL = binary
        process.environment = ProcessInfo.processInfo.environment.merging([
            "HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": folder.path, "LOG_LEVEL": "warning",
            "BOOTSTRAP_ADMIN_KEY": benchKey, "PUBSUB_RETRY_BASE_MS": "200",
            "MAX_UPLOAD_BYTES": String(8 << 20),
        ]) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                port = Int(text[range.upperBound...].prefix { $0.isNumber }) ?? 0
                if port > 0 { return }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw BenchmarkFailure("the emulator did not start: \(binary.path)")
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: folder)
    }
}

let benchKey = "imk_0123456789abcdef0123456789abcdef_" + String(repeating: "B", count: 43)

func upload(_ bytes: Data, port: Int) async throws -> String {
    let boundary = "bench-\(UUID().uuidString)"
    var body = Data(
        "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.jpg\"\r\n\r\n".utf8)
    body += bytes
    body += Data("\r\n--\(boundary)--\r\n".utf8)
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/images?allow_duplicate=true")
    request.method = .POST
    request.headers.add(name: "X-API-Key", value: benchKey)
    request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
    request.body = .bytes(ByteBuffer(bytes: body))
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
    let answer = try await response.body.collect(upTo: 1 << 20)
    guard response.status.code == 201,
        let object = try JSONSerialization.jsonObject(with: Data(buffer: answer)) as? [String: Any],
        let id = object["id"] as? String
    else { throw BenchmarkFailure("upload answered \(response.status.code): \(String(buffer: answer))") }
    return id
}

func image(_ id: String, port: Int) async throws -> [String: Any] {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/images/\(id)")
    request.headers.add(name: "X-API-Key", value: benchKey)
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let body = try await response.body.collect(upTo: 1 << 20)
    return try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] ?? [:]
}

func benchmarkUploads(label: String, size: Int, count: Int, port: Int) async throws {
    let clients = 8
    let base = try await noiseJPEG(bytes: size)
    // Unique bytes per upload: two trailing bytes after the JPEG's end marker.
    let images = (0..<count).map { base + Data([UInt8($0 % 256), UInt8($0 / 256)]) }
    let start = ContinuousClock.now
    let ids = try await withThrowingTaskGroup(of: [String].self) { group in
        for client in 0..<clients {
            group.addTask {
                var mine: [String] = []
                for index in stride(from: client, to: count, by: clients) {
                    mine.append(try await upload(images[index], port: port))
                }
                return mine
            }
        }
        return try await group.reduce(into: [String]()) { $0 += $1 }
    }
    let elapsed = seconds(ContinuousClock.now - start)
    let megabytes = Double(images.reduce(0) { $0 + $1.count }) / 1_000_000
    print(
        String(
            format: "uploads %@ (%d × %.0f KB, 8 clients): %.1f uploads/s, %.1f MB/s", label, count,
            Double(base.count) / 1000, Double(count) / elapsed, megabytes / elapsed))

    var latencies: [Double] = []
    let deadline = Date().addingTimeInterval(600)
    for id in ids {
        while Date() < deadline {
            let record = try await image(id, port: port)
            if record["embedding_status"] as? String == "success",
                let created = (record["created_at"] as? String).flatMap(parseDate),
                let embedded = (record["embedded_at"] as? String).flatMap(parseDate)
            {
                latencies.append(embedded.timeIntervalSince(created))
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
    print(
        "  upload → success (\(latencies.count) images): median \(milliseconds(percentile(latencies, 0.5))), "
            + "p95 \(milliseconds(percentile(latencies, 0.95)))")
}

func parseDate(_ text: String) -> Date? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.date(from: text)
}

// MARK: Vector search

/// The best read bandwidth over a buffer, in bytes per second: OpenBLAS's `cblas_sasum` (a single
/// optimised read stream) over a buffer larger than the caches.
func readBandwidth(_ buffer: [Float], repeats: Int) -> Double {
    var best = Double.infinity
    var sink: Float = 0
    for _ in 0..<repeats {
        let start = ContinuousClock.now
        sink += buffer.withUnsafeBufferPointer { cblas_sasum(Int32($0.count), $0.baseAddress, 1) }
        best = min(best, seconds(ContinuousClock.now - start))
    }
    precondition(sink > 0)
    return Double(buffer.count * 4) / best
}

func benchmarkSearch(vectors count: Int, dimensions: Int = 512, queries: Int) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("image-bench-vectors-\(UUID())")
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.appendingPathComponent("vectors.sqlite").path
    let writer = try SQLiteVectorIndex(path: path)
    let team = TeamID()
    var generator = SystemRandomNumberGenerator()
    func randomUnit() -> [Float] {
        let values = (0..<dimensions).map { _ in Float.random(in: -1...1, using: &generator) }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }
    for batch in stride(from: 0, to: count, by: 5000) {
        let entries = (batch..<min(batch + 5000, count)).map { _ in
            VectorEntry(
                imageID: ImageID(), teamID: team, collectionID: nil, tags: [], createdAt: Date(), model: "bench",
                vector: randomUnit())
        }
        try await writer.upsert(contentsOf: entries)
    }
    // A fresh index, as a newly started Search process loads it.
    let loadStart = ContinuousClock.now
    let index = try SQLiteVectorIndex(path: path)
    let load = seconds(ContinuousClock.now - loadStart)
    var latencies: [Double] = []
    for _ in 0..<queries {
        let query = randomUnit()
        let start = ContinuousClock.now
        let matches = try await index.search(VectorQuery(vector: query, model: "bench", teamID: team, limit: 10))
        latencies.append(seconds(ContinuousClock.now - start))
        precondition(matches.hits.count == 10 && matches.total == count)
    }
    let bytes = Double(count * dimensions * 4)
    let bandwidth = readBandwidth([Float](repeating: 1, count: max(count * dimensions, 64 << 20)), repeats: 5)
    let bound = bytes / bandwidth
    let median = percentile(latencies, 0.5)
    print(
        "search over \(count) × \(dimensions) (\(String(format: "%.0f", bytes / 1_000_000)) MB, \(queries) queries, "
            + "top 10): median \(milliseconds(median)), p95 \(milliseconds(percentile(latencies, 0.95))), "
            + "p99 \(milliseconds(percentile(latencies, 0.99))); load \(String(format: "%.2f s", load))")
    print(
        "  baseline, memory-bandwidth bound of the same scan (\(String(format: "%.1f GB/s", bandwidth / 1e9)) "
            + "read): \(milliseconds(bound)); median / bound = \(String(format: "%.2f", median / bound))")
}

// MARK: Main

await runBenchmark("image-bench") {
    print("image-bench on \(ProcessInfo.processInfo.activeProcessorCount) cores\(quick ? " (quick)" : "")")
    for (vectors, queries) in isQuickRun ? [(2_000, 10)] : [(10_000, quick ? 50 : 200), (100_000, quick ? 20 : 100)] {
        try await benchmarkSearch(vectors: vectors, queries: queries)
    }
    let emulator = try EmulatorProcess()
    defer { emulator.stop() }
    try await benchmarkUploads(
        label: "100 KB", size: 100_000, count: isQuickRun ? 8 : quick ? 40 : 200, port: emulator.port)
    try await benchmarkUploads(
        label: "5 MB", size: 5_000_000, count: isQuickRun ? 2 : quick ? 8 : 40, port: emulator.port)
}
