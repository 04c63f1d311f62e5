import CLIPInference
import CLIPKernels
import COpenBLAS
import Foundation

// `clip-bench MODEL_DIR [--seconds S] [--reference FILE]`: times the CLIP engine on the benchmark
// model and inputs that Benchmarks/CLIPReference/setup_model.py makes (run through
// scripts/bench-clip.sh), checks its outputs against PyTorch's, and prints one table with the
// ONNX Runtime and PyTorch figures that bench_reference.py measured on the same machine.

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
/// one-second measurements, so that a moment of other load on the machine does not lower it.
func sgemmPeak(threads: Int) -> Double {
    let size = 1024
    let a = [Float](repeating: 0.5, count: size * size)
    let b = [Float](repeating: 0.25, count: size * size)
    var c = [Float](repeating: 0, count: size * size)
    openblas_set_num_threads(Int32(threads))
    defer { openblas_set_num_threads(1) }
    let best =
        (0..<3).map { _ in
            throughput(items: 1, minimum: 1) {
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
    var packed = [Float](repeating: 0, count: clipk_packed_count(Int32(outputs), Int32(inputs)))
    clipk_pack(b, Int32(outputs), Int32(inputs), &packed)
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
    print("usage: clip-bench MODEL_DIR [--seconds S] [--reference FILE]")
    exit(64)
}
let directory = URL(fileURLWithPath: arguments[1])
var minimumSeconds = 3.0
var referenceFile: String?
if let index = arguments.firstIndex(of: "--seconds"), index + 1 < arguments.count {
    minimumSeconds = Double(arguments[index + 1]) ?? minimumSeconds
}
if let index = arguments.firstIndex(of: "--reference"), index + 1 < arguments.count {
    referenceFile = arguments[index + 1]
}

if arguments.contains("--shapes") {
    openblas_set_num_threads(1)
    for rows in [50, 400] {
        for (inputs, outputs) in [(768, 768), (768, 3072), (3072, 768)] {
            print(
                "sgemm \(rows)×\(inputs) · \(inputs)×\(outputs): \(String(format: "%.1f", sgemmRate(rows: rows, inputs: inputs, outputs: outputs))) GFLOP/s, packed kernel \(String(format: "%.1f", packedRate(rows: rows, inputs: inputs, outputs: outputs)))"
            )
        }
    }
    exit(0)
}

let loadStart = ContinuousClock.now
let files = try CLIPModelFiles(directory: directory)
let model = try CLIPModel(files: files)
let loadSeconds = seconds(since: loadStart)
let configuration = model.configuration
let side = configuration.imageSize
let allPixels = try readFloats(directory.appendingPathComponent("pixel_values.f32"))
let imageCount = allPixels.count / (3 * side * side)
let images = (0..<imageCount).map { Array(allPixels[($0 * 3 * side * side)..<(($0 + 1) * 3 * side * side)]) }
let idData = try Data(contentsOf: directory.appendingPathComponent("input_ids.i64"))
let allIDs = idData.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }.map { Int32($0) }
let textLength = 16
let texts = (0..<(allIDs.count / textLength)).map { Array(allIDs[($0 * textLength)..<(($0 + 1) * textLength)]) }

let firstStart = ContinuousClock.now
let checkImages = model.embed(pixelValues: images)
let firstSeconds = seconds(since: firstStart)
let checkTexts = model.embed(tokenSequences: texts)
let imageDifference = maxDifference(checkImages, try readFloats(directory.appendingPathComponent("image_embeds.f32")))
let textDifference = maxDifference(checkTexts, try readFloats(directory.appendingPathComponent("text_embeds.f32")))

let imageFLOPs =
    2 * Double(configuration.patchCount * 3 * configuration.patchSize * configuration.patchSize)
    * Double(configuration.vision.hiddenSize)
    + encoderFLOPs(configuration.vision, tokens: configuration.patchCount + 1)
let textFLOPs = encoderFLOPs(configuration.text, tokens: textLength)

var measurements: [Measurement] = []
var peaks: [Int: Double] = [:]
for threads in [1, 2] {
    peaks[threads] = sgemmPeak(threads: threads)
    for batch in [1, 8] {
        let imageRate = throughput(items: batch, minimum: minimumSeconds) {
            _ = model.embed(pixelValues: Array(images.prefix(batch)), threads: threads)
        }
        let textRate = throughput(items: batch, minimum: minimumSeconds) {
            _ = model.embed(tokenSequences: Array(texts.prefix(batch)), threads: threads)
        }
        measurements.append(
            Measurement(
                engine: "this engine", threads: threads, batch: batch, imagesPerSecond: imageRate,
                textsPerSecond: textRate))
    }
}
let peakRSS = ProcessMemory.peakResidentBytes()

var reference: [Measurement] = []
var referenceNotes: [String] = []
if let referenceFile, let text = try? String(contentsOfFile: referenceFile, encoding: .utf8) {
    for line in text.split(separator: "\n") {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
        if let engine = object["engine"] as? String, let threads = object["threads"] as? Int,
            let batch = object["batch"] as? Int, let images = object["images_per_second"] as? Double,
            let texts = object["texts_per_second"] as? Double
        {
            reference.append(
                Measurement(
                    engine: engine, threads: threads, batch: batch, imagesPerSecond: images, textsPerSecond: texts))
        } else if let engine = object["engine"] as? String, let rss = object["peak_rss_bytes"] as? Int {
            referenceNotes.append("\(engine) process peak RSS: \(String(format: "%.0f", Double(rss) / 1_048_576)) MiB")
        } else if let engine = object["engine"] as? String, let skipped = object["skipped"] as? String {
            referenceNotes.append("\(engine): \(skipped)")
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

let weightMiB = Double(files.weightBytes) / 1_048_576
print(
    "CLIP benchmark: \(configuration.vision.layers)-layer ViT-\(configuration.patchSize) image tower, \(configuration.text.layers)-layer text tower, random weights"
)
print(
    "  weights: \(String(format: "%.1f", weightMiB)) MiB; load (map, pack, tokenizer): \(String(format: "%.3f", loadSeconds)) s; first batch of \(imageCount) images (pages faulted in): \(String(format: "%.3f", firstSeconds)) s"
)
print("  largest difference from PyTorch: images \(imageDifference), texts \(textDifference)")
print(
    "  peak RSS: \(String(format: "%.1f", Double(peakRSS) / 1_048_576)) MiB = \(String(format: "%.2f", Double(peakRSS) / Double(files.weightBytes))) × the weight file"
)
for threads in [1, 2] {
    print("  sgemm peak (1024³) at \(threads) thread(s): \(String(format: "%.1f", peaks[threads] ?? 0)) GFLOP/s")
}
print("")
print(
    pad("engine", 28) + pad("threads", 9) + pad("batch", 7) + pad("images/s", 10) + pad("texts/s", 10)
        + pad("image GFLOP/s*", 15) + "of sgemm peak")
for measurement in measurements + reference {
    let achieved = measurement.imagesPerSecond * imageFLOPs / 1e9
    let share = achieved / (peaks[measurement.threads] ?? 1)
    print(
        pad(measurement.engine, 28) + pad("\(measurement.threads)", 9) + pad("\(measurement.batch)", 7)
            + pad(String(format: "%.2f", measurement.imagesPerSecond), 10)
            + pad(String(format: "%.1f", measurement.textsPerSecond), 10) + pad(String(format: "%.1f", achieved), 15)
            + String(format: "%.0f%%", 100 * share))
}
print(
    "  * the full model's FLOPs per image ÷ time (this engine skips most of the last layer, so it can exceed the peak)")
for note in referenceNotes { print("  \(note)") }
for threads in [1, 2] {
    for batch in [1, 8] {
        guard let ours = measurements.first(where: { $0.threads == threads && $0.batch == batch }),
            let theirs = reference.first(where: {
                $0.engine.hasPrefix("onnxruntime") && $0.threads == threads && $0.batch == batch
            })
        else { continue }
        print(
            "  vs ONNX Runtime at \(threads) thread(s), batch \(batch): images \(String(format: "%.2f", ours.imagesPerSecond / theirs.imagesPerSecond))×, texts \(String(format: "%.2f", ours.textsPerSecond / theirs.textsPerSecond))×"
        )
    }
}
