import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The Qdrant REST test double (`scripts/qdrant-test-double`: Qdrant's engine from
/// qdrant-edge-py behind Qdrant's REST endpoints) as a process of its own, so that a test can
/// kill it and start it again on the same port and data.
final class QdrantTestDouble: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/qdrant-test-double")

    let data: URL
    let apiKey: String
    private(set) var port: Int
    private var process: Process?
    private let log: URL

    init(data: URL, apiKey: String, port: Int = 0) {
        self.data = data
        self.apiKey = apiKey
        self.port = port
        self.log = data.deletingLastPathComponent().appendingPathComponent("qdrant-\(UUID()).log")
    }

    /// Starts the double and waits for its "listening" line (port 0 takes a free port).
    func start() async throws {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = Self.script
        process.arguments = [String(port), data.path, "--api-key", apiKey]
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on http://127.0.0.1:") }),
                let found = Int(line.split(separator: ":")[2].prefix { $0.isNumber })
            {
                port = found
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RunningFunction.StartError("the Qdrant test double did not start: \(text())")
    }

    func text() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Kills the double at once (SIGKILL: no flush, no clean close).
    func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The variables that point a function process at the double.
    func environment(prefix: String) -> [String: String] {
        [
            "VECTOR_BACKEND": "qdrant", "QDRANT_HOST": "127.0.0.1", "QDRANT_PORT": String(port),
            "QDRANT_API_KEY": apiKey, "QDRANT_COLLECTION": prefix,
        ]
    }

    /// Calls the double's REST API directly, as an operator would.
    func call(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        request.headers.add(name: "api-key", value: apiKey)
        request.headers.add(name: "Content-Type", value: "application/json")
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    deinit { kill() }
}

/// The function binaries with `VECTOR_BACKEND=qdrant`, against the Qdrant test double.
@Suite(
    "End to end: VECTOR_BACKEND=qdrant on the Qdrant REST test double (Qdrant's engine)", .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["TEST_QDRANT_HOST"] != nil,
        "needs the test virtual environment that scripts/test-servers.sh checks"))
struct QdrantEndToEndTests {
    let pipeline = ImagePipelineEndToEndTests()

    @Test(
        "emulator and a separate Search process share the vectors at once; a killed and restarted Qdrant loses nothing"
    )
    func sharedVectorsSurviveRestart() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let qdrant = QdrantTestDouble(data: folder.appendingPathComponent("qdrant"), apiKey: "e2e-qdrant-key")
        try await qdrant.start()
        let environment = qdrant.environment(prefix: "e2e").merging([
            "BOOTSTRAP_ADMIN_KEY": ImagePipelineEndToEndTests.adminKey, "PUBSUB_RETRY_BASE_MS": "100",
        ]) { $1 }
        let emulator = try RunningFunction("emulator", in: folder, environment: environment)
        try await emulator.waitUntilListening()
        let search = try RunningFunction("search", in: folder, environment: environment)
        try await search.waitUntilListening()

        func similar(to id: String) async throws -> [String] {
            let found = try await search.request(
                .POST, "/api/v1/search", key: ImagePipelineEndToEndTests.adminKey,
                json: #"{"image_id": "\#(id)", "similarity_threshold": 0}"#)
            #expect(found.status == 200, "\(found.body)")
            let results = try #require(try json(found.body)["results"] as? [[String: Any]])
            return results.compactMap { ($0["image"] as? [String: Any])?["id"] as? String }
        }

        let first = try #require(try json(try await pipeline.upload("sunset.jpg", to: emulator).body)["id"] as? String)
        let second = try #require(
            try json(try await pipeline.upload("sunset-small.jpg", to: emulator).body)["id"] as? String)
        _ = try await pipeline.waitForStatus(first, "success", on: emulator)
        _ = try await pipeline.waitForStatus(second, "success", on: emulator)
        // The Search process started before these vectors existed and reads them from Qdrant.
        #expect(try await similar(to: first) == [second])

        // The collection is the model's, with the tenant index on team_id.
        let (status, listing) = try await qdrant.call(.GET, "/collections")
        #expect(status == 200 && listing.contains(#""name": "e2e-"#), "\(listing)")

        qdrant.kill()
        let unreachable = try await search.request(
            .POST, "/api/v1/search", key: ImagePipelineEndToEndTests.adminKey, json: #"{"image_id": "\#(first)"}"#)
        #expect(unreachable.status == 503, "\(unreachable.body)")
        #expect(unreachable.body.contains("vector index"))

        try await qdrant.start()
        #expect(try await similar(to: first) == [second], "the vectors written before the kill are there")
        let third = try #require(try json(try await pipeline.upload("lake.png", to: emulator).body)["id"] as? String)
        _ = try await pipeline.waitForStatus(third, "success", on: emulator)
        #expect(Set(try await similar(to: first)) == [second, third])

        #expect(
            try await emulator.request(.DELETE, "/api/v1/images/\(third)", key: ImagePipelineEndToEndTests.adminKey)
                .status == 204)
        #expect(try await similar(to: first) == [second])
        #expect(try await emulator.terminate() == 0)
        #expect(try await search.terminate() == 0)
        qdrant.kill()
    }

    @Test("a collection with another vector size stops start-up naming both sizes; a wrong API key stops it too")
    func refusedAtStart() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let qdrant = QdrantTestDouble(data: folder.appendingPathComponent("qdrant"), apiKey: "e2e-qdrant-key")
        try await qdrant.start()
        // The visual-features model's collection, made earlier with 3-number vectors.
        let created = try await qdrant.call(
            .PUT, "/collections/wrong-visual-features-v1", #"{"vectors": {"size": 3, "distance": "Cosine"}}"#)
        #expect(created.0 == 200, "\(created.1)")
        // The double checks bodies against the REST API's models, as Qdrant does: an unknown field is 400.
        let strict = try await qdrant.call(
            .POST, "/collections/wrong-visual-features-v1/points/count", #"{"exact": true, "colour": "red"}"#)
        #expect(strict.0 == 400 && strict.1.contains("colour"), "\(strict.1)")
        let environment = qdrant.environment(prefix: "wrong").merging(["EMBEDDING_PROVIDER": "visual"]) { $1 }
        let search = try RunningFunction("search", in: folder, environment: environment)
        #expect(try await search.waitForExit(timeout: .seconds(30)) == 78)
        let said = search.output + search.errors
        #expect(said.contains("wrong-visual-features-v1"), "\(said)")
        #expect(said.contains("vectors of size 3, distance Cosine"), "\(said)")
        #expect(said.range(of: #"makes vectors of size [0-9]+"#, options: .regularExpression) != nil, "\(said)")

        var badKey = qdrant.environment(prefix: "fresh")
        badKey["QDRANT_API_KEY"] = "not-the-key"
        let refused = try RunningFunction("search", in: folder, environment: badKey)
        #expect(try await refused.waitForExit(timeout: .seconds(30)) != 0)
        #expect((refused.output + refused.errors).contains("HTTP 401"), "\(refused.output + refused.errors)")
        qdrant.kill()
    }
}
