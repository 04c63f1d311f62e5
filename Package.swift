// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every target: Swift 6 language mode plus explicit existentials.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

/// One standalone executable per Cloud Function: a `Main` target that only wires configuration
/// to the importable handler library beside it.
func function(_ name: String, product: String) -> [Target] {
    [
        .target(
            name: name,
            dependencies: ["FunctionsFramework", "ImageAPICore"],
            path: "Functions/\(name)/Handlers",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "\(name)Main",
            dependencies: [.target(name: name), "FunctionHosting"],
            path: "Functions/\(name)/Main",
            swiftSettings: swiftSettings
        ),
    ]
}

let package = Package(
    name: "image-api",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "emulator", targets: ["EmulatorMain"]),
        .executable(name: "manage-teams", targets: ["ManageTeamsMain"]),
        .executable(name: "manage-users", targets: ["ManageUsersMain"]),
        .executable(name: "api-keys", targets: ["ApiKeysMain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // The functions framework: HTTP and CloudEvent functions, errors, logging, configuration.
        .target(
            name: "FunctionsFramework",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Runtime/FunctionsFramework",
            swiftSettings: swiftSettings
        ),
        // The domain model, the storage ports, API keys and the shared endpoint plumbing.
        .target(
            name: "ImageAPICore",
            dependencies: [
                "FunctionsFramework",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Runtime/ImageAPICore",
            swiftSettings: swiftSettings
        ),
        // The embedded SQLite implementation of the metadata-store port.
        .target(
            name: "SQLiteStorage",
            dependencies: ["ImageAPICore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Runtime/SQLiteStorage",
            swiftSettings: swiftSettings
        ),
        // Turns configuration into adapters (store, authenticator) and serves functions with them.
        .target(
            name: "FunctionHosting",
            dependencies: ["FunctionsFramework", "ImageAPICore", "SQLiteStorage"],
            path: "Runtime/FunctionHosting",
            swiftSettings: swiftSettings
        ),
        // The local function emulator: every function on one port, OpenAPI document and docs page.
        .target(
            name: "Emulator",
            dependencies: ["FunctionHosting", "ManageTeams", "ManageUsers", "ApiKeys"],
            path: "Runtime/Emulator",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EmulatorMain",
            dependencies: ["Emulator", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Runtime/EmulatorMain",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FunctionsFrameworkTests",
            dependencies: [
                "FunctionsFramework",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/FunctionsFrameworkTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ManagementAPITests",
            dependencies: [
                "Emulator",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/ManagementAPITests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmulatorTests",
            dependencies: [
                "Emulator",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/EmulatorTests",
            swiftSettings: swiftSettings
        ),
    ]
        + function("ManageTeams", product: "manage-teams")
        + function("ManageUsers", product: "manage-users")
        + function("ApiKeys", product: "api-keys"),
    swiftLanguageModes: [.v6]
)
