import CLIPInference
import Dispatch
import Foundation
import ImageAPICore
import Locking
import Logging

/// The CLIP model behind the embedder port: images and texts into one 0-1-scored space.
///
/// The directory is checked when the embedder is made (so a broken model stops a process at
/// start); the weights are loaded on first use or by ``prepare()``, once per process, on the
/// embedder's inference queue. One inference runs at a time, split between `threads` threads;
/// requests that arrive meanwhile wait and are embedded together, up to ``maxBatch`` at once.
public final class CLIPEmbedder: Embedder {
    /// Text-to-image relevance: raw CLIP cosines between a caption and a matching photo sit near
    /// 0.25-0.35 and unrelated pairs near 0.10-0.20, so the logistic curve centred on 0.20 with
    /// width 0.025 puts a cosine of 0.221 at the default threshold 0.7, 0.25 at 0.88 and 0.15 at
    /// 0.12.
    public static let textScale = RelevanceScale.logistic(midpoint: 0.20, width: 0.025)

    /// The checked model directory.
    public let files: CLIPModelFiles
    /// The threads each inference is split between.
    public let threads: Int
    /// The checkpoint's fingerprint, stored with every vector.
    public var modelID: String { files.fingerprint }
    /// The projection dimension (512 for ViT-B/32).
    public var dimensions: Int { files.configuration.projectionDimension }
    /// CLIP embeds text.
    public var supportsText: Bool { true }
    /// See ``textScale``.
    public var textRelevance: RelevanceScale { Self.textScale }
    /// Image-to-image cosines of CLIP embeddings are already spread over 0-1 (near duplicates
    /// above 0.9, unrelated photos below 0.5), so the score is the cosine itself.
    public var imageRelevance: RelevanceScale { .cosine }

    private let maxPixels: Int
    private let logger: Logger
    private let loaded = Locked<CLIPModel?>(nil)
    private let queue = DispatchQueue(label: "clip-inference")

    /// Checks a model directory without loading its weights.
    /// - Parameters:
    ///   - directory: The Hugging Face CLIP directory.
    ///   - threads: The threads each inference is split between.
    ///   - maxPixels: The largest image decoded.
    ///   - logger: Where load time and memory are reported.
    /// - Throws: ``CLIPModelError`` naming the first file that is missing or wrong.
    public init(directory: URL, threads: Int, maxPixels: Int = 100_000_000, logger: Logger) throws {
        self.files = try CLIPModelFiles(directory: directory)
        self.threads = max(1, threads)
        self.maxPixels = maxPixels
        self.logger = logger
    }

    /// The loaded model, loading it on first use (blocking: call it off the concurrency pool).
    public func model() throws -> CLIPModel {
        try loaded.withLock { model in
            if let model { return model }
            let start = ContinuousClock.now
            let residentBefore = ProcessMemory.residentBytes()
            let fresh = try CLIPModel(files: files)
            let seconds = (ContinuousClock.now - start).seconds
            logger.info(
                "Loaded CLIP model",
                metadata: [
                    "model": .string(files.fingerprint),
                    "load_seconds": .string(String(format: "%.3f", seconds)),
                    "weight_file_mb": .string(String(format: "%.1f", Double(files.weightBytes) / 1_048_576)),
                    "copied_mb": .string(String(format: "%.1f", Double(fresh.copiedBytes) / 1_048_576)),
                    "rss_mb": .string(
                        String(format: "%.1f", Double(ProcessMemory.residentBytes()) / 1_048_576)),
                    "rss_before_mb": .string(String(format: "%.1f", Double(residentBefore) / 1_048_576)),
                    "threads": .stringConvertible(threads),
                ])
            model = fresh
            return fresh
        }
    }

    /// Loads the model and runs one image and one text through it, so that every weight page is
    /// resident before the first request; logs the resident memory afterwards.
    public func prepare() async throws {
        let threads = threads
        try await run { [self] in
            let model = try model()
            let side = model.configuration.imageSize
            _ = model.embed(pixelValues: [[Float](repeating: 0, count: 3 * side * side)], threads: threads)
            _ = model.embed(tokenSequences: [model.tokenize("warm up")], threads: threads)
        }
        logger.info(
            "CLIP model ready",
            metadata: [
                "model": .string(files.fingerprint),
                "rss_mb": .string(String(format: "%.1f", Double(ProcessMemory.residentBytes()) / 1_048_576)),
            ])
    }

    /// Embeds encoded image bytes. Requests that arrive while an inference runs are embedded
    /// together in the next batch (up to ``maxBatch`` images).
    public func embed(image data: Data) async throws -> [Float] {
        try await submit(.image(data))
    }

    /// Embeds a text, batched with other texts waiting at the same time.
    public func embed(text: String) async throws -> [Float] {
        try await submit(.text(text))
    }

    /// The most images (or texts) one inference takes.
    public static let maxBatch = 8

    private enum Input {
        case image(Data)
        case text(String)
    }

    private struct Request {
        let input: Input
        let continuation: CheckedContinuation<[Float], any Error>
    }

    private let waiting = Locked<(requests: [Request], draining: Bool)>(([], false))

    private func submit(_ input: Input) async throws -> [Float] {
        try await withCheckedThrowingContinuation { continuation in
            let startsDrain = waiting.withLock { state in
                state.requests.append(Request(input: input, continuation: continuation))
                defer { state.draining = true }
                return !state.draining
            }
            if startsDrain { queue.async { self.drain() } }
        }
    }

    /// Runs waiting requests in batches on the inference queue until none is left.
    private func drain() {
        while true {
            let batch: [Request] = waiting.withLock { state in
                guard !state.requests.isEmpty else {
                    state.draining = false
                    return []
                }
                let taken = Array(state.requests.prefix(Self.maxBatch))
                state.requests.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            let model: CLIPModel
            do {
                model = try self.model()
            } catch {
                for request in batch { request.continuation.resume(throwing: error) }
                continue
            }
            var images: [(Request, [Float])] = []
            var texts: [(Request, [Int32])] = []
            for request in batch {
                switch request.input {
                case .image(let data):
                    do {
                        images.append(
                            (request, try model.preprocessor.pixelValues(imageData: data, maxPixels: maxPixels)))
                    } catch {
                        request.continuation.resume(throwing: error)
                    }
                case .text(let text):
                    texts.append((request, model.tokenize(text)))
                }
            }
            if !images.isEmpty {
                let vectors = model.embed(pixelValues: images.map(\.1), threads: threads)
                for ((request, _), vector) in zip(images, vectors) { request.continuation.resume(returning: vector) }
            }
            if !texts.isEmpty {
                let vectors = model.embed(tokenSequences: texts.map(\.1), threads: threads)
                for ((request, _), vector) in zip(texts, vectors) { request.continuation.resume(returning: vector) }
            }
        }
    }

    private func run(_ work: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}

extension Duration {
    /// The duration in seconds.
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
