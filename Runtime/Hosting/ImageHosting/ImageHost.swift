import CLIPEmbedding
import CLIPInference
import CloudStorage
import EmbeddedVectorIndex
import FileSystemStorage
import Foundation
import FunctionHosting
import FunctionsFramework
import ImageAPICore
import ImageProcessing
import Logging
import MemoryStorage
import PostgresStorage
import QdrantVectorIndex
import VertexAI

/// A CLIP model directory that cannot be used: the process stops with status 78.
public struct UnusableEmbeddingModel: StartupRefusal {
    /// What is wrong, naming the file.
    public let error: CLIPModelError
    /// The model directory.
    public let directory: String

    /// The log line.
    public var message: String { "The CLIP model cannot be used; not starting" }
    /// The error and the directory.
    public var metadata: Logger.Metadata { ["error": "\(error)", "directory": .string(directory)] }
}

/// Vector storage that holds another vector length than the embedder makes: the process stops
/// with status 78.
public struct IncompatibleVectorStorage: StartupRefusal {
    /// What differs, naming both sizes (the index adapter's ``VectorShapeMismatch``).
    public let error: any Error

    /// The log line.
    public var message: String { "The vector index cannot hold this embedder's vectors; not starting" }
    /// The error.
    public var metadata: Logger.Metadata { ["error": "\(error)"] }
}

/// Builds the image pipeline's ports (blob store, codec, embedder, vector index) for the
/// functions that use them: UploadImage, ProcessEmbedding, Search and the emulator. Management
/// functions never import this target, so they link neither libvips nor OpenBLAS nor CLIP.
public enum ImageHost {
    /// The libvips codec with the process's decode-memory budget, shared by uploads, thumbnails
    /// and the visual-features embedder.
    /// - Parameter settings: The image settings.
    /// - Returns: The codec.
    public static func codec(_ settings: ImageSettings) -> any ImageCodec {
        ImageProcessingFactory.codec(decodeMemoryMegabytes: settings.decodeMemoryMegabytes)
    }

    /// The embedder the settings choose. With `EMBEDDING_PROVIDER=auto`, CLIP is used when
    /// `CLIP_MODEL_DIR` holds a model and the visual-features embedder otherwise, with one log
    /// line saying why and how to get the model.
    /// - Parameters:
    ///   - settings: The image settings.
    ///   - variables: The process's variables, for a remote embedder's own settings.
    ///   - logger: Where the choice and the model's load are reported.
    /// - Returns: The embedder.
    /// - Throws: ``CLIPModelError`` when CLIP is chosen (or a model directory is present) but a
    ///   file is missing or wrong: the process must not start with a model it cannot trust.
    public static func makeEmbedder(
        _ settings: ImageSettings, variables: EnvironmentVariables = EnvironmentVariables([:]), logger: Logger
    ) throws -> any Embedder {
        let directory = URL(fileURLWithPath: settings.clipModelDirectory)
        func clip() throws -> any Embedder {
            let embedder = try CLIPEmbedderFactory.build(
                directory: directory, threads: settings.clipThreads, maxPixels: settings.maxImagePixels, logger: logger)
            logger.info(
                "Embedding with CLIP",
                metadata: ["model": .string(embedder.modelID), "threads": .stringConvertible(settings.clipThreads)])
            return embedder
        }
        switch settings.embeddingProvider {
        case .vertex:
            let embedder = try VertexAIFactory.build(from: variables).adapter
            logger.info("Embedding with Vertex AI", metadata: ["model": .string(embedder.modelID)])
            return embedder
        case .visual:
            return ImageProcessingFactory.visualEmbedder(decodeMemoryMegabytes: settings.decodeMemoryMegabytes)
        case .clip:
            return try clip()
        case .automatic:
            if CLIPEmbedderFactory.looksLikeModel(directory) { return try clip() }
            logger.notice(
                """
                No CLIP model in \(settings.clipModelDirectory): using the visual-features embedder \
                (image similarity only, no semantic text search). Run `make model` to download \
                openai/clip-vit-base-patch32 there, or set CLIP_MODEL_DIR.
                """)
            return ImageProcessingFactory.visualEmbedder(decodeMemoryMegabytes: settings.decodeMemoryMegabytes)
        }
    }

    /// The blob store `BLOB_BACKEND` names, built by its adapter's factory.
    /// - Parameter configuration: The process configuration.
    /// - Returns: The store and the work it needs run.
    /// - Throws: When the store cannot be opened.
    public static func makeBlobStore(_ configuration: HostConfiguration) throws -> BuiltAdapter<any BlobStore> {
        switch configuration.backends.blobs {
        case .filesystem: try FileSystemStorageFactory.build(from: configuration.variables).map { $0 }
        case .memory: try MemoryBlobStoreFactory.build(from: configuration.variables).map { $0 }
        case .gcs: try CloudStorageFactory.build(from: configuration.variables).map { $0 }
        }
    }

    /// The vector index `VECTOR_BACKEND` names, built by its adapter's factory.
    /// - Parameter configuration: The process configuration.
    /// - Returns: The index (loaded) and the work it needs run.
    /// - Throws: When the index cannot be opened.
    public static func makeVectorIndex(_ configuration: HostConfiguration) throws -> BuiltAdapter<any VectorIndex> {
        switch configuration.backends.vectors {
        case .embedded: try EmbeddedVectorIndexFactory.build(from: configuration.variables).map { $0 }
        case .memory: try MemoryVectorIndexFactory.build(from: configuration.variables).map { $0 }
        case .qdrant: try QdrantVectorIndexFactory.build(from: configuration.variables).map { $0 }
        case .pgvector: try PgvectorIndexFactory.build(from: configuration.variables).map { $0 }
        }
    }

