import Foundation
import Testing

/// The package's targets and what each depends on directly, read from
/// `swift package dump-package`.
struct PackageGraph {
    /// Target name to the names of the targets (not products) it depends on.
    let targets: [String: Set<String>]
    /// Target name to the external products it depends on.
    let products: [String: Set<String>]

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The graph, read once per test process.
    static let current = Result { try load() }

    static func load() throws -> PackageGraph {
        // Its own scratch folder: `swift test` holds the lock on `.build` while the tests run.
        let temporary = FileManager.default.temporaryDirectory
        let scratch = temporary.appendingPathComponent("dump-package-\(UUID())")
        defer {
            try? FileManager.default.removeItem(at: scratch)
            // SwiftPM's lock for that scratch folder, named after its path, in the temporary folder.
            let lock = "_" + scratch.path.dropFirst().replacingOccurrences(of: "/", with: "_") + ".lock"
            try? FileManager.default.removeItem(at: temporary.appendingPathComponent(lock))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "package", "--scratch-path", scratch.path, "dump-package"]
        process.currentDirectoryURL = root
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LayeringError("swift package dump-package exited with \(process.terminationStatus)")
        }
        guard let manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let targets = manifest["targets"] as? [[String: Any]]
        else { throw LayeringError("dump-package printed no targets") }
        var local: [String: Set<String>] = [:]
        var external: [String: Set<String>] = [:]
        for target in targets {
            guard let name = target["name"] as? String else { continue }
            local[name] = []
            external[name] = []
            for dependency in target["dependencies"] as? [[String: Any]] ?? [] {
                if let named = (dependency["byName"] ?? dependency["target"]) as? [Any],
                    let first = named.first as? String
                {
                    local[name, default: []].insert(first)
                } else if let product = dependency["product"] as? [Any], let first = product.first as? String {
                    external[name, default: []].insert(first)
                }
            }
        }
        return PackageGraph(targets: local, products: external)
    }

    /// The Swift sources under `folders` (relative to the package root), each with its path from
    /// the root and its text.
    static func swiftSources(in folders: [String]) throws -> [(path: String, text: String)] {
        try folders.flatMap { folder -> [(path: String, text: String)] in
            let directory = root.appendingPathComponent(folder)
            let files = try #require(FileManager.default.enumerator(atPath: directory.path))
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            return try files.map { file in
                ("\(folder)/\(file)", try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8))
            }
        }
    }

    /// Every target `name` reaches through target dependencies, itself excluded.
    func closure(of name: String) -> Set<String> {
        var seen: Set<String> = []
        var pending = Array(targets[name] ?? [])
        while let next = pending.popLast() {
            guard seen.insert(next).inserted else { continue }
            pending.append(contentsOf: targets[next] ?? [])
        }
        return seen
    }
}

