import Foundation
import RuntimeSupport

/// Which embedder computes image vectors.
public enum EmbeddingProvider: String, Sendable, CaseIterable {
    /// CLIP when `CLIP_MODEL_DIR` holds a model, otherwise the visual-features descriptor.
    case automatic = "auto"
    /// The in-process CLIP engine with the model in `CLIP_MODEL_DIR`: semantic text search and
    /// image similarity. A missing or broken model stops the process at start.
    case clip
    /// The built-in visual-features descriptor: image-to-image similarity only.
    case visual
    /// Vertex AI's `multimodalembedding@001` (`GOOGLE_CLOUD_PROJECT`, `VERTEX_LOCATION`,
    /// `VERTEX_EMBEDDING_DIMENSION`): semantic text search and image similarity, remotely.
    case vertex
}

/// Limits and choices for the image pipeline, read from the environment.
public struct ImageSettings: Sendable {
    /// `MAX_UPLOAD_BYTES`: the largest accepted image file (default 20 MiB).
    public var maxUploadBytes: Int
    /// `MAX_IMAGE_PIXELS`: the largest accepted width × height (default 100 megapixels).
    public var maxImagePixels: Int
    /// `BLOB_DIR`: where the filesystem blob store keeps bytes (default `DATA_DIR/blobs`).
    public var blobDirectory: String
    /// Where uploads are written as they arrive: `.uploads` in `BLOB_DIR`, beside the blobs, so
    /// that the filesystem blob store takes an accepted file with a rename.
    public var uploadStagingDirectory: String { (blobDirectory as NSString).appendingPathComponent(".uploads") }
    /// `EMBEDDING_PROVIDER`: `auto` (the default), `clip` or `visual`.
    public var embeddingProvider: EmbeddingProvider
    /// `CLIP_MODEL_DIR`: the Hugging Face CLIP directory (default `./models/clip-vit-base-patch32`).
    public var clipModelDirectory: String
    /// `CLIP_THREADS`: threads one CLIP inference uses (default: the processor count).
    public var clipThreads: Int
    /// `THUMBNAIL_SIZE`: the thumbnail's longer side in pixels (default 256).
    public var thumbnailSize: Int
    /// `PROCESSING_MAX_ATTEMPTS`: processing attempts before an image is failed for good (default 3).
    public var maxProcessingAttempts: Int
    /// `MAX_CONCURRENT_UPLOADS`: uploads read and checked at once (default: half the processors,
    /// at least 1), so that uploads never hold every thread that serves other requests.
    public var maxConcurrentUploads: Int
    /// `UPLOAD_QUEUE_LIMIT`: uploads that may wait for a place (default 16); more are answered 503.
    public var uploadQueueLimit: Int
    /// `DECODE_MEMORY_MB`: the memory full decodes may hold at once, in MiB (default 512).
    public var decodeMemoryMegabytes: Int
    /// `PROCESSING_POSTPONE_LIMIT_SECONDS`: how long processing waits for a dependency that is
    /// down (the vector index, the blob store, the embedding service) before the image fails,
    /// counted from its first postponement (default 86400, a day).
    public var postponeLimitSeconds: Int
    /// `SEARCH_RRF_K`, `SEARCH_SEMANTIC_WEIGHT`, `SEARCH_TEXT_WEIGHT`: how hybrid search fuses
    /// its two rankings.
    public var hybridRanking: HybridRanking
    /// `QUERY_CACHE_SIZE`: how many query texts' embeddings a process keeps (default 10,000; 0
    /// keeps none).
    public var queryCacheSize: Int

    /// Creates settings.
    public init(
        maxUploadBytes: Int = 20 * 1024 * 1024, maxImagePixels: Int = 100_000_000, blobDirectory: String,
        embeddingProvider: EmbeddingProvider = .visual, clipModelDirectory: String = Self.defaultCLIPModelDirectory,
        clipThreads: Int = ProcessInfo.processInfo.activeProcessorCount, thumbnailSize: Int = 256,
        maxProcessingAttempts: Int = 3, maxConcurrentUploads: Int = ImageSettings.defaultConcurrentUploads,
        uploadQueueLimit: Int = 16, decodeMemoryMegabytes: Int = 512, postponeLimitSeconds: Int = 86_400,
        hybridRanking: HybridRanking = HybridRanking(), queryCacheSize: Int = 10_000
    ) {
        self.queryCacheSize = queryCacheSize
        self.postponeLimitSeconds = postponeLimitSeconds
        self.hybridRanking = hybridRanking
        self.maxConcurrentUploads = maxConcurrentUploads
        self.uploadQueueLimit = uploadQueueLimit
        self.decodeMemoryMegabytes = decodeMemoryMegabytes
        self.clipModelDirectory = clipModelDirectory
        self.clipThreads = clipThreads
        self.maxUploadBytes = maxUploadBytes
        self.maxImagePixels = maxImagePixels
        self.blobDirectory = blobDirectory
        self.embeddingProvider = embeddingProvider
        self.thumbnailSize = thumbnailSize
        self.maxProcessingAttempts = maxProcessingAttempts
    }
}

extension ImageSettings {
    /// Where `make model` puts the default checkpoint, relative to the working directory.
    public static let defaultCLIPModelDirectory = "./models/clip-vit-base-patch32"
    /// Half the processors, at least one.
    public static let defaultConcurrentUploads = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
}

/// Everything the image functions work with: the ports and the settings.
public struct ImageServices: Sendable {
    /// Image metadata, with its outbox.
    public let store: any ImageStore
    /// Original and thumbnail bytes.
    public let blobs: any BlobStore
    /// Decoding and thumbnails.
    public let codec: any ImageCodec
    /// Image (and maybe text) embeddings.
    public let embedder: any Embedder
    /// Vectors for similarity search.
    public let vectors: any VectorIndex
    /// Messages given up on.
    public let deadLetters: any DeadLetterQueue
    /// Limits and choices.
    public let settings: ImageSettings
    /// Which errors of these ports mean a dependency is unavailable: processing is postponed, not
    /// failed (see ``EmbeddingPipeline``).
    public let outages: OutageClassifier

    /// Bundles the ports.
    public init(
        store: any ImageStore, blobs: any BlobStore, codec: any ImageCodec, embedder: any Embedder,
        vectors: any VectorIndex, deadLetters: any DeadLetterQueue, settings: ImageSettings,
        outages: OutageClassifier = OutageClassifier()
    ) {
        self.outages = outages
        self.store = store
        self.blobs = blobs
        self.codec = codec
        self.embedder = embedder
        self.vectors = vectors
        self.deadLetters = deadLetters
        self.settings = settings
    }
}
