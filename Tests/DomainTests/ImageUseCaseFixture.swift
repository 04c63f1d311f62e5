import Crypto
import Foundation
import ImageAPICore
import ImageProcessing
import Locking
import MemoryStorage
import RuntimeSupport
import Testing

/// The image use cases over the in-memory backends, with the real codec (libvips) and the
/// visual-features embedder, and a clock tests move by hand.
struct ImageUseCaseFixture {
    let store = MemoryMetadataStore()
    let blobs = MemoryBlobStore()
    let vectors = MemoryVectorIndex()
    let clock = FixedClock()
    let images: ImageServices
    let team = TeamID()
    let uploader = UserID()
    let staging: URL

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    init(
        embedder: any Embedder = VisualFeaturesEmbedder(), maxImagePixels: Int = 100_000_000,
        postponeLimitSeconds: Int = 86_400
    ) {
        staging = FileManager.default.temporaryDirectory.appendingPathComponent("domain-tests-\(UUID())")
        images = ImageServices(
            store: store, blobs: blobs, codec: VipsImageCodec(), embedder: embedder, vectors: vectors,
            deadLetters: store,
            settings: ImageSettings(
                maxImagePixels: maxImagePixels, blobDirectory: staging.path, maxProcessingAttempts: 3,
                postponeLimitSeconds: postponeLimitSeconds))
    }

    var uploads: ImageUploads { ImageUploads(images: images, clock: clock) }
    var pipeline: EmbeddingPipeline { EmbeddingPipeline(images: images, clock: clock) }
    var library: ImageLibrary { ImageLibrary(images: images, clock: clock) }
    var search: ImageSearch { ImageSearch(images: images) }

    /// A staged copy of bytes, as an upload path leaves them.
    func staged(_ bytes: Data) throws -> StagedUpload {
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        let path = staging.appendingPathComponent(UUID().uuidString).path
        try bytes.write(to: URL(fileURLWithPath: path))
        let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        return StagedUpload(path: path, size: bytes.count, sha256: digest, prefix: Array(bytes.prefix(32)))
    }

    /// The bytes of a fixture file.
    static func fixture(_ name: String) throws -> Data {
        try Data(contentsOf: fixtures.appendingPathComponent(name))
    }

    /// Uploads a fixture and expects it stored.
    func upload(_ name: String, _ details: UploadDetails? = nil) async throws -> ImageRecord {
        let outcome = try await uploads.accept(
            try staged(try Self.fixture(name)), details ?? UploadDetails(filename: name), teamID: team,
            uploaderID: uploader)
        guard case .stored(let image) = outcome else {
            Issue.record("\(name) was not stored: \(outcome)")
            throw FixtureError.notStored
        }
        return image
    }

    /// Delivers the processing messages waiting in the outbox to the pipeline, once each.
    func deliverAll() async throws -> [ProcessingOutcome] {
        let due = try await store.claimDueMessages(
            now: clock.now().addingTimeInterval(3600), leaseUntil: clock.now().addingTimeInterval(7200), limit: 100)
        var outcomes: [ProcessingOutcome] = []
        for queued in due {
            outcomes.append(try await deliver(queued.message))
            try await store.acknowledge(messageID: queued.message.messageID)
        }
        return outcomes
    }

    /// Delivers one message to the pipeline.
    func deliver(_ message: OutboxMessage) async throws -> ProcessingOutcome {
        let request = try JSONCoding.makeDecoder().decode(ImageProcessingRequest.self, from: message.data)
        return try await pipeline.process(
            ProcessingDelivery(messageID: message.messageID, data: message.data, request: request))
    }

    /// Removes the staging folder.
    func removeStaging() {
        try? FileManager.default.removeItem(at: staging)
    }
}

enum FixtureError: Error {
    case notStored
}

/// A clock that stands still unless moved.
final class FixedClock: TimeSource {
    private let current = Locked(Date(timeIntervalSince1970: 1_800_000_000))
    func now() -> Date { current.withLock { $0 } }
    func advance(seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The visual-features embedder behind a switch: while `down`, every call fails as an embedding
/// service that cannot be reached does (``DomainError`` unavailable).
final class SwitchedEmbedder: Embedder {
    let down = Locked(true)
    private let embedder = VisualFeaturesEmbedder()
    var modelID: String { embedder.modelID }
    var dimensions: Int { embedder.dimensions }
    var supportsText: Bool { false }
    func embed(image data: Data) async throws -> [Float] {
        if down.withLock({ $0 }) { throw DomainError(.unavailable, "the embedding service is unreachable") }
        return try await embedder.embed(image: data)
    }
    func embed(text: String) async throws -> [Float] { throw DomainError(.unavailable, "no text") }
}

/// An embedder whose every call fails, as one whose model refuses an image does.
struct RefusingEmbedder: Embedder {
    var modelID: String { "refusing" }
    var dimensions: Int { 4 }
    var supportsText: Bool { false }
    func embed(image data: Data) async throws -> [Float] { throw RefusalError() }
    func embed(text: String) async throws -> [Float] { throw RefusalError() }
    struct RefusalError: Error, CustomStringConvertible {
        var description: String { "the model refused the image" }
    }
}
