import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// These start the real executables as separate processes and talk to them over HTTP on loopback.
@Suite("End to end: the real binaries over HTTP", .serialized)
struct EmulatorEndToEndTests {
    @Test("the emulator serves every function, keeps data across a restart and stops cleanly on SIGTERM")
    func emulator() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction("emulator", in: folder, environment: [:])
        try await emulator.waitUntilListening()
        #expect(emulator.output.contains("Image API emulator listening on http://127.0.0.1:\(emulator.port)"))
        #expect(emulator.output.contains("metadata:   sqlite (\(folder.path)/imagedb.sqlite)"))
        #expect(emulator.output.contains("management: development"))
        #expect(emulator.output.contains(#""severity":"WARNING""#), "the development-mode warning is logged")

        #expect(try await emulator.request(.GET, "/healthz").body == #"{"status":"ok"}"#)
        #expect(try await emulator.request(.GET, "/readyz").status == 200)
        let docs = try await emulator.request(.GET, "/docs")
        #expect(docs.status == 200 && docs.headers["Content-Type"].first?.hasPrefix("text/html") == true)
        #expect(try json(try await emulator.request(.GET, "/openapi.json").body)["openapi"] as? String == "3.1.0")

        let team = try json(try await emulator.request(.POST, "/api/v1/teams", json: #"{"name": "Photo desk"}"#).body)
        let teamID = try #require(team["id"] as? String)
        let userReply = try await emulator.request(
            .POST, "/api/v1/users", json: #"{"email": "ada@example.com", "name": "Ada", "team_id": "\#(teamID)"}"#)
        #expect(userReply.status == 201)
        let userID = try #require(try json(userReply.body)["id"] as? String)
        let keyReply = try await emulator.request(
            .POST, "/api/v1/auth/api-keys?user_id=\(userID)&team_id=\(teamID)", json: #"{"name": "e2e"}"#)
        #expect(keyReply.status == 201)
        let key = try #require(try json(keyReply.body)["key"] as? String)
        let verified = try json(try await emulator.request(.GET, "/api/v1/auth/verify", key: key).body)
        #expect(verified["user_id"] as? String == userID)

        let missing = try await emulator.request(.GET, "/api/v1/nothing")
        #expect(missing.status == 404 && missing.body == #"{"detail":"Not Found"}"#)
        #expect(try await emulator.request(.PATCH, "/api/v1/teams").status == 405)

        #expect(try await emulator.terminate() == 0)
        #expect(emulator.output.contains(#""message":"Stopped""#))

        let restarted = try RunningFunction("emulator", in: folder, environment: [:])
        try await restarted.waitUntilListening()
        #expect(try await restarted.request(.GET, "/api/v1/auth/verify", key: key).status == 200)
        let teams = try json(try await restarted.request(.GET, "/api/v1/teams").body)
        #expect(teams["total"] as? Int == 1)
        #expect(try await restarted.terminate() == 0)
    }

    @Test("each function binary serves its own routes alone, sharing one database with the others")
    func functionsAlone() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let environment = ["K_SERVICE": "under-test", "K_REVISION": "under-test-00001"]
        let teams = try RunningFunction("manage-teams", in: folder, environment: environment)
        let users = try RunningFunction("manage-users", in: folder, environment: environment)
        let keys = try RunningFunction("api-keys", in: folder, environment: environment)
        for function in [teams, users, keys] { try await function.waitUntilListening() }
        #expect(teams.output.contains(#""K_REVISION":"under-test-00001""#))

        let team = try json(try await teams.request(.POST, "/api/v1/teams", json: #"{"name": "Alone"}"#).body)
        let teamID = try #require(team["id"] as? String)
        let user = try json(
            try await users.request(
                .POST, "/api/v1/users", json: #"{"email": "solo@example.com", "name": "Solo", "team_id": "\#(teamID)"}"#
            ).body)
        let userID = try #require(user["id"] as? String)
        let created = try await keys.request(
            .POST, "/api/v1/auth/api-keys?user_id=\(userID)&team_id=\(teamID)", json: #"{"name": "solo"}"#)
        let key = try #require(try json(created.body)["key"] as? String)
        #expect(try await keys.request(.GET, "/api/v1/auth/verify", key: key).status == 200)

        #expect(try await teams.request(.GET, "/api/v1/users").status == 404)
        #expect(try await users.request(.GET, "/api/v1/teams").status == 404)
        #expect(try await keys.request(.GET, "/api/v1/teams").status == 404)
        #expect(try await keys.request(.GET, "/api/v1/auth/verify").status == 401)
        for function in [teams, users, keys] {
            #expect(try await function.request(.GET, "/healthz").status == 200)
            #expect(try await function.terminate() == 0)
        }
    }

    @Test("an invalid variable stops startup with one line naming it and status 78")
    func invalidConfiguration() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction("emulator", in: folder, environment: ["PORT": "eighty"])
        #expect(try await emulator.waitForExit() == 78)
        #expect(emulator.errors == "invalid configuration: PORT must be an integer from 0 to 65535 (got \"eighty\")\n")
        let production = try RunningFunction("manage-teams", in: folder, environment: ["ENVIRONMENT": "production"])
        #expect(try await production.waitForExit() == 78)
        #expect(production.errors.hasPrefix("invalid configuration: API_KEY_SECRET"))

        // An event route open to anyone is not a production configuration.
        let secret = ["ENVIRONMENT": "production", "API_KEY_SECRET": "an-end-to-end-secret-that-is-long-enough"]
        let unguarded = try RunningFunction("process-embedding", in: folder, environment: secret)
        #expect(try await unguarded.waitForExit() == 78)
        #expect(unguarded.output.contains("PUBSUB_PUSH_TOKEN"))
        var guarded = secret
        guarded["PUBSUB_PUSH_TOKEN"] = "a-push-token-of-some-length"
        let started = try RunningFunction("process-embedding", in: folder, environment: guarded)
        try await started.waitUntilListening()
        #expect(try await started.request(.POST, "/events/process-embedding", json: "{}").status == 401)
        #expect(try await started.terminate() == 0)
    }

    @Test(
        "only processes that write the outbox relay it: with EVENTS_BACKEND=pubsub and no Pub/Sub settings the management functions and Search serve, upload-image refuses"
    )
    func relayOnlyWhereTheOutboxIsWritten() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // No GOOGLE_CLOUD_PROJECT, no PUBSUB_EMULATOR_HOST: a process that built a Pub/Sub relay would stop.
        let environment = ["EVENTS_BACKEND": "pubsub", "EMBEDDING_PROVIDER": "visual"]
        for product in ["manage-teams", "manage-users", "api-keys", "search"] {
            let function = try RunningFunction(product, in: folder, environment: environment)
            try await function.waitUntilListening()
            #expect(try await function.request(.GET, "/healthz").status == 200, "\(product)")
            // The scheduler's relay endpoint is served only where a relay runs.
            #expect(try await function.request(.POST, "/internal/outbox/relay").status == 404, "\(product)")
            #expect(try await function.terminate() == 0, "\(product)")
        }
        let uploads = try RunningFunction("upload-image", in: folder, environment: environment)
        #expect(try await uploads.waitForExit() == 78)
        #expect(uploads.errors.contains("GOOGLE_CLOUD_PROJECT"))
    }

    @Test("production: bootstrap-admin and BOOTSTRAP_ADMIN_KEY give working admin keys")
    func productionBootstrap() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let production = [
            "ENVIRONMENT": "production", "API_KEY_SECRET": "an-end-to-end-secret-that-is-long-enough",
        ]
        let cli = try RunningFunction(
            "emulator", arguments: ["bootstrap-admin", "--email", "ops@example.com"], in: folder,
            environment: production)
        #expect(try await cli.waitForExit() == 0)
        let printed = try #require(cli.output.split(separator: "\n").first { $0.hasPrefix("API key") })
        let cliKey = String(try #require(printed.split(separator: " ").last))

        let bootstrapKey = "imk_" + String(repeating: "ab", count: 16) + "_" + String(repeating: "k", count: 43)
        var environment = production
        environment["BOOTSTRAP_ADMIN_KEY"] = bootstrapKey
        let emulator = try RunningFunction("emulator", in: folder, environment: environment)
        try await emulator.waitUntilListening()
        #expect(emulator.output.contains("management: production"))
        let anonymous = try await emulator.request(.POST, "/api/v1/teams", json: #"{"name": "X"}"#)
        #expect(anonymous.status == 401)
        #expect(anonymous.headers["WWW-Authenticate"].first == #"Bearer realm="image-api""#)
        #expect(try await emulator.request(.POST, "/api/v1/teams", key: cliKey, json: #"{"name": "X"}"#).status == 201)
        #expect(
            try await emulator.request(.POST, "/api/v1/teams", key: bootstrapKey, json: #"{"name": "Y"}"#).status == 201
        )
        #expect(try await emulator.terminate() == 0)
    }

    @Test("SIGTERM lets a request that is still arriving finish before the process exits")
    func gracefulShutdown() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction("emulator", in: folder, environment: [:])
        try await emulator.waitUntilListening()
        let body = #"{"name": "Arrived during shutdown", "description": "slowly"}"#
        let connection = try RawConnection(port: emulator.port)
        connection.send(
            """
            POST /api/v1/teams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
            Content-Length: \(body.utf8.count)\r\n\r\n\(body.prefix(10))
            """)
        // The request is in flight once the server has read its head and first bytes.
        try await waitUntil("the server has read the request's head") {
            try KernelSocket.serverHasReadEverything(port: emulator.port, newSince: [])
        }
        kill(emulator.process.processIdentifier, SIGTERM)
        try await waitUntil("the listener is closed") { (try? RawConnection(port: emulator.port)) == nil }
        #expect(emulator.process.isRunning, "the server waits for the request in flight")
        connection.send(String(body.dropFirst(10)))

        let (closed, answer) = connection.waitForClose(timeout: .seconds(10))
        #expect(closed)
        #expect(answer.hasPrefix("HTTP/1.1 201"), "\(answer)")
        #expect(answer.contains(#""name":"Arrived during shutdown""#), "\(answer)")
        #expect(try await emulator.waitForExit() == 0)
    }
}
