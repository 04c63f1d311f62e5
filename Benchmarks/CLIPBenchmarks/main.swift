import BenchmarkSupport
import CLIPInference
import CLIPKernels
import COpenBLAS
import Foundation

// `clip-bench MODEL_DIR [--seconds S] [--rounds N] [--reference-server COMMAND] [--pytorch FILE]`:
// times the CLIP engine on the benchmark model and inputs that Benchmarks/CLIPReference/setup_model.py
// makes (run through scripts/bench-clip.sh) and checks its outputs against PyTorch's. With a
// reference server (bench_reference.py --serve), every case is timed N rounds as a pair, ONNX
// Runtime and this engine one right after the other (alternating which goes first), so that the
// machine's drift between cases does not enter the ratios; the table gives medians over the
// rounds and each round's ratio. PyTorch's figures, measured once, come from FILE.
// A model folder without the benchmark's inputs (pixel_values.f32, input_ids.i64), such as the tests'
// tiny model, gets 8 seeded random images and 8 tokenized texts, and nothing to compare them with.
// BENCH_QUICK=1: 0.05 s per case, one round, a short matrix-library peak: a check that it runs.

struct Measurement {
    let engine: String
    let threads: Int
    let batch: Int
    let imagesPerSecond: Double
    let textsPerSecond: Double
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let duration = ContinuousClock.now - start
    return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Items per second over at least `minimum` seconds and three runs, after two warm-up runs.
func throughput(items: Int, minimum: Double, _ work: () -> Void) -> Double {
    work()
    work()
    var runs = 0
    let start = ContinuousClock.now
    while true {
        work()
        runs += 1
        let elapsed = seconds(since: start)
        if elapsed >= minimum && runs >= 3 { return Double(runs * items) / elapsed }
    }
}

/// Single-precision GEMM rate of the matrix library on 1024³ products: the best of three
/// one-second measurements (`minimum` seconds each), so that a moment of other load on the machine
/// does not lower it.
func sgemmPeak(threads: Int, minimum: Double = 1) -> Double {
    let size = 1024
    let a = [Float](repeating: 0.5, count: size * size)
    let b = [Float](repeating: 0.25, count: size * size)
    var c = [Float](repeating: 0, count: size * size)
    openblas_set_num_threads(Int32(threads))
    defer { openblas_set_num_threads(1) }
    let best =
        (0..<3).map { _ in
            throughput(items: 1, minimum: minimum) {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(size), Int32(size), Int32(size), 1, a, Int32(size),
                    b,
                    Int32(size), 0, &c, Int32(size))
            }
        }.max() ?? 0
    return best * 2 * Double(size * size * size) / 1e9
}

/// Single-threaded GEMM rate at one of the model's shapes (`rows × inputs` times `inputs × outputs`ᵀ).
func sgemmRate(rows: Int, inputs: Int, outputs: Int) -> Double {
    let a = [Float](repeating: 0.5, count: rows * inputs)
    let b = [Float](repeating: 0.25, count: outputs * inputs)
    var c = [Float](repeating: 0, count: rows * outputs)
    let perSecond = throughput(items: 1, minimum: 0.5) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outputs), Int32(inputs), 1, a, Int32(inputs), b,
            Int32(inputs), 0, &c, Int32(outputs))
    }
    return perSecond * 2 * Double(rows * inputs * outputs) / 1e9
}

/// The packed kernel's rate at the same shape, single-threaded.
func packedRate(rows: Int, inputs: Int, outputs: Int) -> Double {
    let a = [Float](repeating: 0.5, count: rows * inputs)
    let b = [Float](repeating: 0.25, count: outputs * inputs)
    // Cache-line aligned, as the model's packed weights are.
    let count = clipk_packed_count(Int32(outputs), Int32(inputs))
    let packed = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        .bindMemory(to: Float.self, capacity: count)
    defer { packed.deallocate() }
    clipk_pack(b, Int32(outputs), Int32(inputs), packed)
    var c = [Float](repeating: 0, count: rows * outputs)
    let perSecond = throughput(items: 1, minimum: 0.5) {
        clipk_gemm(a, Int32(rows), Int32(inputs), packed, 0, Int32(outputs), &c, Int32(outputs))
    }
    return perSecond * 2 * Double(rows * inputs * outputs) / 1e9
}

