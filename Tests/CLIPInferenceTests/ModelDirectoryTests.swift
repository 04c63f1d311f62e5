import CLIPInference
import Foundation
import Testing

/// Broken model directories fail with one error naming the file and the problem.
@Suite("CLIP model directories")
struct ModelDirectoryTests {
    func broken(_ change: (URL) throws -> Void) throws -> CLIPModelError? {
        let directory = try ReferenceFixture.copyOfModel()
        defer { try? FileManager.default.removeItem(at: directory) }
        try change(directory)
        do {
            _ = try CLIPModel(files: try CLIPModelFiles(directory: directory))
            return nil
        } catch let error as CLIPModelError {
            return error
        }
    }

    func editConfig(_ directory: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = directory.appendingPathComponent("config.json")
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    @Test("the fixture loads, with a fingerprint naming the directory, and its F16 tensor widened")
    func loads() throws {
        let files = try CLIPModelFiles(directory: ReferenceFixture.modelDirectory)
        #expect(
            files.fingerprint.hasPrefix("clip/clip-tiny@") && files.fingerprint.count == "clip/clip-tiny@".count + 12)
        #expect(files.configuration.projectionDimension == 24 && files.configuration.vision.activation == .gelu)
        #expect(files.configuration.text.activation == .quickGELU && files.configuration.text.hiddenSize == 32)
        let model = try CLIPModel(files: files)
        #expect(model.copiedBytes >= 49408 * 32 * 4)
    }

    @Test("missing files are named")
    func missingFiles() throws {
        for name in ["config.json", "model.safetensors", "vocab.json", "preprocessor_config.json"] {
            let error = try broken { try FileManager.default.removeItem(at: $0.appendingPathComponent(name)) }
            #expect(error?.file == name, "\(name): \(String(describing: error))")
        }
        #expect(throws: CLIPModelError.self) { try CLIPModelFiles(directory: URL(fileURLWithPath: "/nonexistent")) }
    }

    @Test("a truncated weight file is refused before any tensor is read")
    func truncated() throws {
        let error = try broken { directory in
            let url = directory.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: url)
            try data.prefix(data.count - 1000).write(to: url)
        }
        #expect(error?.file == "model.safetensors" && error?.problem.contains("truncated") == true)
        let header = try broken { directory in
            try Data([200, 0, 0, 0, 0, 0, 0, 0, 123]).write(to: directory.appendingPathComponent("model.safetensors"))
        }
        #expect(header?.file == "model.safetensors" && header?.problem.contains("truncated") == true)
    }

    @Test("shapes that disagree with config.json, other architectures and activations are refused")
    func wrongConfiguration() throws {
        let shape = try broken { try editConfig($0) { $0["projection_dim"] = 32 } }
        #expect(shape?.file == "model.safetensors" && shape?.problem.contains("config.json implies") == true)
        let architecture = try broken { try editConfig($0) { $0["model_type"] = "siglip" } }
        #expect(architecture?.file == "config.json" && architecture?.problem.contains("siglip") == true)
        let activation = try broken {
            try editConfig($0) { config in
                var vision = config["vision_config"] as? [String: Any] ?? [:]
                vision["hidden_act"] = "swish"
                config["vision_config"] = vision
            }
        }
        #expect(activation?.file == "config.json" && activation?.problem.contains("swish") == true)
        let crop = try broken { directory in
            let url = directory.appendingPathComponent("preprocessor_config.json")
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            object["crop_size"] = 64
            try JSONSerialization.data(withJSONObject: object).write(to: url)
        }
        #expect(crop?.file == "preprocessor_config.json")
    }

    @Test("the original gzipped CLIP vocabulary gives the same token ids as vocab.json and merges.txt")
    func originalVocabulary() throws {
        let directory = try ReferenceFixture.copyOfModel()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The original file is the merges list (after one header line) without vocab.json.
        let merges = directory.appendingPathComponent("merges.txt")
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-n", merges.path]
        try gzip.run()
        gzip.waitUntilExit()
        try FileManager.default.moveItem(
            at: directory.appendingPathComponent("merges.txt.gz"),
            to: directory.appendingPathComponent("bpe_simple_vocab_16e6.txt.gz"))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("vocab.json"))
        let model = try CLIPModel(files: try CLIPModelFiles(directory: directory))
        for text in ReferenceFixture.shared.texts {
            #expect(model.tokenize(text.text) == text.ids, "\(text.text.debugDescription)")
        }
        try Data("not gzip".utf8).write(to: directory.appendingPathComponent("bpe_simple_vocab_16e6.txt.gz"))
        #expect(throws: CLIPModelError.self) { try CLIPModel(files: try CLIPModelFiles(directory: directory)) }
    }

    @Test("undecodable image bytes give an error, not an embedding")
    func undecodableImage() throws {
        let model = ReferenceFixture.model
        #expect(throws: CLIPImageError.self) {
            try model.preprocessor.pixelValues(imageData: Data("not an image".utf8))
        }
        #expect(throws: CLIPImageError.self) {
            try model.preprocessor.pixelValues(imageData: try ReferenceFixture.imageData("truncated.jpg"))
        }
    }
}
