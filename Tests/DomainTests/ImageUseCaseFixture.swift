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

    /// The same ports and settings, with the metadata store reached through `store`.
    func images(over store: any ImageStore) -> ImageServices {
        ImageServices(
            store: store, blobs: images.blobs, codec: images.codec, embedder: images.embedder,
            vectors: images.vectors, deadLetters: images.deadLetters, settings: images.settings)
    }
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

/// An embedder of three dimensions that reads text: every text embeds as the first axis, and
/// images are not embedded (tests store their vectors themselves).
struct AxisEmbedder: Embedder {
    var modelID: String { "axis" }
    var dimensions: Int { 3 }
    var supportsText: Bool { true }
    var textRelevance: RelevanceScale { .cosine }
    func embed(image data: Data) async throws -> [Float] { throw DomainError(.unavailable, "no images") }
    func embed(text: String) async throws -> [Float] { [1, 0, 0] }
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

/// A metadata store that is unreachable for its next `begin` calls to begin processing, its next
/// `postpone` calls to postpone it, its next `lookup` calls to read an image by id, and its next
/// `insert` calls to insert an image (each fails as a store that cannot be reached does:
/// ``DomainError`` unavailable), and otherwise the in-memory store. With `insertCommits` (or
/// `beginCommits`), a failing insert (or begin) commits first and loses only its answer.
final class InterruptedImageStore: ImageStore {
    let store: MemoryMetadataStore
    /// Calls still to fail.
    private let beginOutage: Locked<Int>
    private let postponeOutage: Locked<Int>
    private let lookupOutage: Locked<Int>
    private let insertOutage: Locked<Int>
    private let insertCommits: Bool
    private let beginCommits: Bool
    /// Calls that failed.
    let failedCalls = Locked(0)

    init(
        _ store: MemoryMetadataStore, begin: Int = 0, postpone: Int = 0, lookup: Int = 0, insert: Int = 0,
        insertCommits: Bool = false, beginCommits: Bool = false
    ) {
        self.beginCommits = beginCommits
        self.store = store
        self.beginOutage = Locked(begin)
        self.postponeOutage = Locked(postpone)
        self.lookupOutage = Locked(lookup)
        self.insertOutage = Locked(insert)
        self.insertCommits = insertCommits
    }

    private func reachable(_ outage: Locked<Int>) throws {
        let down = outage.withLock { remaining in
            defer { remaining = max(0, remaining - 1) }
            return remaining > 0
        }
        guard down else { return }
        failedCalls.withLock { $0 += 1 }
        throw DomainError(.unavailableFor(retryAfterSeconds: 1), "The metadata store is unavailable: refused")
    }

    func beginProcessing(
        id: ImageID, teamID: TeamID, model: String, maxAttempts: Int, at date: Date
    ) async throws -> ProcessingStart {
        if beginCommits {
            let start = try await store.beginProcessing(
                id: id, teamID: teamID, model: model, maxAttempts: maxAttempts, at: date)
            try reachable(beginOutage)
            return start
        }
        try reachable(beginOutage)
        return try await store.beginProcessing(id: id, teamID: teamID, model: model, maxAttempts: maxAttempts, at: date)
    }
    func postponeProcessing(
        id: ImageID, teamID: TeamID, waitingFor reason: String, at date: Date, publishing message: OutboxMessage,
        dueAt: Date
    ) async throws -> ImageRecord? {
        try reachable(postponeOutage)
        return try await store.postponeProcessing(
            id: id, teamID: teamID, waitingFor: reason, at: date, publishing: message, dueAt: dueAt)
    }
    func completeProcessing(
        id: ImageID, teamID: TeamID, model: String, dimensions: Int, perceptualHash: PerceptualHash?, at date: Date
    ) async throws {
        try await store.completeProcessing(
            id: id, teamID: teamID, model: model, dimensions: dimensions, perceptualHash: perceptualHash, at: date)
    }
    func perceptualHashes(teamID: TeamID) async throws -> [HashedImage] {
        try await store.perceptualHashes(teamID: teamID)
    }
    func insertCollection(_ collection: ImageCollection) async throws { try await store.insertCollection(collection) }
    func collection(id: UUID, teamID: TeamID) async throws -> ImageCollection? {
        try await store.collection(id: id, teamID: teamID)
    }
    func collections(teamID: TeamID) async throws -> [ImageCollection] { try await store.collections(teamID: teamID) }
    func updateCollection(_ collection: ImageCollection) async throws -> Bool {
        try await store.updateCollection(collection)
    }
    func deleteCollection(id: UUID, teamID: TeamID, at date: Date) async throws -> [ImageRecord] {
        try await store.deleteCollection(id: id, teamID: teamID, at: date)
    }
    func collectionLabels(teamID: TeamID) async throws -> [CollectionLabel] {
        try await store.collectionLabels(teamID: teamID)
    }
    func failProcessing(id: ImageID, teamID: TeamID, error: String, final: Bool, at date: Date) async throws {
        try await store.failProcessing(id: id, teamID: teamID, error: error, final: final, at: date)
    }
    func requeueImage(
        id: ImageID, teamID: TeamID, at date: Date, publishing message: OutboxMessage
    ) async throws -> ImageRecord? {
        try await store.requeueImage(id: id, teamID: teamID, at: date, publishing: message)
    }
    func requeueImages(
        teamID: TeamID, notEmbeddedWith model: String, includeCurrent: Bool, reason: String, at date: Date
    ) async throws -> Int {
        try await store.requeueImages(
            teamID: teamID, notEmbeddedWith: model, includeCurrent: includeCurrent, reason: reason, at: date)
    }
    func embeddingSummary(teamID: TeamID, model: String) async throws -> EmbeddingSummary {
        try await store.embeddingSummary(teamID: teamID, model: model)
    }
    func insertImage(_ image: ImageRecord, publishing message: OutboxMessage, allowDuplicate: Bool) async throws {
        if insertCommits {
            try await store.insertImage(image, publishing: message, allowDuplicate: allowDuplicate)
            try reachable(insertOutage)
        } else {
            try reachable(insertOutage)
            try await store.insertImage(image, publishing: message, allowDuplicate: allowDuplicate)
        }
    }
    func image(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try reachable(lookupOutage)
        return try await store.image(id: id, teamID: teamID)
    }
    func images(ids: [ImageID], teamID: TeamID) async throws -> [ImageRecord] {
        try await store.images(ids: ids, teamID: teamID)
    }
    func images(teamID: TeamID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord> {
        try await store.images(teamID: teamID, filter: filter, page)
    }
    func image(sha256: String, teamID: TeamID) async throws -> ImageRecord? {
        try await store.image(sha256: sha256, teamID: teamID)
    }
    func updateImage(_ image: ImageRecord) async throws -> Bool { try await store.updateImage(image) }
    func deleteImage(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await store.deleteImage(id: id, teamID: teamID)
    }
    func searchText(_ words: [String], teamID: TeamID, filter: ImageFilter, limit: Int) async throws -> [TextMatch] {
        try await store.searchText(words, teamID: teamID, filter: filter, limit: limit)
    }
}