/// Multiply-add FLOPs of one tower's transformer over `tokens` tokens.
func encoderFLOPs(_ shape: CLIPTowerShape, tokens: Int) -> Double {
    let width = Double(shape.hiddenSize)
    let inner = Double(shape.intermediateSize)
    let t = Double(tokens)
    let perLayer = 2 * t * width * width * 4 + 2 * t * t * width * 2 + 2 * t * width * inner * 2
    return perLayer * Double(shape.layers)
}

func readFloats(_ url: URL) throws -> [Float] {
    let data = try Data(contentsOf: url)
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

func maxDifference(_ left: [[Float]], _ right: [Float]) -> Float {
    var worst: Float = 0
    for (index, vector) in left.enumerated() {
        for (column, value) in vector.enumerated() {
            worst = max(worst, abs(value - right[index * vector.count + column]))
        }
    }
    return worst
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print(
        """
        usage: clip-bench MODEL_DIR [--seconds S] [--rounds N] [--reference-server COMMAND] [--pytorch FILE]
               clip-bench MODEL_DIR --profile images|texts BATCH THREADS [--seconds S]
               clip-bench --shapes
        """)
    exit(64)
}

struct StandardError: TextOutputStream {
    mutating func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
var standardError = StandardError()

func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func jsonObjects(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
}

/// ONNX Runtime behind `bench_reference.py --serve`: one timing per request line.
final class ReferenceServer {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    var buffer = Data()
    private(set) var engine = "onnxruntime"

    init(command: String) throws {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        if let first = readObject(), let name = first["engine"] as? String { engine = name }
    }

    private func readObject() -> [String: Any]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[(newline + 1)...])
                if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] { return object }
                continue
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffer += chunk
        }
    }

    func ask(_ request: String) -> [String: Any] {
        input.fileHandleForWriting.write(Data((request + "\n").utf8))
        guard let answer = readObject() else {
            print("the reference server stopped answering")
            exit(1)
        }
        return answer
    }

    func rate(tower: String, threads: Int, batch: Int, seconds: Double) -> Double {
        ask("\(tower) \(threads) \(batch) \(seconds)")["rate"] as? Double ?? .nan
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

if arguments.contains("--shapes") {
    openblas_set_num_threads(1)
    for rows in [16, 50, 400] {
        let width = rows == 16 ? 512 : 768
        for (inputs, outputs) in [(width, width), (width, 4 * width), (4 * width, width)] {
            let kernels = [2, 1].compactMap { level -> String? in
                guard clipk_set_level(Int32(level)) == level else { return nil }
                let rate = packedRate(rows: rows, inputs: inputs, outputs: outputs)
                return "\(level == 2 ? "AVX-512" : "AVX2") kernel \(String(format: "%.1f", rate))"
            }
            _ = clipk_set_level(0)
            print(
                "sgemm \(rows)×\(inputs) · \(inputs)×\(outputs): \(String(format: "%.1f", sgemmRate(rows: rows, inputs: inputs, outputs: outputs))) GFLOP/s, \(kernels.joined(separator: ", "))"
            )
        }
    }
    exit(0)
}

let directory = URL(fileURLWithPath: arguments[1])
let minimumSeconds = option("--seconds").flatMap(Double.init) ?? (isQuickRun ? 0.05 : 3.0)
let rounds = max(1, option("--rounds").flatMap(Int.init) ?? (isQuickRun ? 1 : 3))

// CLIP_KERNEL_LEVEL=1 times the AVX2 kernel on an AVX-512 machine (see clipk_set_level).
if let level = ProcessInfo.processInfo.environment["CLIP_KERNEL_LEVEL"].flatMap({ Int32($0) }) {
    _ = clipk_set_level(level)
}
let loadStart = ContinuousClock.now
let files = orExit("clip-bench") { try CLIPModelFiles(directory: directory) }
let model = orExit("clip-bench") { try CLIPModel(files: files) }
let loadSeconds = seconds(since: loadStart)
let configuration = model.configuration
let side = configuration.imageSize
let hasInputs = FileManager.default.fileExists(atPath: directory.appendingPathComponent("pixel_values.f32").path)
let images: [[Float]]
let texts: [[Int32]]
if hasInputs {
    let allPixels = orExit("clip-bench") { try readFloats(directory.appendingPathComponent("pixel_values.f32")) }
    let imageCount = allPixels.count / (3 * side * side)
    images = (0..<imageCount).map { Array(allPixels[($0 * 3 * side * side)..<(($0 + 1) * 3 * side * side)]) }
    let idData = orExit("clip-bench") { try Data(contentsOf: directory.appendingPathComponent("input_ids.i64")) }
    let allIDs = idData.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }.map { Int32($0) }
    let textLength = 16
    texts = (0..<(allIDs.count / textLength)).map { Array(allIDs[($0 * textLength)..<(($0 + 1) * textLength)]) }
} else {
    var generator = SeededGenerator(state: 8)
    images = (0..<8).map { _ in (0..<(3 * side * side)).map { _ in Float.random(in: -2...2, using: &generator) } }
    texts = [
        "a dog on a beach", "a red car at night", "sunset over the lake", "a forest in autumn",
        "a cat sleeping on a sofa", "snow-capped mountains", "a city street in the rain", "a bowl of fruit",
    ].map { model.tokenize($0) }
}
let imageCount = images.count

