import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Testing

/// `emulator backup` and `emulator restore` (what scripts/backup.sh and scripts/restore.sh run)
/// against a serving emulator.
@Suite("End to end: backups of the embedded defaults", .serialized)
struct BackupEndToEndTests {
    static let adminKey = ImagePipelineEndToEndTests.adminKey
    static let fixtures = ["sunset.jpg", "lake.png", "forest.webp", "lake.gif", "rotated.jpg", "sunset-small.jpg"]

    /// Runs `emulator ARGUMENTS` to its end: its exit status and what it printed.
    func emulator(_ arguments: [String], dataDirectory: URL) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = RunningFunction.productsFolder.appendingPathComponent("emulator")
        process.arguments = arguments
        process.currentDirectoryURL = dataDirectory.deletingLastPathComponent()
        process.environment = ["PATH": "/usr/bin:/bin", "DATA_DIR": dataDirectory.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: try output.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self)
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return (process.terminationStatus, text)
    }

    /// Every image a server lists, page by page.
    func allImages(on server: RunningFunction) async throws -> [[String: Any]] {
        var images: [[String: Any]] = []
        while true {
            let page = try json(
                try await server.request(.GET, "/api/v1/images?skip=\(images.count)&limit=100", key: Self.adminKey).body
            )
            let items = try #require(page["images"] as? [[String: Any]])
            images += items
            if items.isEmpty || images.count >= (page["total"] as? Int ?? 0) { return images }
        }
    }

    @Test(
        "a backup taken during 50 concurrent uploads restores elsewhere: every image it names lists, downloads with its SHA-256 and is found by similarity; it holds nothing else"
    )
    func backupWhileServing() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data")
        let backup = folder.appendingPathComponent("backup")
        let restored = folder.appendingPathComponent("restored")
        let pipeline = ImagePipelineEndToEndTests()
        let original = try RunningFunction(
            "emulator", in: folder,
            // Room in the upload queue for every upload at once, on a slow machine too.
            environment: ["BOOTSTRAP_ADMIN_KEY": Self.adminKey, "DATA_DIR": data.path, "UPLOAD_QUEUE_LIMIT": "128"])
        try await original.waitUntilListening()
        for fixture in Self.fixtures {
            #expect(try await pipeline.upload(fixture, to: original).status == 201)
        }

        // 50 uploads; the backup starts once 20 are in, while the others go on.
        let (answered, answer) = AsyncStream.makeStream(of: Int.self)
        let uploads = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let status = try await pipeline.upload(
                            Self.fixtures[index % Self.fixtures.count], to: original, query: "?allow_duplicate=true"
                        ).status
                        answer.yield(status)
                        return status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        var seen = 0
        for await _ in answered {
            seen += 1
            if seen == 20 { break }
        }
        let (status, output) = try await emulator(["backup", backup.path], dataDirectory: data)
        #expect(status == 0, "\(output)")
        let statuses = try await uploads.value
        #expect(statuses.count == 50 && statuses.allSatisfy { $0 == 201 })
        #expect(try await original.terminate() == 0)

        let manifest = try json(
            String(decoding: try Data(contentsOf: backup.appendingPathComponent("backup.json")), as: UTF8.self))
        let named = try #require(manifest["images"] as? Int)
        #expect(named >= Self.fixtures.count + 20 && named <= Self.fixtures.count + 50, "\(manifest)")

        let restore = try await emulator(["restore", backup.path], dataDirectory: restored)
        #expect(restore.status == 0, "\(restore.output)")
        let again = try await emulator(["restore", backup.path], dataDirectory: restored)
        #expect(again.status == 1 && again.output.contains("restore into a data folder that holds no data"))

        let server = try RunningFunction(
            "emulator", in: folder, environment: ["BOOTSTRAP_ADMIN_KEY": Self.adminKey, "DATA_DIR": restored.path])
        try await server.waitUntilListening()
        let images = try await allImages(on: server)
        #expect(images.count == named, "every image the backup names is listed")
        let ids = images.compactMap { $0["id"] as? String }
        for image in images {
            let id = try #require(image["id"] as? String)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/api/v1/images/\(id)/download")
            request.headers.add(name: "X-API-Key", value: Self.adminKey)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 64 << 20)
            let digest = SHA256.hash(data: Data(buffer: bytes)).map { String(format: "%02x", $0) }.joined()
            #expect(response.status.code == 200 && digest == image["sha256"] as? String)
        }
        // Images still pending in the backup are processed from its outbox; then each is found.
        for id in ids { _ = try await pipeline.waitForStatus(id, "success", on: server) }
        let query = try #require(ids.first)
        let found = try json(
            try await server.request(
                .POST, "/api/v1/search", key: Self.adminKey,
                json: #"{"image_id": "\#(query)", "similarity_threshold": 0, "limit": 50}"#
            ).body)
        let hits = Set(
            try #require(found["results"] as? [[String: Any]]).compactMap {
                ($0["image"] as? [String: Any])?["id"] as? String
            })
        #expect(found["total"] as? Int == ids.count - 1)
        #expect(hits.count == min(50, ids.count - 1) && hits.isSubset(of: Set(ids)))

        // The backup's bytes are exactly those of the images it names.
        let blobs = backup.appendingPathComponent("blobs")
        let files = (FileManager.default.enumerator(atPath: blobs.path)?.allObjects as? [String] ?? [])
            .filter {
                !$0.hasSuffix("/") && $0.contains("/images/") && ($0.hasSuffix("original") || $0.hasSuffix(".jpg"))
            }
        #expect(files.filter { $0.hasSuffix("original") }.count == named)
        #expect(files.allSatisfy { file in ids.contains { file.contains($0) } }, "nothing the database does not name")
        #expect(try await server.terminate() == 0)
    }
}