struct LayeringError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The layers docs/architecture.md draws, read from the folders under `Runtime/` (one folder a
/// layer) and checked against the package manifest, so that neither the tree nor the picture can rot.
@Suite("Layering")
struct LayeringTests {
    /// The targets in one layer's folder, `Runtime/<layer>/<target>`.
    static func layer(_ folder: String) -> Set<String> {
        let path = PackageGraph.root.appendingPathComponent("Runtime").appendingPathComponent(folder).path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return Set(names.filter { !$0.hasPrefix(".") })
    }

    /// General engines and C shims: they know nothing of the application.
    static let engines = layer("Engines")
    /// One target per backend behind a port of the domain.
    static let adapters = layer("Adapters")
    /// The domain.
    static let domain = layer("Domain")
    /// The functions framework and the domain over HTTP.
    static let http = layer("HTTP")
    /// What turns configuration into adapters and serves functions with them.
    static let hosting = layer("Hosting")
    /// The executables that are not a function's.
    static let executables = layer("Executables")
    /// The handler libraries of the functions.
    static let functions: Set<String> = [
        "ManageTeams", "ManageUsers", "ApiKeys", "UploadImage", "ProcessEmbedding", "Search",
    ]
    /// Functions that manage teams, users and keys: they never link the image pipeline.
    static let managementMains: Set<String> = ["ManageTeamsMain", "ManageUsersMain", "ApiKeysMain"]
    /// What the image pipeline brings in: libvips, OpenBLAS, CLIP and the vectors.
    static let imagePipeline: Set<String> = [
        "ImageHosting", "ImageProcessing", "CLIPInference", "CLIPEmbedding", "CLIPKernels", "EmbeddedVectorIndex",
        "VectorMath", "VipsShim", "CVips", "COpenBLAS", "FileSystemStorage", "CloudStorage", "VertexAI",
        "QdrantVectorIndex",
    ]
    /// The application's own layers above the engines.
    static var application: Set<String> {
        adapters.union(functions).union(domain).union(http).union(hosting).union(executables)
    }
    /// Helpers that any layer may use (configuration through swift-configuration, JSON conventions,
    /// the lock).
    static let support = layer("Support")
    /// Modules the domain must not import: HTTP, NIO, the functions framework and databases.
    static let forbiddenInDomain: Set<String> = [
        "FunctionsFramework", "Hummingbird", "HTTPTypes", "NIO", "NIOCore", "NIOPosix", "NIOHTTP1", "GRDB",
        "PostgresNIO", "AsyncHTTPClient", "ImageAPIHTTP",
    ]

    let graph: PackageGraph

    init() throws { graph = try PackageGraph.current.get() }

    @Test("every folder under Runtime is a layer, and every target in one is a target of the manifest")
    func knowsEveryTarget() throws {
        let folders = try FileManager.default.contentsOfDirectory(
            atPath: PackageGraph.root.appendingPathComponent("Runtime").path
        ).filter { !$0.hasPrefix(".") }
        #expect(
            Set(folders) == ["Support", "Domain", "HTTP", "Adapters", "Engines", "Hosting", "Executables"],
            "Runtime/ holds \(folders.sorted())")
        #expect(Self.domain == ["ImageAPICore"] && Self.http == ["FunctionsFramework", "ImageAPIHTTP"])
        #expect(Self.adapters.count >= 13 && Self.engines.count >= 9)
        for name in Self.engines.union(Self.application).union(Self.managementMains).union(Self.support) {
            #expect(graph.targets[name] != nil, "\(name) is not a target of the package any more")
        }
    }

    @Test("engines depend on no part of the application")
    func enginesStandAlone() {
        for engine in Self.engines {
            let reached = graph.closure(of: engine).intersection(Self.application)
            #expect(reached.isEmpty, "\(engine) depends on \(reached.sorted())")
        }
    }

    @Test("an adapter depends on the domain and engines, never on another adapter, a function or a host")
    func adaptersDependOnTheDomainOnly() {
        // FunctionsFramework for the one port it defines itself: who may deliver events.
        let allowed = Self.engines.union(Self.support).union(["ImageAPICore", "FunctionsFramework"])
        for adapter in Self.adapters {
            let direct = graph.targets[adapter] ?? []
            #expect(
                direct.subtracting(allowed).isEmpty, "\(adapter) depends on \(direct.subtracting(allowed).sorted())")
        }
    }

    @Test("the domain depends on nothing of HTTP, NIO or databases, and on no other layer")
    func domainStandsAlone() {
        let direct = graph.targets["ImageAPICore"] ?? []
        #expect(direct.subtracting(Self.support).isEmpty, "ImageAPICore depends on \(direct.sorted())")
        let reached = graph.closure(of: "ImageAPICore")
        #expect(reached.isDisjoint(with: Self.application), "ImageAPICore reaches \(reached.sorted())")
        let products = graph.products["ImageAPICore"] ?? []
        #expect(products.isDisjoint(with: Self.forbiddenInDomain), "ImageAPICore uses \(products.sorted())")
    }

    @Test("no source file of the domain imports HTTP, NIO, the framework or a database")
    func domainSourcesImportNoHTTP() throws {
        let files = try PackageGraph.swiftSources(in: ["Runtime/Domain/ImageAPICore"])
        #expect(files.count > 10, "the domain's sources were not found under Runtime/Domain/ImageAPICore")
        for (file, text) in files {
            let imports = text.split(separator: "\n").filter { $0.hasPrefix("import ") }
                .map { String($0.dropFirst("import ".count)).trimmingCharacters(in: .whitespaces) }
            let forbidden = Set(imports).intersection(Self.forbiddenInDomain)
            #expect(forbidden.isEmpty, "\(file) imports \(forbidden.sorted())")
        }
    }

    @Test("the domain reads no environment: no source of it imports Configuration or names EnvironmentVariables")
    func domainReadsNoEnvironment() throws {
        let files = try PackageGraph.swiftSources(in: ["Runtime/Domain/ImageAPICore"])
        #expect(files.count > 10, "the domain's sources were not found under Runtime/Domain/ImageAPICore")
        for (file, text) in files {
            let lines = text.split(separator: "\n").map(String.init)
            #expect(!lines.contains("import Configuration"), "\(file) imports Configuration")
            let named = lines.enumerated().filter {
                !$0.element.contains("///") && $0.element.contains("EnvironmentVariables")
            }
            #expect(named.isEmpty, "\(file):\(named.first.map { $0.offset + 1 } ?? 0) reads the environment")
        }
    }

    @Test("hosts and functions name no adapter's type but its factory (and the stores a host composes)")
    func hostsNameOnlyFactories() throws {
        // Every type an adapter target declares publicly, by the folder it lives in.
        var adapterTypes: [String: String] = [:]
        let declaration = /public\s+(?:final\s+)?(?:struct|class|actor|enum|protocol)\s+([A-Za-z0-9_]+)/
        for adapter in Self.adapters {
            for (_, text) in try PackageGraph.swiftSources(in: ["Runtime/Adapters/\(adapter)"]) {
                for match in text.matches(of: declaration) { adapterTypes[String(match.1)] = adapter }
            }
        }
        #expect(adapterTypes.count > 20, "the adapters' types were not found")
        // Allowed: factories and their settings.
        let allowed = adapterTypes.keys.filter { $0.hasSuffix("Factory") || $0.hasSuffix("Settings") }
        let forbidden = Set(adapterTypes.keys).subtracting(allowed)
        let folders =
            Self.hosting.map { "Runtime/Hosting/\($0)" } + Self.executables.map { "Runtime/Executables/\($0)" }
            + Self.functions.map { "Functions/\($0)" }
        var named: [String] = []
        for (file, text) in try PackageGraph.swiftSources(in: folders) {
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") && !line.hasPrefix("import ") {
                let words = Set(
                    line.split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "_" }).map(String.init))
                for type in words.intersection(forbidden) {
                    named.append("\(file):\(number + 1) names \(type) (\(adapterTypes[type] ?? ""))")
                }
            }
        }
        #expect(named.isEmpty, "\(named.sorted().joined(separator: "\n"))")
    }

    @Test("the domain's HTTP layer depends on the domain and the framework only")
    func httpLayerSitsOnTheDomain() {
        let direct = graph.targets["ImageAPIHTTP"] ?? []
        #expect(direct == ["ImageAPICore", "FunctionsFramework"], "ImageAPIHTTP depends on \(direct.sorted())")
    }

    @Test("function handlers depend on the framework, the domain and its HTTP layer only")
    func handlersDependOnTheDomain() {
        for function in Self.functions {
            let direct = graph.targets[function] ?? []
            let other = direct.subtracting(["FunctionsFramework", "ImageAPICore", "ImageAPIHTTP"])
            #expect(other.isEmpty, "\(function) depends on \(other.sorted())")
        }
    }

    @Test("the local router knows the URL map only: no function, adapter, host or domain")
    func routerKnowsNoFunction() {
        let reached = graph.closure(of: "FunctionRouterMain")
        let known = reached.intersection(Self.application)
        #expect(known == ["FunctionRouter", "FunctionsFramework"], "the router reaches \(known.sorted())")
    }

    @Test("management functions reach no part of the image pipeline")
    func managementLinksNoImageCode() {
        for main in Self.managementMains {
            let reached = graph.closure(of: main).intersection(Self.imagePipeline)
            #expect(reached.isEmpty, "\(main) reaches \(reached.sorted())")
        }
        // The check can fail: the image functions do reach it.
        #expect(graph.closure(of: "SearchMain").contains("CLIPInference"))
    }

    @Test("the metadata host builds no image adapter")
    func functionHostingHasNoImageAdapters() {
        let reached = graph.closure(of: "FunctionHosting").intersection(Self.imagePipeline)
        #expect(reached.isEmpty, "FunctionHosting reaches \(reached.sorted())")
    }
}