    /// Builds the image ports over the process's metadata store.
    /// - Parameters:
    ///   - services: The process's hosted services.
    ///   - embedder: The embedder to use instead of the configured one (tests inject failures).
    ///   - preparesEmbedder: Whether the embedder's model is loaded and warmed now (processes that
    ///     embed: ProcessEmbedding for uploads, Search for text queries); otherwise it loads on
    ///     first use.
    /// - Returns: The image services.
    /// - Throws: ``UnusableEmbeddingModel`` for a broken model directory, or when a store cannot
    ///   be opened.
    public static func makeImageServices(
        _ services: HostedServices, embedder: (any Embedder)? = nil, preparesEmbedder: Bool = false
    ) async throws -> ImageServices {
        let configuration = services.configuration
        var chosen: any Embedder
        do {
            chosen =
                try embedder
                ?? makeEmbedder(configuration.images, variables: configuration.variables, logger: services.logger)
        } catch let error as CLIPModelError {
            throw UnusableEmbeddingModel(error: error, directory: configuration.images.clipModelDirectory)
        }
        chosen = MeasuredEmbedder(embedder: chosen)
        if chosen.supportsText, configuration.images.queryCacheSize > 0 {
            chosen = QueryEmbeddingCache(
                chosen, capacity: configuration.images.queryCacheSize, logger: services.logger)
        }
        let blobs = try makeBlobStore(configuration)
        let vectors = try makeVectorIndex(configuration)
        do {
            try await vectors.adapter.prepare(model: chosen.modelID, dimensions: chosen.dimensions)
        } catch let mismatch as any VectorShapeMismatch {
            throw IncompatibleVectorStorage(error: mismatch)
        }
        services.background.add(blobs.background + vectors.background)
        let images = ImageServices(
            store: services.imageStore, blobs: blobs.adapter, codec: codec(configuration.images), embedder: chosen,
            vectors: MeasuredVectorIndex(index: vectors.adapter, backend: configuration.backends.vectors.rawValue),
            deadLetters: services.deadLetters, settings: configuration.images,
            outages: .adapters)
        if preparesEmbedder { try await images.embedder.prepare() }
        return images
    }

    /// Runs an image function process: ``FunctionHost/main(configuration:localDelivery:pushPath:onListening:_:)``
    /// with the image ports built before the functions.
    /// - Parameters:
    ///   - configuration: The configuration, when the caller has already read it.
    ///   - relaysOutbox: Whether the functions write the outbox, so that this process delivers it.
    ///   - localDelivery: Where the local Pub/Sub pushes when `PUBSUB_PUSH_ENDPOINT` is not set.
    ///   - pushPath: Where this process takes Pub/Sub's pushes, for `--create-resources`.
    ///   - preparesEmbedder: Whether the model is loaded and warmed before serving.
    ///   - onListening: Called with the bound address once the server accepts connections.
    ///   - makeFunctions: Builds the functions from the services and the image ports.
    public static func main(
        configuration: HostConfiguration? = nil,
        relaysOutbox: Bool,
        localDelivery: LocalDeliveryTarget? = nil,
        pushPath: String? = nil,
        preparesEmbedder: Bool = false,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in },
        _ makeFunctions: @escaping @Sendable (HostedServices, ImageServices) -> [any HTTPFunction]
    ) async {
        await FunctionHost.main(
            configuration: configuration, relaysOutbox: relaysOutbox, localDelivery: localDelivery, pushPath: pushPath,
            onListening: onListening
        ) { services in
            let images = try await makeImageServices(services, preparesEmbedder: preparesEmbedder)
            if relaysOutbox { services.background.add(try orphanBlobSweep(images, services)) }
            return makeFunctions(services, images)
        }
    }

    /// In a process that writes images, the sweep of blobs no record names
    /// (``ImageLibrary/removeOrphanBlobs(writtenBefore:)``: what a process that died mid-upload or
    /// mid-delete leaves): every `ORPHAN_BLOB_SWEEP_SECONDS` (an hour; 0 never), the blobs written
    /// more than `ORPHAN_BLOB_GRACE_SECONDS` ago (an hour). A sweep that fails is logged and tried
    /// again at the next.
    /// - Parameters:
    ///   - images: The image ports.
    ///   - services: The process's services (its clock, logger and variables).
    /// - Returns: The sweep, or nothing when it is off.
    /// - Throws: `ConfigurationError` for a setting out of range.
    static func orphanBlobSweep(_ images: ImageServices, _ services: HostedServices) throws -> [BackgroundWork] {
        let variables = services.configuration.variables
        let interval = try variables.integer("ORPHAN_BLOB_SWEEP_SECONDS", default: 3600, in: 0...86_400 * 7)
        let grace = try variables.integer("ORPHAN_BLOB_GRACE_SECONDS", default: 3600, in: 1...86_400 * 7)
        guard interval > 0 else { return [] }
        let library = ImageLibrary(images: images, clock: services.api.clock)
        let logger = services.logger
        let clock = services.api.clock
        return [
            BackgroundWork(name: "orphan blob sweep") {
                while !Task.isCancelled {
                    // Cancelled when the process shuts down: the sweep simply ends.
                    do { try await Task.sleep(for: .seconds(interval)) } catch { return }
                    do {
                        let removed = try await library.removeOrphanBlobs(
                            writtenBefore: clock.now().addingTimeInterval(-Double(grace)))
                        if removed > 0 {
                            logger.notice(
                                "Removed blobs that no image names", metadata: ["blobs": .stringConvertible(removed)])
                        }
                    } catch {
                        logger.warning("The orphan blob sweep failed", metadata: ["error": .string("\(error)")])
                    }
                }
            }
        ]
    }
}
