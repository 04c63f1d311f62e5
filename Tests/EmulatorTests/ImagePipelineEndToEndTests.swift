import AsyncHTTPClient
import FirestoreStorage
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import _CryptoExtras

/// The image pipeline across real processes: a crash between the upload's commit and its
/// delivery, and a separately started Search binary that sees vectors written by another process.
@Suite("End to end: the image pipeline across processes", .serialized)
struct ImagePipelineEndToEndTests {
    static let adminKey = "imk_0123456789abcdef0123456789abcdef_" + String(repeating: "A", count: 43)
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func upload(
        _ fixture: String, to function: some LoopbackServer, key: String = Self.adminKey, query: String = ""
    ) async throws -> (status: Int, body: String) {
        let boundary = "e2e-\(UUID().uuidString)"
        var body = Data(
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(fixture)\"\r\n\r\n".utf8)
        body += try Data(contentsOf: Self.fixtures.appendingPathComponent(fixture))
        body += Data("\r\n--\(boundary)--\r\n".utf8)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(function.port)/api/v1/images\(query)")
        request.method = .POST
        request.headers.add(name: "X-API-Key", value: key)
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        do {
            let response = try await HTTPClient.shared.execute(
                request, timeout: .seconds(max(30, function.requestTimeout.components.seconds)))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        } catch {
            throw RequestFailure(
                description:
                    "uploading \(fixture) on port \(function.port): \(error) after \(ContinuousClock.now - started)")
        }
    }

