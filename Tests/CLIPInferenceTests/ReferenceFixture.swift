import CLIPInference
import Foundation

/// The tiny CLIP model and its reference outputs in `Tests/Fixtures/clip-tiny`, made by
/// `scripts/clip-fixtures/make.sh` with Hugging Face transformers.
struct ReferenceFixture: Decodable {
    struct Text: Decodable {
        let text: String
        let ids: [Int32]
        let embedding: [Float]
    }

    struct Image: Decodable {
        let file: String
        let pixelValues: [Float]
        let embedding: [Float]

        enum CodingKeys: String, CodingKey {
            case file
            case pixelValues = "pixel_values"
            case embedding
        }
    }

    let texts: [Text]
    let images: [Image]

    enum CodingKeys: String, CodingKey {
        case texts, images
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        texts = try container.decode([Text].self, forKey: .texts)
        // The BMP reference stays in the file, but BMP only decodes through ImageMagick, a loader
        // libvips is told not to trust with uploads: the engine is checked on the other formats.
        images = try container.decode([Image].self, forKey: .images).filter { !$0.file.hasSuffix(".bmp") }
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let modelDirectory = fixtures.appendingPathComponent("clip-tiny")

    static let shared: ReferenceFixture = {
        let data = try! Data(contentsOf: modelDirectory.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode(ReferenceFixture.self, from: data)
    }()

    static let model: CLIPModel = try! CLIPModel(files: CLIPModelFiles(directory: modelDirectory))

    static func imageData(_ name: String) throws -> Data {
        try Data(contentsOf: fixtures.appendingPathComponent(name))
    }

    /// The largest absolute difference between two vectors of the same length.
    static func maxDifference(_ left: [Float], _ right: [Float]) -> Float {
        precondition(left.count == right.count)
        return zip(left, right).map { abs($0 - $1) }.max() ?? 0
    }

    /// A copy of the fixture model in a fresh directory, for breaking it.
    static func copyOfModel() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clip-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: modelDirectory, to: directory)
        return directory
    }
}
