// swift-tools-version:6.2
import PackageDescription

/// Settings shared by every target: Swift 6 language mode, explicit existentials, and no
/// warnings (each is an error, in the project's own code; dependencies are not affected).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
]

/// One standalone executable per Cloud Function: a `Main` target that only wires configuration
/// to the importable handler library beside it.
/// Image functions host with `ImageHosting` (libvips, the embedders, the vector index); the
/// management functions with `FunctionHosting` alone.
func function(
    _ name: String, product: String, hosting: Target.Dependency = "FunctionHosting",
    extraDependencies: [Target.Dependency] = []
) -> [Target] {
    [
        .target(
            name: name,
            dependencies: ["FunctionsFramework", "ImageAPICore", "ImageAPIHTTP"] + extraDependencies,
            path: "Functions/\(name)/Handlers",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "\(name)Main",
            dependencies: [.target(name: name), hosting],
            path: "Functions/\(name)/Main",
            swiftSettings: swiftSettings
        ),
    ]
}

/// An adapter over a remote REST service (Cloud Storage, Pub/Sub, Vertex AI, Qdrant): the domain,
/// configuration, `OutboundHTTP`'s retrying calls and the HTTP client, plus what it adds.
func restAdapter(_ name: String, extraDependencies: [Target.Dependency] = []) -> Target {
    .target(
        name: name,
        dependencies: [
            "ImageAPICore", "Locking", "RuntimeSupport", "OutboundHTTP",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ] + extraDependencies,
        path: "Runtime/Adapters/\(name)",
        swiftSettings: swiftSettings
    )
}

