import Foundation
import FunctionsFramework
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ImageAPICore
import Testing

/// The committed test images (made by scripts/make-test-images.py).
enum Fixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: folder.appendingPathComponent(name))
    }
}

/// A `multipart/form-data` body.
struct MultipartForm {
    let boundary = "test-boundary-\(UUID().uuidString)"
    var body = Data()

    mutating func field(_ name: String, _ value: String) {
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
    }

    mutating func file(_ data: Data, filename: String, contentType: String = "application/octet-stream") {
        body.append(
            Data(
                """
                --\(boundary)\r\nContent-Disposition: form-data; name="file"; filename="\(filename)"\r
                Content-Type: \(contentType)\r\n\r\n
                """.utf8))
        body.append(data)
        body.append(Data("\r\n".utf8))
    }

    func finished() -> Data { body + Data("--\(boundary)--\r\n".utf8) }
    var contentType: String { "multipart/form-data; boundary=\(boundary)" }
}

/// Test-side view of an image (the production type's dates and enums decode as they encode).
typealias ImageReply = ImageRecord

/// Test-side view of a search answer.
struct SearchReply: Decodable {
    struct Result: Decodable {
        let image: ImageRecord
        let score: Double
        let semantic_score: Double?
        let semantic_rank: Int?
        let text_score: Double?
        let text_rank: Int?
    }
    let results: [Result]
    let total: Int
    let skip: Int
    let limit: Int
    let similarity_threshold: Double
    let query: String?
    let mode: String
    let model: String?
    let notice: String?

    var filenames: [String] { results.map(\.image.filename) }
}

extension APIClient {
    // Images
    func upload(
        _ fixture: String, as filename: String? = nil, fields: [(String, String)] = [], query: String = "",
        key: String?
    ) async throws -> Reply {
        try await upload(
            data: try Fixture.data(fixture), filename: filename ?? fixture, fields: fields, query: query, key: key)
    }
    func upload(
        data: Data, filename: String, fields: [(String, String)] = [], query: String = "", key: String?
    ) async throws -> Reply {
        var form = MultipartForm()
        for (name, value) in fields { form.field(name, value) }
        form.file(data, filename: filename)
        return try await sendRaw(
            .post, "/api/v1/images\(query)", key: key, contentType: form.contentType, body: form.finished())
    }
    func listImages(_ query: String = "", key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/images\(query)", key: key)
    }
    func getImage(_ id: ImageID, key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/images/\(id.lowercasedString)", key: key)
    }
    func updateImage(_ id: ImageID, json: String, key: String?) async throws -> Reply {
        try await send(.put, "/api/v1/images/\(id.lowercasedString)", key: key, json: json)
    }
    func deleteImage(_ id: ImageID, key: String?) async throws -> Reply {
        try await send(.delete, "/api/v1/images/\(id.lowercasedString)", key: key)
    }
    func download(
        _ id: ImageID, key: String?, query: String = "", headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let key { headers[HTTPField.Name("X-API-Key")!] = key }
        return try await send(.get, "/api/v1/images/\(id.lowercasedString)/download\(query)", headers: headers)
    }
    func thumbnail(_ id: ImageID, key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/images/\(id.lowercasedString)/thumbnail", key: key)
    }
    func reprocessAll(_ query: String = "", key: String?) async throws -> Reply {
        try await send(.post, "/api/v1/images/reprocess-all\(query)", key: key)
    }
    func reprocessProgress(key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/images/reprocess-all", key: key)
    }
    func reprocess(_ id: ImageID, key: String?) async throws -> Reply {
        try await send(.post, "/api/v1/images/\(id.lowercasedString)/reprocess", key: key)
    }

    // Search
    func search(_ query: String, key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/search\(query)", key: key)
    }
    func search(json: String, key: String?) async throws -> Reply {
        try await send(.post, "/api/v1/search", key: key, json: json)
    }

    // Processing

    /// Runs the local Pub/Sub until nothing more is due (at most `rounds` passes).
    func deliver(rounds: Int = 10) async throws {
        var round = 0
        while round < rounds, try await pubSub.deliverDueMessages() > 0 { round += 1 }
    }

    /// Uploads a fixture and processes it; returns the image as stored afterwards.
    func uploadProcessed(
        _ fixture: String, fields: [(String, String)] = [], query: String = "", key: String?
    ) async throws -> ImageRecord {
        let uploaded = try await upload(fixture, fields: fields, query: query, key: key)
        #expect(uploaded.status == .created, "\(fixture): \(String(decoding: uploaded.body, as: UTF8.self))")
        let image = try uploaded.decode(ImageRecord.self)
        try await deliver()
        return try await getImage(image.id, key: key).decode(ImageRecord.self)
    }

    func sendRaw(
        _ method: HTTPRequest.Method, _ uri: String, key: String?, contentType: String, body: Data
    ) async throws -> Reply {
        var headers: HTTPFields = [.contentType: contentType]
        if let key { headers[HTTPField.Name("X-API-Key")!] = key }
        let response = try await client.executeRequest(
            uri: uri, method: method, headers: headers, body: ByteBuffer(bytes: body))
        return Reply(status: response.status, headers: response.headers, body: Data(buffer: response.body))
    }
}