func engineRate(tower: String, batch: Int, threads: Int) -> Double {
    throughput(items: batch, minimum: minimumSeconds) {
        if tower == "images" {
            _ = model.embed(pixelValues: Array(images.prefix(batch)), threads: threads)
        } else {
            _ = model.embed(tokenSequences: Array(texts.prefix(batch)), threads: threads)
        }
    }
}

// `--profile images|texts BATCH THREADS` runs one case for the given seconds and exits (for perf).
if let index = arguments.firstIndex(of: "--profile"), index + 3 < arguments.count,
    let batch = Int(arguments[index + 2]), let threads = Int(arguments[index + 3])
{
    let rate = engineRate(tower: arguments[index + 1], batch: batch, threads: threads)
    print("\(arguments[index + 1]) batch \(batch), \(threads) thread(s): \(String(format: "%.2f", rate)) per second")
    exit(0)
}

let firstStart = ContinuousClock.now
let checkImages = model.embed(pixelValues: images)
let firstSeconds = seconds(since: firstStart)
let checkTexts = model.embed(tokenSequences: texts)
let differences: String
if hasInputs {
    let imageDifference = maxDifference(
        checkImages, orExit("clip-bench") { try readFloats(directory.appendingPathComponent("image_embeds.f32")) })
    let textDifference = maxDifference(
        checkTexts, orExit("clip-bench") { try readFloats(directory.appendingPathComponent("text_embeds.f32")) })
    differences = "images \(imageDifference), texts \(textDifference)"
} else {
    differences = "not compared (the model folder has no PyTorch outputs)"
}

let imageFLOPs =
    2 * Double(configuration.patchCount * 3 * configuration.patchSize * configuration.patchSize)
    * Double(configuration.vision.hiddenSize)
    + encoderFLOPs(configuration.vision, tokens: configuration.patchCount + 1)

let server = orExit("clip-bench") { try option("--reference-server").map { try ReferenceServer(command: $0) } }
let peakSeconds = isQuickRun ? 0.05 : 1
let peaks = [1: sgemmPeak(threads: 1, minimum: peakSeconds), 2: sgemmPeak(threads: 2, minimum: peakSeconds)]

/// Every round's rate for one case, of this engine and of ONNX Runtime.
struct Case: Hashable {
    let threads: Int
    let batch: Int
    let tower: String
}
var ours: [Case: [Double]] = [:]
var theirs: [Case: [Double]] = [:]
let cases = [1, 2].flatMap { threads in
    [1, 8].flatMap { batch in ["images", "texts"].map { Case(threads: threads, batch: batch, tower: $0) } }
}
for round in 1...rounds {
    print("round \(round) of \(rounds)…", to: &standardError)
    for item in cases {
        let engineFirst = round % 2 == 1
        if engineFirst {
            ours[item, default: []].append(engineRate(tower: item.tower, batch: item.batch, threads: item.threads))
        }
        if let server {
            theirs[item, default: []].append(
                server.rate(tower: item.tower, threads: item.threads, batch: item.batch, seconds: minimumSeconds))
        }
        if !engineFirst {
            ours[item, default: []].append(engineRate(tower: item.tower, batch: item.batch, threads: item.threads))
        }
    }
}
let referenceRSS = server?.ask("rss")["peak_rss_bytes"] as? Int
server?.stop()
let peakRSS = ProcessMemory.peakResidentBytes()

