import AsyncHTTPClient
import FirestoreStorage
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// A topology of separate function processes behind the router, as a script starts it: by
/// default the local cloud topology of `make run-gcp-local` (`scripts/run-gcp-local.sh`: six
/// function processes on fake-gcs-server and the Pub/Sub and Firestore emulators); or
/// `scripts/run-distributed.sh`.
final class LocalCloudTopology: LoopbackServer, @unchecked Sendable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let script = Process()
    /// Where the script writes each process's log, port and pid.
    let folder: URL
    let output: URL
    private(set) var port = 0
    /// The Firestore project of the topology's metadata.
    private(set) var firestoreProject: String?

    /// Starts the script on the test servers, with the binaries this test run built.
    /// - Parameters:
    ///   - script: The script under `scripts/`.
    ///   - servers: The test servers' variables the script needs.
    init(
        in folder: URL, script name: String = "run-gcp-local.sh",
        servers: [String] = [
            "TEST_STORAGE_EMULATOR_HOST", "TEST_PUBSUB_EMULATOR_HOST", "TEST_FIRESTORE_EMULATOR_HOST",
        ],
        environment: [String: String]
    ) throws {
        self.folder = folder
        output = folder.appendingPathComponent("\(name).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let variables = ProcessInfo.processInfo.environment
        let project = "topology-\(UUID().uuidString.prefix(8).lowercased())"
        firestoreProject = project
        // Foundation starts processes with the calling thread's signal mask, in which SIGTERM is
        // blocked here; bash cannot unblock it, so a Python shim clears the mask before the script runs.
        script.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        script.arguments = [
            "-c",
            "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv('/bin/bash', ['bash', sys.argv[1]])",
            Self.repository.appendingPathComponent("scripts/\(name)").path,
        ]
        script.currentDirectoryURL = Self.repository
        var serverVariables: [String: String] = [:]
        for server in servers {
            guard let value = variables[server] else {
                throw RunningFunction.StartError(
                    "\(server) is not set: scripts/test-servers.sh did not start that server")
            }
            serverVariables[server] = value
        }
        script.environment = [
            "PATH": variables["PATH"] ?? "/usr/bin:/bin", "HOME": variables["HOME"] ?? folder.path,
            // A database of its own on the shared emulator (the script's metadata is on Firestore).
            "FIRESTORE_PROJECT_ID": project,
            "BIN_DIR": RunningFunction.productsFolder.path, "TOPOLOGY_DIR": folder.path, "PORT": "0",
        ].merging(serverVariables) { $1 }
            .merging(variables.filter { $0.key == "TEST_VENV" || $0.key.hasSuffix("SAN_OPTIONS") }) { $1 }
            .merging(environment) { $1 }
        script.standardOutput = try FileHandle(forWritingTo: output)
        script.standardError = script.standardOutput
        try script.run()
    }

    var printed: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    /// Requests through the router may wait on processes that a loaded test machine starts slowly,
    /// and on emulators that other suites keep busy.
    var requestTimeout: Duration { .seconds(60) }

    /// Runs a test's steps; when one fails, records what the script printed and the end of every
    /// process's log beside the failure, since the folder holding them is removed afterwards.
    func reportingLogs(_ steps: () async throws -> Void) async {
        do {
            try await steps()
        } catch {
            let logs = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
                .filter { $0.hasSuffix(".log") }.sorted()
                .map { name in
                    let lines = log(String(name.dropLast(4))).split(separator: "\n", omittingEmptySubsequences: false)
                    return "--- \(name), last 30 of \(lines.count) lines:\n" + lines.suffix(30).joined(separator: "\n")
                }
            Issue.record("\(error)\n--- the script printed:\n\(printed)\n\(logs.joined(separator: "\n"))")
        }
    }

    /// A file the script wrote, trimmed.
    func state(_ name: String) -> String? {
        (try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A function's log.
    func log(_ service: String) -> String { state("\(service).log") ?? "" }

    /// The pid of a function's current process.
    func pid(_ service: String) throws -> pid_t { try #require(state("\(service).pid").flatMap { pid_t($0) }) }

    /// Waits until every process answers and the router's address is written.
    func waitUntilReady(timeout: Duration = .seconds(120)) async throws {
        try await waitUntil("the topology is ready", timeout: timeout) {
            guard script.isRunning else {
                throw RunningFunction.StartError("the script exited \(script.terminationStatus): \(printed)")
            }
            return FileManager.default.fileExists(atPath: folder.appendingPathComponent("ready").path)
        }
        let url = try #require(state("router.url").flatMap(URL.init(string:)))
        port = try #require(url.port)
    }

    /// Stops the topology with SIGTERM (what the script receives from scripts/test-servers.sh on
    /// Ctrl-C), and returns the script's exit status.
    func stop() async throws -> Int32 {
        script.terminate()
        let deadline = ContinuousClock.now + .seconds(30)
        while script.isRunning {
            guard ContinuousClock.now < deadline else { throw RunningFunction.StartError("did not stop: \(printed)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return script.terminationStatus
    }

    /// Makes a team, a member of it and the member's key through the router, as the administrator.
    /// - Returns: The team's and the user's ids, and the key.
    func member(
        admin: String, team name: String, email: String
    ) async throws -> (
        teamID: String, userID: String, key: String
    ) {
        let team = try json(try await request(.POST, "/api/v1/teams", key: admin, json: #"{"name": "\#(name)"}"#).body)
        let teamID = try #require(team["id"] as? String)
        let user = try json(
            try await request(
                .POST, "/api/v1/users", key: admin,
                json: #"{"email": "\#(email)", "name": "Member", "team_id": "\#(teamID)"}"#
            ).body)
        let userID = try #require(user["id"] as? String)
        let issued = try json(
            try await request(.POST, "/api/v1/auth/admin/api-keys/\(userID)", key: admin, json: #"{"name": "e2e"}"#)
                .body)
        return (teamID, userID, try #require(issued["key"] as? String))
    }

    deinit {
        if script.isRunning { script.terminate() }
    }
}

@Suite("End to end: the local cloud topology behind its router", .serialized)
struct CloudTopologyEndToEndTests {
    let pipeline = ImagePipelineEndToEndTests()

    @Test(
        "make run-gcp-local: metadata on the Firestore emulator; a team, a user and a key made through the router; uploads go through Pub/Sub to the process-embedding process, the search process finds them; a killed processor is started again and loses nothing",
        .enabled(
            if: ProcessInfo.processInfo.environment["TEST_STORAGE_EMULATOR_HOST"] != nil
                && ProcessInfo.processInfo.environment["TEST_PUBSUB_EMULATOR_HOST"] != nil
                && ProcessInfo.processInfo.environment["TEST_FIRESTORE_EMULATOR_HOST"] != nil,
            "needs the servers scripts/test-servers.sh starts"))
    func throughTheRouter() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = UUID().uuidString.prefix(8).lowercased()
        let admin = ImagePipelineEndToEndTests.adminKey
        let topology = try LocalCloudTopology(
            in: folder,
            environment: [
                "BOOTSTRAP_ADMIN_KEY": admin, "GCS_BUCKET_NAME": "router-\(run)", "PUBSUB_TOPIC": "router-\(run)",
            ])
        await topology.reportingLogs {
            try await topology.waitUntilReady()

            // The management services, each behind its prefix.
            let (teamID, userID, key) = try await topology.member(
                admin: admin, team: "Router \(run)", email: "\(run)@example.com")
            let verified = try json(try await topology.request(.GET, "/api/v1/auth/verify", key: key).body)
            #expect(verified["team_id"] as? String == teamID)
            // The metadata is in the Firestore emulator, where every process reads it.
            let firestore = FirestoreClient(
                endpoint: "http://\(try #require(ProcessInfo.processInfo.environment["TEST_FIRESTORE_EMULATOR_HOST"]))",
                project: try #require(topology.firestoreProject))
            #expect(try await firestore.document("teams/\(teamID)")?.fields["name"] == .string("Router \(run)"))
            #expect(try await firestore.document("users/\(userID)") != nil)

            // Uploads reach success through the Pub/Sub emulator's push to the separate processor.
            let first = try json(try await pipeline.upload("sunset.jpg", to: topology, key: key).body)
            let firstID = try #require(first["id"] as? String)
            #expect(first["team_id"] as? String == teamID)
            let second = try #require(
                try json(try await pipeline.upload("lake.png", to: topology, key: key).body)["id"] as? String)
            _ = try await pipeline.waitForStatus(firstID, "success", on: topology, key: key)
            _ = try await pipeline.waitForStatus(second, "success", on: topology, key: key)
            #expect(topology.log("process-embedding").contains(firstID))

            // The search process answers /api/v1/search with the processor's vectors.
            let found = try await topology.request(
                .POST, "/api/v1/search", key: key, json: #"{"image_id": "\#(firstID)", "similarity_threshold": 0}"#)
            #expect(found.status == 200, "\(found.body)")
            let results = try #require(try json(found.body)["results"] as? [[String: Any]])
            #expect(results.compactMap { ($0["image"] as? [String: Any])?["id"] as? String } == [second])
            #expect(topology.log("search").contains("/api/v1/search"))
            #expect(!topology.log("upload-image").contains("/api/v1/search"))

            // The processor dies; the next upload waits in Pub/Sub until its new process takes it.
            let killed = try topology.pid("process-embedding")
            kill(killed, SIGKILL)
            let third = try #require(
                try json(try await pipeline.upload("forest.webp", to: topology, key: key).body)["id"] as? String)
            _ = try await pipeline.waitForStatus(third, "success", on: topology, key: key)
            #expect(try topology.pid("process-embedding") != killed)
            #expect(topology.printed.contains("process-embedding exited with 137; starting it again"))

            // Unmapped paths are the router's own 404; the dead-letter listing is the processor's.
            let unmapped = try await topology.request(.GET, "/api/v1/nothing-here", key: key)
            #expect(unmapped.status == 404 && unmapped.body.contains("detail"))
            let deadLetters = try await topology.request(.GET, "/api/v1/admin/dead-letters", key: admin)
            #expect(deadLetters.status == 200, "\(deadLetters.body)")

            let pids = try ["router", "upload-image", "search", "process-embedding"].map { try topology.pid($0) }
            #expect(try await topology.stop() == 0)
            for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) outlived the topology") }
        }
    }
}