let package = Package(
    name: "image-api",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "emulator", targets: ["EmulatorMain"]),
        .executable(name: "manage-teams", targets: ["ManageTeamsMain"]),
        .executable(name: "manage-users", targets: ["ManageUsersMain"]),
        .executable(name: "api-keys", targets: ["ApiKeysMain"]),
        .executable(name: "upload-image", targets: ["UploadImageMain"]),
        .executable(name: "process-embedding", targets: ["ProcessEmbeddingMain"]),
        .executable(name: "search", targets: ["SearchMain"]),
        .executable(name: "router", targets: ["FunctionRouterMain"]),
        .executable(name: "event-relay", targets: ["EventRelayMain"]),
        .executable(name: "image-bench", targets: ["ImageBenchmarks"]),
        .executable(name: "clip-bench", targets: ["CLIPBenchmarks"]),
        .executable(name: "search-bench", targets: ["SearchBenchmarks"]),
        .executable(name: "metadata-bench", targets: ["MetadataBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // A lock that ThreadSanitizer sees (`Locked`), for every layer.
        .target(name: "Locking", path: "Runtime/Support/Locking", swiftSettings: swiftSettings),
        // Helpers every layer shares: configuration (swift-configuration readers), JSON conventions.
        .target(
            name: "RuntimeSupport",
            dependencies: ["Locking", .product(name: "Configuration", package: "swift-configuration")],
            path: "Runtime/Support/RuntimeSupport",
            swiftSettings: swiftSettings
        ),
        // The functions framework: HTTP and CloudEvent functions, errors, logging, configuration.
        .target(
            name: "FunctionsFramework",
            dependencies: [
                "Locking", "RuntimeSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Runtime/HTTP/FunctionsFramework",
            swiftSettings: swiftSettings
        ),
        // The domain: models, ports, domain errors and the services on them. No HTTP.
        .target(
            name: "ImageAPICore",
            dependencies: [
                "Locking", "RuntimeSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Runtime/Domain/ImageAPICore",
            swiftSettings: swiftSettings
        ),
        // The domain over HTTP: domain errors as answers, callers from requests, input rules
        // (422 with `loc`) and route groups that authenticate before their handlers run.
        .target(
            name: "ImageAPIHTTP",
            dependencies: [
                "ImageAPICore", "FunctionsFramework",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Runtime/HTTP/ImageAPIHTTP",
            swiftSettings: swiftSettings
        ),
        // C libraries from Debian: libvips (decoding, EXIF, thumbnails) and OpenBLAS.
        .systemLibrary(
            name: "CVips", path: "Runtime/Engines/CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "Runtime/Engines/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Runtime/Engines/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The CLIP engine's packed matrix-product kernel (AVX2 and FMA, chosen at run time).
        // Optimised in debug builds too: unoptimised, the kernels make a debug emulator unusably slow.
        .target(name: "CLIPKernels", path: "Runtime/Engines/CLIPKernels", cSettings: [.unsafeFlags(["-O2"])]),
        // A non-variadic C interface over the libvips calls the project makes.
        .target(name: "VipsShim", dependencies: ["CVips"], path: "Runtime/Engines/VipsShim"),
        // libvips behind the image-codec port, and the built-in visual-features embedder.
        .target(
            name: "ImageProcessing",
            dependencies: ["ImageAPICore", "VipsShim", .product(name: "NIOPosix", package: "swift-nio")],
            path: "Runtime/Adapters/ImageProcessing",
            swiftSettings: swiftSettings
        ),
        // The CLIP inference engine: Hugging Face checkpoints, tokenizer, preprocessing, both towers.
        // A general engine: it knows nothing of the application.
        .target(
            name: "CLIPInference",
            dependencies: [
                "Locking", "VipsShim", "COpenBLAS", "CZlib", "CLIPKernels",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Runtime/Engines/CLIPInference",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        // The CLIP engine behind the application's embedder port.
        .target(
            name: "CLIPEmbedding",
            dependencies: [
                "Locking", "ImageAPICore", "CLIPInference", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Runtime/Adapters/CLIPEmbedding",
            swiftSettings: swiftSettings
        ),
        // Contiguous Float32 vectors scored with BLAS.
        .target(
            name: "VectorMath",
            dependencies: ["COpenBLAS"],
            path: "Runtime/Engines/VectorMath",
            swiftSettings: swiftSettings
        ),
        // The embedded blob store: files under the data directory.
        .target(
            name: "FileSystemStorage",
            dependencies: [
                "Locking", "ImageAPICore", "RuntimeSupport", .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Runtime/Adapters/FileSystemStorage",
            swiftSettings: swiftSettings
        ),
        // The embedded SQLite implementations: metadata, images with their outbox, the local
        // Pub/Sub queue and its dead letters.
        .target(
            name: "SQLiteStorage",
            dependencies: ["ImageAPICore", "RuntimeSupport", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Runtime/Adapters/SQLiteStorage",
            swiftSettings: swiftSettings
        ),
        // The PostgreSQL implementations (postgres-nio), for several machines: metadata, images with
        // their outbox (claimed with SKIP LOCKED, relays woken by LISTEN/NOTIFY) and dead letters;
        // and the vector index on pgvector.
        .target(
            name: "PostgresStorage",
            dependencies: [
                "Locking", "ImageAPICore", "RuntimeSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Runtime/Adapters/PostgresStorage",
            swiftSettings: swiftSettings
        ),
        // Calls to remote REST services: timeouts, retries with jittered backoff, errors that
        // name the service. A general library: it knows nothing of the application.
        .target(
            name: "OutboundHTTP",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Runtime/Engines/OutboundHTTP",
            swiftSettings: swiftSettings
        ),
        // Google's Application Default Credentials: service-account keys and the metadata server.
        // A general library: it knows nothing of the application.
        .target(
            name: "GoogleCloudAuth",
            dependencies: [
                "Locking", "RuntimeSupport", "OutboundHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Runtime/Engines/GoogleCloudAuth",
            swiftSettings: swiftSettings
        ),
        // Image bytes in a Cloud Storage bucket, through the JSON API.
        restAdapter(
            "CloudStorage",
            extraDependencies: [
                "GoogleCloudAuth", .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Processing events on a Pub/Sub topic, through the REST API.
        restAdapter("PubSub", extraDependencies: ["GoogleCloudAuth"]),
        // Vertex AI's multimodal embedding model behind the embedder port.
        restAdapter(
            "VertexAI",
            extraDependencies: ["GoogleCloudAuth", .product(name: "Logging", package: "swift-log")]),
        // Firestore's REST API v1: the typed-value codec, documents, queries, counts, transactions.
        restAdapter("FirestoreStorage", extraDependencies: ["GoogleCloudAuth"]),
        // Vectors in a Qdrant collection per embedding model, through Qdrant's REST API.
        restAdapter("QdrantVectorIndex", extraDependencies: [.product(name: "Logging", package: "swift-log")]),
        // Every metadata port and a vector index in memory: not durable, for tests and demos.
        .target(
            name: "MemoryStorage",
            dependencies: ["Locking", "ImageAPICore", "RuntimeSupport"],
            path: "Runtime/Adapters/MemoryStorage",
            swiftSettings: swiftSettings
        ),
        // The embedded vector index: vectors kept in a SQLite file, searched in memory with BLAS.
        .target(
            name: "EmbeddedVectorIndex",
            dependencies: [
                "Locking", "ImageAPICore", "RuntimeSupport", "VectorMath",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Runtime/Adapters/EmbeddedVectorIndex",
            swiftSettings: swiftSettings
        ),
        // Turns configuration into the metadata store and serves functions with it: all that
        // the management functions link.
        // The local push subscription: the events port as HTTP pushes in Pub/Sub's push format.
        .target(
            name: "LocalPush",
            dependencies: [
                "ImageAPICore", "FunctionsFramework", "Locking",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Runtime/Adapters/LocalPush",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FunctionHosting",
            dependencies: [
                "Locking", "FunctionsFramework", "ImageAPICore", "SQLiteStorage", "MemoryStorage", "FirestoreStorage",
                "PostgresStorage",
                "PushAuthentication", "PubSub", "LocalPush", "OutboundHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Runtime/Hosting/FunctionHosting",
            swiftSettings: swiftSettings
        ),
        // The image pipeline's adapters for the image functions: blob store, codec, embedders
        // and the vector index.
        .target(
            name: "ImageHosting",
            dependencies: [
                "Locking", "FunctionHosting", "FunctionsFramework", "ImageAPICore", "FileSystemStorage", "CloudStorage",
                "VertexAI", "ImageProcessing",
                "CLIPInference", "CLIPEmbedding", "EmbeddedVectorIndex", "MemoryStorage", "QdrantVectorIndex",
                "PostgresStorage", "SQLiteStorage", "RuntimeSupport",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Runtime/Hosting/ImageHosting",
            swiftSettings: swiftSettings
        ),
        // Who may deliver events: Google-signed OIDC tokens of Pub/Sub push, or a shared token.
        .target(
            name: "PushAuthentication",
            dependencies: [
                "Locking", "FunctionsFramework",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Runtime/Adapters/PushAuthentication",
            swiftSettings: swiftSettings
        ),
        // The local function emulator: every function on one port, OpenAPI document and docs page.
        .target(
            name: "Emulator",
            dependencies: [
                "FunctionHosting", "ImageHosting", "LocalPush", "ManageTeams", "ManageUsers", "ApiKeys",
                "UploadImage", "ProcessEmbedding", "Search",
            ],
            path: "Runtime/Hosting/Emulator",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EmulatorMain",
            dependencies: [
                "Emulator", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Runtime/Executables/EmulatorMain",
            swiftSettings: swiftSettings
        ),
        // The outbox relay as a process of its own, in front of ProcessEmbedding's replicas.
        .executableTarget(
            name: "EventRelayMain", dependencies: ["FunctionHosting"], path: "Runtime/Executables/EventRelayMain",
            swiftSettings: swiftSettings),
        // The router in front of the separate function processes of a local cloud topology: the
        // production URL map on one port. It knows the map, not the functions.
        .target(
            name: "FunctionRouter",
            dependencies: [
                "Locking", "FunctionsFramework", "RuntimeSupport", "OutboundHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Runtime/Hosting/FunctionRouter",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FunctionRouterMain", dependencies: ["FunctionRouter"],
            path: "Runtime/Executables/FunctionRouterMain",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "GoogleCloudTests",
            dependencies: [
                "Locking", "GoogleCloudAuth", "VertexAI", "CloudStorage", "ImageAPICore", "RuntimeSupport",
                "OutboundHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/GoogleCloudTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FunctionsFrameworkTests",
            dependencies: [
                "Locking", "FunctionsFramework",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            path: "Tests/FunctionsFrameworkTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CLIPInferenceTests",
            dependencies: [
                "CLIPInference", "CLIPEmbedding", "CLIPKernels", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/CLIPInferenceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "APITests",
            dependencies: [
                "Locking", "Emulator", "PushAuthentication", "ImageHosting", "EmbeddedVectorIndex", "CLIPEmbedding",
                "TestSupport", "LocalPush",
                "MemoryStorage", "FunctionRouter", "FirestoreStorage", "PostgresStorage",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/APITests",
            swiftSettings: swiftSettings
        ),
        // What the benchmark executables share: one failure line instead of a crash, paths from the caller.
        .target(name: "BenchmarkSupport", path: "Benchmarks/BenchmarkSupport", swiftSettings: swiftSettings),
        .executableTarget(
            name: "ImageBenchmarks",
            dependencies: [
                "BenchmarkSupport", "Emulator", "SQLiteStorage", "EmbeddedVectorIndex", "ImageProcessing", "COpenBLAS",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Benchmarks/ImageBenchmarks",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CLIPBenchmarks",
            dependencies: ["BenchmarkSupport", "CLIPInference", "CLIPKernels", "COpenBLAS"],
            path: "Benchmarks/CLIPBenchmarks",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SearchBenchmarks",
            dependencies: [
                "BenchmarkSupport", "CLIPInference", "CLIPEmbedding", "SQLiteStorage", "EmbeddedVectorIndex",
                "QdrantVectorIndex",
                "PostgresStorage", "ImageAPICore", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/SearchBenchmarks",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MetadataBenchmarks",
            dependencies: [
                "BenchmarkSupport", "Locking", "SQLiteStorage", "FirestoreStorage", "PostgresStorage", "ImageAPICore",
            ],
            path: "Benchmarks/MetadataBenchmarks",
            swiftSettings: swiftSettings
        ),
        // What several test targets share: the seeded random generator.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: swiftSettings),
        // The domain's use cases (uploads, processing, search, the library) on the in-memory backends.
        .testTarget(
            name: "DomainTests",
            dependencies: [
                "ImageAPICore", "MemoryStorage", "ImageProcessing", "Locking", "RuntimeSupport", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/DomainTests",
            swiftSettings: swiftSettings
        ),
        // One contract suite per port, run against every backend of that port.
        .testTarget(
            name: "ContractTests",
            dependencies: [
                "Locking", "ImageAPICore", "RuntimeSupport", "SQLiteStorage", "MemoryStorage", "EmbeddedVectorIndex",
                "FileSystemStorage", "CloudStorage", "PubSub", "QdrantVectorIndex", "FirestoreStorage",
                "PostgresStorage", "FunctionsFramework", "OutboundHTTP",
                "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/ContractTests",
            swiftSettings: swiftSettings
        ),
        // The layers of the package graph and what each function binary links.
        .testTarget(name: "ArchitectureTests", path: "Tests/ArchitectureTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "EmulatorTests",
            dependencies: [
                "Emulator", "ImageHosting", "FirestoreStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/EmulatorTests",
            swiftSettings: swiftSettings
        ),
    ]
        + function("ManageTeams", product: "manage-teams")
        + function("ManageUsers", product: "manage-users")
        + function("ApiKeys", product: "api-keys")
        + function(
            "UploadImage", product: "upload-image", hosting: "ImageHosting",
            extraDependencies: [.product(name: "MultipartKit", package: "multipart-kit")])
        + function("ProcessEmbedding", product: "process-embedding", hosting: "ImageHosting")
        + function("Search", product: "search", hosting: "ImageHosting"),
    swiftLanguageModes: [.v6]
)