var pytorch: [Measurement] = []
var notes: [String] = []
if let file = option("--pytorch"), let text = try? String(contentsOfFile: file, encoding: .utf8) {
    for object in jsonObjects(text) {
        if let engine = object["engine"] as? String, let threads = object["threads"] as? Int,
            let batch = object["batch"] as? Int, let images = object["images_per_second"] as? Double,
            let texts = object["texts_per_second"] as? Double
        {
            pytorch.append(
                Measurement(
                    engine: engine, threads: threads, batch: batch, imagesPerSecond: images, textsPerSecond: texts))
        } else if let engine = object["engine"] as? String, let skipped = object["skipped"] as? String {
            notes.append("\(engine): \(skipped)")
        }
    }
}

let kernel = ["BLAS", "AVX2/FMA", "AVX-512"][Int(clipk_level())]
let weightMiB = Double(files.weightBytes) / 1_048_576
print(
    "CLIP benchmark: \(configuration.vision.layers)-layer ViT-\(configuration.patchSize) image tower, \(configuration.text.layers)-layer text tower, random weights; \(kernel) product kernel"
)
print(
    "  weights: \(String(format: "%.1f", weightMiB)) MiB; load (map, pack, tokenizer): \(String(format: "%.3f", loadSeconds)) s; first batch of \(imageCount) images (pages faulted in): \(String(format: "%.3f", firstSeconds)) s"
)
print("  largest difference from PyTorch: \(differences)")
print(
    "  peak RSS: \(String(format: "%.1f", Double(peakRSS) / 1_048_576)) MiB = \(String(format: "%.2f", Double(peakRSS) / Double(files.weightBytes))) × the weight file"
        + (referenceRSS.map { String(format: "; the ONNX Runtime process: %.0f MiB", Double($0) / 1_048_576) } ?? ""))
for threads in [1, 2] {
    print("  sgemm peak (1024³) at \(threads) thread(s): \(String(format: "%.1f", peaks[threads] ?? 0)) GFLOP/s")
}
for note in notes { print("  \(note)") }
print("")
print(
    pad("engine", 28) + pad("threads", 9) + pad("batch", 7) + pad("images/s", 10) + pad("texts/s", 10)
        + pad("image GFLOP/s*", 15) + "of sgemm peak")
func row(_ engine: String, _ threads: Int, _ batch: Int, _ images: Double, _ texts: Double) {
    let achieved = images * imageFLOPs / 1e9
    print(
        pad(engine, 28) + pad("\(threads)", 9) + pad("\(batch)", 7) + pad(String(format: "%.2f", images), 10)
            + pad(String(format: "%.1f", texts), 10) + pad(String(format: "%.1f", achieved), 15)
            + String(format: "%.0f%%", 100 * achieved / (peaks[threads] ?? .nan)))
}
let roundsNote = rounds == 1 ? "" : " (median of \(rounds))"
for (name, rates) in [("this engine" + roundsNote, ours), ((server?.engine ?? "") + roundsNote, theirs)]
where !rates.isEmpty {
    for threads in [1, 2] {
        for batch in [1, 8] {
            row(
                name, threads, batch, median(rates[Case(threads: threads, batch: batch, tower: "images")] ?? []),
                median(rates[Case(threads: threads, batch: batch, tower: "texts")] ?? []))
        }
    }
}
for measurement in pytorch {
    row(
        measurement.engine, measurement.threads, measurement.batch, measurement.imagesPerSecond,
        measurement.textsPerSecond)
}
print(
    "  * the full model's FLOPs per image ÷ time (this engine skips most of the last layer, so it can exceed the peak)")
guard server != nil else { exit(0) }
for threads in [1, 2] {
    for batch in [1, 8] {
        let ratios = ["images", "texts"].map { tower -> (median: Double, each: [Double]) in
            let item = Case(threads: threads, batch: batch, tower: tower)
            let each = zip(ours[item] ?? [], theirs[item] ?? []).map { $0 / $1 }
            return (median(each), each)
        }
        func list(_ values: [Double]) -> String { values.map { String(format: "%.2f", $0) }.joined(separator: ", ") }
        print(
            "  vs ONNX Runtime at \(threads) thread(s), batch \(batch): images \(String(format: "%.2f", ratios[0].median))× (\(list(ratios[0].each))), texts \(String(format: "%.2f", ratios[1].median))× (\(list(ratios[1].each)))"
        )
    }
}
