import Foundation
import Testing

/// The emulator binary choosing and loading the CLIP engine (with the tiny fixture model).
@Suite("End to end: the CLIP embedder in the emulator", .serialized)
struct CLIPEndToEndTests {
    static let tinyModel = ImagePipelineEndToEndTests.fixtures.appendingPathComponent("clip-tiny").path
    let pipeline = ImagePipelineEndToEndTests()

    @Test("with a model directory the emulator loads CLIP at start, embeds uploads and answers text queries (hybrid)")
    func semanticPipeline() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction(
            "emulator", in: folder,
            environment: ["BOOTSTRAP_ADMIN_KEY": ImagePipelineEndToEndTests.adminKey, "CLIP_MODEL_DIR": Self.tinyModel])
        try await emulator.waitUntilListening()
        #expect(emulator.output.contains(#""message":"Loaded CLIP model""#))
        #expect(emulator.output.contains(#""message":"CLIP model ready""#) && emulator.output.contains("rss_mb"))
        let uploaded = try await pipeline.upload("sunset.jpg", to: emulator)
        let id = try #require(try json(uploaded.body)["id"] as? String)
        let image = try await pipeline.waitForStatus(id, "success", on: emulator)
        #expect((image["embedding_model"] as? String)?.hasPrefix("clip/clip-tiny@") == true)
        #expect(image["embedding_dimensions"] as? Int == 24)
        let reply = try await emulator.request(
            .GET, "/api/v1/search?q=a%20red%20sunset&similarity_threshold=0", key: ImagePipelineEndToEndTests.adminKey)
        let body = try json(reply.body)
        #expect(body["mode"] as? String == "hybrid")
        #expect((body["results"] as? [[String: Any]])?.count == 1)
        #expect(try await emulator.terminate() == 0)
    }

    @Test("the search binary loads and warms CLIP before it listens, so no query pays the load")
    func searchWarmsModelBeforeListening() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        defer { try? FileManager.default.removeItem(at: folder) }
        let search = try RunningFunction(
            "search", in: folder,
            environment: [
                "BOOTSTRAP_ADMIN_KEY": ImagePipelineEndToEndTests.adminKey, "EMBEDDING_PROVIDER": "clip",
                "CLIP_MODEL_DIR": Self.tinyModel,
            ])
        try await search.waitUntilListening()
        let messages = search.output.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["message"] as? String
        }
        let loaded = try #require(messages.firstIndex(of: "Loaded CLIP model"))
        let ready = try #require(messages.firstIndex(of: "CLIP model ready"))
        let listening = try #require(messages.firstIndex(of: "Listening"))
        #expect(loaded < ready && ready < listening)
        let reply = try await search.request(
            .GET, "/api/v1/search?q=a%20red%20sunset", key: ImagePipelineEndToEndTests.adminKey)
        #expect(reply.status == 200)
        #expect(try json(reply.body)["mode"] as? String == "hybrid")
        let after = search.output.split(separator: "\n").filter { $0.contains(#""message":"Loaded CLIP model""#) }
        #expect(after.count == 1, "the query must not load the model again")
        #expect(try await search.terminate() == 0)
    }

    @Test("without a model the emulator falls back to the visual features with one line; a broken one stops it")
    func fallbackAndBrokenModel() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plain = try RunningFunction("emulator", in: folder, environment: [:])
        try await plain.waitUntilListening()
        let notices = plain.output.split(separator: "\n").filter { $0.contains("No CLIP model in") }
        #expect(notices.count == 1 && notices[0].contains("make model"))
        #expect(try await plain.terminate() == 0)

        let broken = folder.appendingPathComponent("broken-model")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: Self.tinyModel), to: broken)
        let weights = broken.appendingPathComponent("model.safetensors")
        try Data(try Data(contentsOf: weights).prefix(4096)).write(to: weights)
        let refused = try RunningFunction("emulator", in: folder, environment: ["CLIP_MODEL_DIR": broken.path])
        #expect(try await refused.waitForExit() == 78)
        #expect(refused.output.contains("model.safetensors") && refused.output.contains("truncated"))
    }

    @Test("emulator embed prints the normalised embedding as JSON with the model id")
    func embedCommand() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = try RunningFunction(
            "emulator", arguments: ["embed", "--text", "a dog on a beach"], in: folder,
            environment: ["CLIP_MODEL_DIR": Self.tinyModel])
        #expect(try await text.waitForExit() == 0)
        let output = try json(text.output)
        let vector = try #require(output["embedding"] as? [Double])
        #expect(vector.count == 24 && output["dimensions"] as? Int == 24 && output["input"] as? String == "text")
        #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        #expect((output["model"] as? String)?.hasPrefix("clip/clip-tiny@") == true)

        let image = try RunningFunction(
            "emulator",
            arguments: [
                "embed", "--image", ImagePipelineEndToEndTests.fixtures.appendingPathComponent("lake.png").path,
            ],
            in: folder, environment: [:])
        #expect(try await image.waitForExit() == 0)
        #expect(try json(image.output)["model"] as? String == "visual-features-v1")

        let unsupported = try RunningFunction(
            "emulator", arguments: ["embed", "--text", "hello"], in: folder, environment: [:])
        #expect(try await unsupported.waitForExit() == 78)
        #expect(unsupported.errors.contains("cannot embed text"))
        #expect(unsupported.errors.contains("make model") && unsupported.errors.contains("CLIP_MODEL_DIR"))
    }
}
