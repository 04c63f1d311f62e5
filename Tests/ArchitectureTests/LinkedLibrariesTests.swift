import Foundation
import Testing

/// What each built function binary links, read with `ldd` and from the binary's symbols.
@Suite("Linked libraries")
struct LinkedLibrariesTests {
    /// The folder of the built products (the test runner sits beside them).
    static let productsFolder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()

    /// The shared libraries a binary loads, by file name.
    static func sharedLibraries(of product: String) throws -> [String] {
        let binary = productsFolder.appendingPathComponent(product)
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw LayeringError("\(binary.path) is missing: build every product first (swift build --build-tests)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
        process.arguments = [binary.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.split(separator: "\n").compactMap { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init)
        }
    }

    /// Whether the binary holds code of the CLIP engine (its mangled module name in symbol names).
    static func containsCLIPEngine(_ product: String) throws -> Bool {
        let data = try Data(contentsOf: productsFolder.appendingPathComponent(product), options: .alwaysMapped)
        return data.range(of: Data("13CLIPInference".utf8)) != nil
    }

    static func linksImageLibraries(_ libraries: [String]) -> [String] {
        libraries.filter { $0.hasPrefix("libvips") || $0.hasPrefix("libopenblas") }
    }

    @Test(
        "management functions link neither libvips nor OpenBLAS nor the CLIP engine",
        arguments: ["manage-teams", "manage-users", "api-keys"])
    func managementBinaries(product: String) throws {
        let libraries = try Self.sharedLibraries(of: product)
        #expect(libraries.contains { $0.hasPrefix("libc.so") }, "ldd listed \(libraries)")
        #expect(Self.linksImageLibraries(libraries).isEmpty, "\(product) links \(Self.linksImageLibraries(libraries))")
        #expect(try Self.containsCLIPEngine(product) == false, "\(product) contains CLIPInference code")
    }

    @Test(
        "image functions do link them (so the check above can fail)",
        arguments: ["upload-image", "process-embedding", "search"])
    func imageBinaries(product: String) throws {
        let libraries = try Self.sharedLibraries(of: product)
        #expect(Self.linksImageLibraries(libraries).count == 2, "\(product) links \(libraries)")
        #expect(try Self.containsCLIPEngine(product))
    }
}