    func waitForStatus(
        _ id: String, _ status: String, on function: some LoopbackServer, key: String = Self.adminKey
    ) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let image = try json(try await function.request(.GET, "/api/v1/images/\(id)", key: key).body)
            if image["embedding_status"] as? String == status { return image }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RunningFunction.StartError("image \(id) never reached \(status)")
    }

    @Test("an upload accepted just before a crash is processed after the restart; Search sees new vectors")
    func crashBetweenCommitAndDelivery() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let environment = ["BOOTSTRAP_ADMIN_KEY": Self.adminKey, "PUBSUB_RETRY_BASE_MS": "100"]
        // The standalone upload function has no push endpoint: its events wait in the outbox.
        let uploader = try RunningFunction("upload-image", in: folder, environment: environment)
        try await uploader.waitUntilListening()
        let accepted = try await upload("sunset.jpg", to: uploader)
        #expect(accepted.status == 201)
        let id = try #require(try json(accepted.body)["id"] as? String)
        kill(uploader.process.processIdentifier, SIGKILL)
        #expect(try await uploader.waitForExit() == SIGKILL)

        let search = try RunningFunction("search", in: folder, environment: environment)
        try await search.waitUntilListening()
        let emulator = try RunningFunction("emulator", in: folder, environment: environment)
        try await emulator.waitUntilListening()
        let image = try await waitForStatus(id, "success", on: emulator)
        #expect(image["embedding_attempts"] as? Int == 1)
        #expect(try await emulator.request(.GET, "/api/v1/images/\(id)/thumbnail", key: Self.adminKey).status == 200)

        // A second image, processed by the emulator after the Search process loaded its vectors.
        let second = try await upload("sunset-small.jpg", to: emulator)
        let secondID = try #require(try json(second.body)["id"] as? String)
        _ = try await waitForStatus(secondID, "success", on: emulator)
        let found = try await search.request(
            .POST, "/api/v1/search", key: Self.adminKey, json: #"{"image_id": "\#(id)"}"#)
        #expect(found.status == 200)
        let results = try #require(try json(found.body)["results"] as? [[String: Any]])
        #expect(results.compactMap { ($0["image"] as? [String: Any])?["id"] as? String } == [secondID])

        #expect(try await emulator.request(.DELETE, "/api/v1/images/\(secondID)", key: Self.adminKey).status == 204)
        let afterDelete = try await search.request(
            .POST, "/api/v1/search", key: Self.adminKey, json: #"{"image_id": "\#(id)", "similarity_threshold": 0}"#)
        #expect(try #require(try json(afterDelete.body)["results"] as? [[String: Any]]).isEmpty)
        #expect(try await emulator.terminate() == 0)
        #expect(try await search.terminate() == 0)
    }

    @Test("production emulator: its local Pub/Sub delivers to its own event route, which refuses everyone else")
    func productionDeliversToItself() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let environment = [
            "ENVIRONMENT": "production", "API_KEY_SECRET": "an-end-to-end-secret-that-is-long-enough",
            "BOOTSTRAP_ADMIN_KEY": Self.adminKey, "METADATA_BACKEND": "memory", "VECTOR_BACKEND": "memory",
            "DATA_DIR": folder.appendingPathComponent("data").path,
        ]
        let emulator = try RunningFunction("emulator", in: folder, environment: environment)
        try await emulator.waitUntilListening()
        let id = try #require(try json(try await upload("sunset.jpg", to: emulator).body)["id"] as? String)
        _ = try await waitForStatus(id, "success", on: emulator)
        let outsider = try await emulator.request(.POST, "/events/process-embedding", json: "{}")
        #expect(outsider.status == 401)
        #expect(try await emulator.terminate() == 0)
    }

    @Test("push tokens and other credentials in a request URL never reach the logs")
    func credentialsRedactedFromLogs() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let token = "push-token-\(UUID().uuidString)"
        let emulator = try RunningFunction(
            "emulator", in: folder,
            environment: ["BOOTSTRAP_ADMIN_KEY": Self.adminKey, "PUBSUB_PUSH_TOKEN": token, "LOG_LEVEL": "debug"])
        try await emulator.waitUntilListening()
        let id = try #require(try json(try await upload("sunset-small.jpg", to: emulator).body)["id"] as? String)
        _ = try await waitForStatus(id, "success", on: emulator)
        // The emulator has no relay route (its relay runs inside): the 404 is logged all the same.
        _ = try await emulator.request(.POST, "/internal/outbox/relay?token=\(token)")
        _ = try await emulator.request(.POST, "/events/process-embedding?Token=\(token)&x=1", json: "{}")
        _ = try await emulator.request(.GET, "/api/v1/images?key=\(Self.adminKey)&limit=5")
        #expect(try await emulator.terminate() == 0)
        let logs = emulator.output + emulator.errors
        #expect(!logs.contains(token), "the push token is in the log")
        #expect(!logs.contains(Self.adminKey), "an API key is in the log")
        #expect(logs.contains("/internal/outbox/relay?token=REDACTED"))
        #expect(logs.contains("/events/process-embedding?Token=REDACTED&x=1"))
        #expect(logs.contains("/api/v1/images?key=REDACTED&limit=5"))
    }

    @Test(
        "on Google's emulators (fake-gcs-server, the Pub/Sub and Firestore emulators): bytes in the bucket, events through a push subscription, metadata in Firestore",
        .enabled(
            if: ProcessInfo.processInfo.environment["TEST_STORAGE_EMULATOR_HOST"] != nil
                && ProcessInfo.processInfo.environment["TEST_PUBSUB_EMULATOR_HOST"] != nil
                && ProcessInfo.processInfo.environment["TEST_FIRESTORE_EMULATOR_HOST"] != nil,
            "needs the servers scripts/test-servers.sh starts"))
    func googleEmulators() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data")
        let run = UUID().uuidString.prefix(8).lowercased()
        let variables = ProcessInfo.processInfo.environment
        var environment = [
            "BOOTSTRAP_ADMIN_KEY": Self.adminKey, "DATA_DIR": data.path, "BLOB_BACKEND": "gcs",
            "GCS_BUCKET_NAME": "images-\(run)",
            "STORAGE_EMULATOR_HOST": try #require(variables["TEST_STORAGE_EMULATOR_HOST"]),
            "EVENTS_BACKEND": "pubsub", "PUBSUB_EMULATOR_HOST": try #require(variables["TEST_PUBSUB_EMULATOR_HOST"]),
            "PUBSUB_TOPIC": "uploads-\(run)", "METADATA_BACKEND": "firestore",
            "FIRESTORE_EMULATOR_HOST": try #require(variables["TEST_FIRESTORE_EMULATOR_HOST"]),
            "FIRESTORE_PROJECT_ID": "emulator-\(run)",
        ]
        // A service-account key: downloads with redirect=true get URLs signed with it.
        let keyFile = folder.appendingPathComponent("key.json")
        try JSONSerialization.data(withJSONObject: [
            "type": "service_account", "client_email": "images@local-project.iam.gserviceaccount.com",
            "private_key_id": "k1", "private_key": try _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation,
        ]).write(to: keyFile)
        environment["GOOGLE_APPLICATION_CREDENTIALS"] = keyFile.path
        let emulator = try RunningFunction("emulator", in: folder, environment: environment)
        try await emulator.waitUntilListening()
        try await waitUntil("the push subscription exists", timeout: .seconds(30)) {
            emulator.output.contains("push subscription to this process created")
        }
        let uploaded = try await upload("sunset.jpg", to: emulator)
        #expect(uploaded.status == 201)
        let id = try #require(try json(uploaded.body)["id"] as? String)
        let image = try await waitForStatus(id, "success", on: emulator)
        #expect(image["embedding_attempts"] as? Int == 1)
        // The image's metadata is a document in the Firestore emulator.
        let firestore = FirestoreClient(
            endpoint: "http://\(environment["FIRESTORE_EMULATOR_HOST"]!)", project: "emulator-\(run)")
        #expect(try await firestore.document("images/\(id)")?.fields["embedding_status"] == .string("success"))
        let download = try await emulator.request(.GET, "/api/v1/images/\(id)/download", key: Self.adminKey)
        #expect(download.status == 200)
        #expect(Data(download.body.utf8).count > 0)
        // redirect=true: a V4 signed URL on the emulator, which serves the same bytes without a key.
        let redirected = try await emulator.request(
            .GET, "/api/v1/images/\(id)/download?redirect=true", key: Self.adminKey, client: redirectsAnswered)
        #expect(redirected.status == 307)
        let location = try #require(redirected.headers.first(name: "Location"))
        #expect(location.hasPrefix("\(environment["STORAGE_EMULATOR_HOST"]!)/images-\(run)/teams/"))
        #expect(location.contains("X-Goog-Credential=images%40local-project.iam.gserviceaccount.com%2F"))
        #expect(location.contains("X-Goog-Expires=900&") && location.contains("&X-Goog-Signature="))
        #expect(location.contains("response-content-disposition=inline%3B%20filename%3D%22sunset.jpg%22"))
        let direct = try await HTTPClient.shared.execute(HTTPClientRequest(url: location), timeout: .seconds(10))
        #expect(direct.status == .ok)
        let bytes = try await direct.body.collect(upTo: 1 << 22)
        let fixture = try Data(contentsOf: Self.fixtures.appendingPathComponent("sunset.jpg"))
        #expect(Data(buffer: bytes) == fixture)
        let refused = try await emulator.request(
            .GET, "/api/v1/images/\(id)/download?redirect=maybe", key: Self.adminKey)
        #expect(refused.status == 422)
        let bucket = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: "\(environment["STORAGE_EMULATOR_HOST"]!)/storage/v1/b/images-\(run)/o"),
            timeout: .seconds(10))
        let listing = String(buffer: try await bucket.body.collect(upTo: 1 << 20))
        #expect(listing.contains("\(id)/original") && listing.contains("\(id)/thumbnail.jpg"))
        // Each object carries its content type, and the original its SHA-256 as metadata.
        let objects = try #require(try json(listing)["items"] as? [[String: Any]])
        let original = try #require(objects.first { ($0["name"] as? String)?.hasSuffix("\(id)/original") == true })
        let thumbnail = try #require(objects.first { ($0["name"] as? String)?.hasSuffix("thumbnail.jpg") == true })
        #expect(original["contentType"] as? String == "image/jpeg")
        #expect((original["metadata"] as? [String: String])?["sha256"] == image["sha256"] as? String)
        #expect(thumbnail["contentType"] as? String == "image/jpeg")
        #expect(try await emulator.terminate() == 0)
        // The bytes went to the bucket: no blob is kept under DATA_DIR.
        let blobs =
            FileManager.default.enumerator(atPath: data.appendingPathComponent("blobs").path)?
            .compactMap { $0 as? String }.filter { $0.hasSuffix("original") } ?? []
        #expect(blobs.isEmpty, "blob files in DATA_DIR: \(blobs)")
    }

    /// Calls the Pub/Sub emulator's REST API as an operator would.
    @discardableResult
    func pubSub(_ method: HTTPMethod, _ path: String, _ body: String) async throws -> String {
        let host = try #require(ProcessInfo.processInfo.environment["TEST_PUBSUB_EMULATOR_HOST"])
        var request = HTTPClientRequest(url: "http://\(host)/v1/projects/local-project/\(path)")
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        #expect(response.status == .ok, "\(method) \(path): \(text)")
        return text
    }

    @Test(
        "the cloud topology locally: upload-image and process-embedding as separate processes, Pub/Sub's push between them; a killed processor loses nothing",
        .enabled(
            if: ProcessInfo.processInfo.environment["TEST_STORAGE_EMULATOR_HOST"] != nil
                && ProcessInfo.processInfo.environment["TEST_PUBSUB_EMULATOR_HOST"] != nil,
            "needs the servers scripts/test-servers.sh starts"))
    func separateProcessesOverPubSub() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = UUID().uuidString.prefix(8).lowercased()
        let variables = ProcessInfo.processInfo.environment
        let environment = [
            "BOOTSTRAP_ADMIN_KEY": Self.adminKey, "BLOB_BACKEND": "gcs", "GCS_BUCKET_NAME": "topology-\(run)",
            "STORAGE_EMULATOR_HOST": try #require(variables["TEST_STORAGE_EMULATOR_HOST"]),
            "EVENTS_BACKEND": "pubsub", "PUBSUB_EMULATOR_HOST": try #require(variables["TEST_PUBSUB_EMULATOR_HOST"]),
            "PUBSUB_TOPIC": "topology-\(run)",
        ]
        let uploader = try RunningFunction("upload-image", in: folder, environment: environment)
        try await uploader.waitUntilListening()
        var processor = try RunningFunction("process-embedding", in: folder, environment: environment)
        try await processor.waitUntilListening()
        // The operator's part: a topic and a push subscription to the processing service's URL.
        try await pubSub(.PUT, "topics/topology-\(run)", "{}")
        let subscription = "subscriptions/topology-\(run)-push"
        try await pubSub(
            .PUT, subscription,
            #"{"topic": "projects/local-project/topics/topology-\#(run)", "pushConfig": {"pushEndpoint": "http://127.0.0.1:\#(processor.port)/"}, "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "2s"}}"#
        )

        let first = try #require(try json(try await upload("sunset.jpg", to: uploader).body)["id"] as? String)
        _ = try await waitForStatus(first, "success", on: uploader)
        // The scheduler's endpoint: nothing is left to relay once the event is in Pub/Sub.
        let relayed = try await uploader.request(.POST, "/internal/outbox/relay")
        #expect(relayed.status == 200 && relayed.body == #"{"attempted":0}"#, "\(relayed.body)")

        // The processor dies; uploads go on, their events wait in Pub/Sub.
        kill(processor.process.processIdentifier, SIGKILL)
        #expect(try await processor.waitForExit() == SIGKILL)
        let second = try #require(try json(try await upload("lake.png", to: uploader).body)["id"] as? String)
        let third = try #require(try json(try await upload("forest.webp", to: uploader).body)["id"] as? String)
        let waiting = try json(try await uploader.request(.GET, "/api/v1/images/\(second)", key: Self.adminKey).body)
        #expect(waiting["embedding_status"] as? String == "pending")

        processor = try RunningFunction("process-embedding", in: folder, environment: environment)
        try await processor.waitUntilListening()
        try await pubSub(
            .POST, "\(subscription):modifyPushConfig",
            #"{"pushConfig": {"pushEndpoint": "http://127.0.0.1:\#(processor.port)/"}}"#)
        _ = try await waitForStatus(second, "success", on: uploader)
        _ = try await waitForStatus(third, "success", on: uploader)
        #expect(try await processor.terminate() == 0)
        #expect(try await uploader.terminate() == 0)
    }

    @Test(
        "process-embedding --create-resources on the Pub/Sub emulator makes the topics and its push subscription: no manual setup",
        .enabled(
            if: ProcessInfo.processInfo.environment["TEST_STORAGE_EMULATOR_HOST"] != nil
                && ProcessInfo.processInfo.environment["TEST_PUBSUB_EMULATOR_HOST"] != nil,
            "needs the servers scripts/test-servers.sh starts"))
    func createResources() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = UUID().uuidString.prefix(8).lowercased()
        let variables = ProcessInfo.processInfo.environment
        let environment = [
            "BOOTSTRAP_ADMIN_KEY": Self.adminKey, "BLOB_BACKEND": "gcs", "GCS_BUCKET_NAME": "created-\(run)",
            "STORAGE_EMULATOR_HOST": try #require(variables["TEST_STORAGE_EMULATOR_HOST"]),
            "EVENTS_BACKEND": "pubsub", "PUBSUB_EMULATOR_HOST": try #require(variables["TEST_PUBSUB_EMULATOR_HOST"]),
            "PUBSUB_TOPIC": "created-\(run)",
        ]
        let processor = try RunningFunction(
            "process-embedding", arguments: ["--create-resources"], in: folder, environment: environment)
        try await processor.waitUntilListening()
        try await waitUntil("the push subscription exists", timeout: .seconds(30)) {
            processor.output.contains("push subscription to this process created")
        }
        let subscription = try json(
            try await pubSub(.GET, "subscriptions/created-\(run)-process-embedding", ""))
        #expect(
            (subscription["pushConfig"] as? [String: Any])?["pushEndpoint"] as? String
                == "http://127.0.0.1:\(processor.port)/")
        #expect(
            (subscription["deadLetterPolicy"] as? [String: Any])?["deadLetterTopic"] as? String
                == "projects/local-project/topics/created-\(run)-dead-letter")
        let uploader = try RunningFunction("upload-image", in: folder, environment: environment)
        try await uploader.waitUntilListening()
        let id = try #require(try json(try await upload("sunset.jpg", to: uploader).body)["id"] as? String)
        _ = try await waitForStatus(id, "success", on: uploader)
        #expect(try await processor.terminate() == 0)
        #expect(try await uploader.terminate() == 0)
    }

    @Test(
        "the cloud topology locally: processing that fails every time leaves the image failed after 3 attempts and the message on the dead-letter topic",
        .enabled(
            if: ProcessInfo.processInfo.environment["TEST_STORAGE_EMULATOR_HOST"] != nil
                && ProcessInfo.processInfo.environment["TEST_PUBSUB_EMULATOR_HOST"] != nil,
            "needs the servers scripts/test-servers.sh starts"))
    func deadLetterTopic() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = UUID().uuidString.prefix(8).lowercased()
        let variables = ProcessInfo.processInfo.environment
        let environment = [
            "BOOTSTRAP_ADMIN_KEY": Self.adminKey, "BLOB_BACKEND": "gcs", "GCS_BUCKET_NAME": "failing-\(run)",
            "STORAGE_EMULATOR_HOST": try #require(variables["TEST_STORAGE_EMULATOR_HOST"]),
            "EVENTS_BACKEND": "pubsub", "PUBSUB_EMULATOR_HOST": try #require(variables["TEST_PUBSUB_EMULATOR_HOST"]),
            "PUBSUB_TOPIC": "failing-\(run)",
        ]
        let uploader = try RunningFunction("upload-image", in: folder, environment: environment)
        try await uploader.waitUntilListening()
        // The processor reads another (empty) bucket: the original is missing on every attempt.
        var elsewhere = environment
        elsewhere["GCS_BUCKET_NAME"] = "empty-\(run)"
        let processor = try RunningFunction("process-embedding", in: folder, environment: elsewhere)
        try await processor.waitUntilListening()
        try await pubSub(.PUT, "topics/failing-\(run)", "{}")
        try await pubSub(.PUT, "topics/failing-\(run)-dead-letter", "{}")
        try await pubSub(
            .PUT, "subscriptions/failing-\(run)-watch",
            #"{"topic": "projects/local-project/topics/failing-\#(run)-dead-letter"}"#)
        try await pubSub(
            .PUT, "subscriptions/failing-\(run)-push",
            #"{"topic": "projects/local-project/topics/failing-\#(run)", "pushConfig": {"pushEndpoint": "http://127.0.0.1:\#(processor.port)/"}, "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "2s"}}"#
        )

        let id = try #require(try json(try await upload("sunset.jpg", to: uploader).body)["id"] as? String)
        let image = try await waitForStatus(id, "failed", on: uploader)
        #expect(image["embedding_attempts"] as? Int == 3)
        #expect((image["embedding_error"] as? String)?.contains("missing from the blob store") == true)
        var received: [[String: Any]] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while received.isEmpty, ContinuousClock.now < deadline {
            let pulled = try json(
                try await pubSub(.POST, "subscriptions/failing-\(run)-watch:pull", #"{"maxMessages": 10}"#))
            received = pulled["receivedMessages"] as? [[String: Any]] ?? []
        }
        let message = try #require(received.first?["message"] as? [String: Any])
        let data = try #require(Data(base64Encoded: message["data"] as? String ?? ""))
        #expect(String(decoding: data, as: UTF8.self).contains(id))
        let attributes = try #require(message["attributes"] as? [String: String])
        #expect(attributes["attempts"] == "3" && attributes["source"] == "handler")
        #expect(attributes["last_error"]?.contains("missing from the blob store") == true)
        #expect(try await processor.terminate() == 0)
        #expect(try await uploader.terminate() == 0)
    }

    @Test("METADATA_, BLOB_ and VECTOR_BACKEND=memory: the whole pipeline runs and no file is left on disk")
    func memoryBackends() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data")
        let environment = [
            "BOOTSTRAP_ADMIN_KEY": Self.adminKey, "METADATA_BACKEND": "memory", "VECTOR_BACKEND": "memory",
            "BLOB_BACKEND": "memory", "DATA_DIR": data.path,
        ]
        let emulator = try RunningFunction("emulator", in: folder, environment: environment)
        try await emulator.waitUntilListening()
        #expect(emulator.output.contains("METADATA_BACKEND=memory"))
        // The banner names the backends chosen, not the SQLite file it would use by default.
        try await waitUntil("the banner") { emulator.output.contains("Image API emulator listening") }
        #expect(emulator.output.contains("metadata:   memory") && emulator.output.contains("blobs:      memory"))
        #expect(emulator.output.contains("vectors:    memory") && !emulator.output.contains("imagedb.sqlite"))
        let first = try #require(try json(try await upload("sunset.jpg", to: emulator).body)["id"] as? String)
        let second = try #require(try json(try await upload("sunset-small.jpg", to: emulator).body)["id"] as? String)
        _ = try await waitForStatus(first, "success", on: emulator)
        _ = try await waitForStatus(second, "success", on: emulator)
        let found = try await emulator.request(
            .POST, "/api/v1/search", key: Self.adminKey, json: #"{"image_id": "\#(first)"}"#)
        let results = try #require(try json(found.body)["results"] as? [[String: Any]])
        #expect(results.compactMap { ($0["image"] as? [String: Any])?["id"] as? String } == [second])
        #expect(try await emulator.terminate() == 0)
        // Uploads are staged in files while they arrive; none is left, and nothing else was written.
        let files = (FileManager.default.enumerator(atPath: data.path)?.compactMap { $0 as? String } ?? []).filter {
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: data.appendingPathComponent($0).path, isDirectory: &isFolder)
                && !isFolder.boolValue
        }
        #expect(files.isEmpty, "files in DATA_DIR: \(files)")

        // Unknown backends stop the process with the accepted values named.
        let unknown = try RunningFunction("emulator", in: folder, environment: ["METADATA_BACKEND": "elastic"])
        #expect(try await unknown.waitForExit() == 78)
        #expect(
            unknown.errors
                == "invalid configuration: METADATA_BACKEND must be one of sqlite, memory, firestore, postgres (got \"elastic\")\n"
        )
        let vectors = try RunningFunction("search", in: folder, environment: ["VECTOR_BACKEND": "pinecone"])
        #expect(try await vectors.waitForExit() == 78)
        #expect(vectors.errors.contains("VECTOR_BACKEND must be one of embedded, memory, qdrant"))
    }
}
