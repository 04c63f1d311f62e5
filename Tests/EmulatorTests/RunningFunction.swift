import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// A function binary (or the emulator) started as a real process on a free port.
final class RunningFunction: LoopbackServer, @unchecked Sendable {
    let process = Process()
    let stdoutFile: URL
    let stderrFile: URL
    private(set) var port = 0

    /// The folder the test binaries were built into: the products sit beside the test runner.
    static var productsFolder: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// Starts `product` in `folder` (its working directory, so no stray `.env` is read).
    init(_ product: String, arguments: [String] = [], in folder: URL, environment: [String: String]) throws {
        let executable = Self.productsFolder.appendingPathComponent(product)
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw StartError("\(executable.path) is missing: build every product first (swift build --build-tests)")
        }
        stdoutFile = folder.appendingPathComponent("\(product)-\(UUID()).out")
        stderrFile = folder.appendingPathComponent("\(product)-\(UUID()).err")
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = folder
        // Sanitizer settings (make sanitize) reach the children too; nothing else is inherited.
        let sanitizers = ProcessInfo.processInfo.environment.filter { $0.key.hasSuffix("SAN_OPTIONS") }
        process.environment = ["PATH": "/usr/bin:/bin", "PORT": "0", "DATA_DIR": folder.path]
            .merging(sanitizers) { $1 }.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
    }

    struct StartError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    var output: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Waits for the structured "Listening" log line and reads the bound port from it.
    func waitUntilListening(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for line in output.split(separator: "\n") where line.contains(#""message":"Listening""#) {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                if let address = object?["address"] as? String, let port = Int(address.split(separator: ":").last ?? "")
                {
                    self.port = port
                    return
                }
            }
            guard process.isRunning else {
                throw StartError("exited with \(process.terminationStatus): \(errors)\(output)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw StartError("did not start listening within \(timeout): \(output)")
    }

    /// Waits for the process to exit by itself.
    func waitForExit(timeout: Duration = .seconds(15)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.interrupt()
                throw StartError("did not exit within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Sends SIGTERM, as Cloud Run does, and returns the exit status.
    func terminate() async throws -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        return try await waitForExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A server on a loopback port that tests call over HTTP: a function process, or the router of a
/// local cloud topology.
protocol LoopbackServer {
    var port: Int { get }
    /// How long a request may take before it fails.
    var requestTimeout: Duration { get }
}

/// A request that got no answer, naming the request and how long it waited.
struct RequestFailure: Error, CustomStringConvertible {
    let description: String
}

extension LoopbackServer {
    var requestTimeout: Duration { .seconds(15) }

    /// Sends a request to the server over loopback.
    func request(
        _ method: HTTPMethod, _ path: String, key: String? = nil, json: String? = nil,
        client: HTTPClient = .shared
    ) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let key { request.headers.add(name: "X-API-Key", value: key) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let started = ContinuousClock.now
        do {
            let response = try await client.execute(request, timeout: .seconds(requestTimeout.components.seconds))
            let body = try await response.body.collect(upTo: 4 << 20)
            return (Int(response.status.code), response.headers, String(buffer: body))
        } catch {
            throw RequestFailure(
                description: "\(method) \(path) on port \(port): \(error) after \(ContinuousClock.now - started)")
        }
    }
}

/// A client that answers redirects instead of following them.
let redirectsAnswered = HTTPClient(
    eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))

func makeTemporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("image-api-e2e-\(UUID())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

/// Waits until `condition` holds, checking every 10 ms, or fails after `timeout`.
func waitUntil(
    _ description: String, timeout: Duration = .seconds(10), _ condition: () throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else {
            throw RunningFunction.StartError("never: \(description)")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// An IPv4 TCP socket as the kernel lists it in `/proc/net/tcp`.
struct KernelSocket {
    let localPort: Int
    let remotePort: Int
    /// `1` is ESTABLISHED.
    let state: Int
    /// Bytes written and not yet acknowledged by the peer.
    let sendQueue: Int
    /// Bytes received and not yet read by the process.
    let receiveQueue: Int

    static func all() throws -> [KernelSocket] {
        // procfs files report no size, so read to the end rather than trusting a length.
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/net/tcp"))
        defer { try? handle.close() }
        let text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 4 else { return nil }
            let port = { (address: Substring) in Int(address.split(separator: ":").last ?? "", radix: 16) }
            let queues = fields[4].split(separator: ":")
            guard let local = port(fields[1]), let remote = port(fields[2]), let state = Int(fields[3], radix: 16),
                queues.count == 2, let send = Int(queues[0], radix: 16), let receive = Int(queues[1], radix: 16)
            else { return nil }
            return KernelSocket(
                localPort: local, remotePort: remote, state: state, sendQueue: send, receiveQueue: receive)
        }
    }

    /// The local ports of the client ends of established connections to `port`.
    static func clientPorts(connectedTo port: Int) throws -> Set<Int> {
        Set(try all().filter { $0.state == 1 && $0.remotePort == port }.map(\.localPort))
    }

    /// Whether a connection to `port` that is not one of `earlier` is established, and every byte
    /// its client sent has been acknowledged and read by the server process.
    static func serverHasReadEverything(port: Int, newSince earlier: Set<Int>) throws -> Bool {
        let sockets = try all().filter { $0.state == 1 }
        let clients = sockets.filter { $0.remotePort == port && !earlier.contains($0.localPort) }
        return !clients.isEmpty
            && clients.allSatisfy { client in
                client.sendQueue == 0
                    && sockets.contains {
                        $0.localPort == port && $0.remotePort == client.localPort && $0.receiveQueue == 0
                    }
            }
    }
}
