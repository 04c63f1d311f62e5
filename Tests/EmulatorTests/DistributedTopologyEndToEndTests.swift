import Foundation
import Testing

/// A process of a topology, reached on its own port.
struct TopologyProcess: LoopbackServer {
    let port: Int
}

@Suite("End to end: the distributed topology on PostgreSQL", .serialized)
struct DistributedTopologyEndToEndTests {
    let pipeline = ImagePipelineEndToEndTests()

    @Test(
        "make run-distributed: uploads through the router are processed by both ProcessEmbedding replicas, each image by one; either Search replica answers the same; a replica killed mid-run loses nothing",
        .enabled(
            if: ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] != nil
                && ProcessInfo.processInfo.environment["TEST_QDRANT_HOST"] != nil,
            "needs the servers scripts/test-servers.sh starts"))
    func replicas() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = UUID().uuidString.prefix(8).lowercased()
        let admin = ImagePipelineEndToEndTests.adminKey
        let topology = try LocalCloudTopology(
            in: folder, script: "run-distributed.sh", servers: ["TEST_DATABASE_URL", "TEST_QDRANT_HOST"],
            environment: [
                "BOOTSTRAP_ADMIN_KEY": admin, "DATABASE_SCHEMA": "distributed_\(run)",
                "QDRANT_COLLECTION": "distributed-\(run)", "PUBSUB_RETRY_BASE_MS": "200",
            ])
        await topology.reportingLogs {
            try await topology.waitUntilReady()

            let (_, _, key) = try await topology.member(
                admin: admin, team: "Replicas \(run)", email: "\(run)@example.com")

            // Sixteen uploads, four at a time: the relay hands them to the two replicas in turn.
            let fixtures = ["sunset.jpg", "lake.png", "forest.webp", "lake.gif"]
            func upload(_ count: Int) async throws -> [String] {
                try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            let reply = try await pipeline.upload(
                                fixtures[index % fixtures.count], to: topology, key: key, query: "?allow_duplicate=true"
                            )
                            #expect(reply.status == 201, "\(reply.body)")
                            return try #require(try json(reply.body)["id"] as? String)
                        }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
            }
            let first = try await upload(16)
            for id in first { _ = try await pipeline.waitForStatus(id, "success", on: topology, key: key) }
            func embedded(_ id: String, by replica: String) -> Int {
                topology.log(replica).split(separator: "\n")
                    .filter { $0.contains(#""message":"Image embedded""#) && $0.contains(id) }.count
            }
            let perReplica = ["process-embedding-1", "process-embedding-2"].map { replica in
                first.filter { embedded($0, by: replica) > 0 }.count
            }
            #expect(perReplica.allSatisfy { $0 > 0 }, "one replica processed nothing: \(perReplica)")
            for id in first {
                let times = embedded(id, by: "process-embedding-1") + embedded(id, by: "process-embedding-2")
                #expect(times == 1, "image \(id) was embedded \(times) times")
            }

            // Either Search replica answers a query with the same results.
            let query = #"{"image_id": "\#(first[0])", "similarity_threshold": 0, "limit": 50}"#
            var answers: [[String]] = []
            for replica in ["search-1", "search-2"] {
                let process = TopologyProcess(port: try #require(topology.state("\(replica).port").flatMap { Int($0) }))
                let found = try await process.request(.POST, "/api/v1/search", key: key, json: query)
                #expect(found.status == 200, "\(found.body)")
                let results = try #require(try json(found.body)["results"] as? [[String: Any]])
                answers.append(results.compactMap { ($0["image"] as? [String: Any])?["id"] as? String })
            }
            #expect(answers[0].count == 15 && answers[0] == answers[1])

            // One ProcessEmbedding replica dies while eight more uploads are in flight: the relay's
            // deliveries to it fail and are retried, to either replica, and every image gets there.
            let killed = try topology.pid("process-embedding-1")
            async let second = upload(8)
            kill(killed, SIGKILL)
            for id in try await second { _ = try await pipeline.waitForStatus(id, "success", on: topology, key: key) }
            #expect(topology.printed.contains("process-embedding-1 exited with 137; starting it again"))

            let pids = try ["router", "event-relay", "search-1", "process-embedding-2"].map { try topology.pid($0) }
            #expect(try await topology.stop() == 0)
            for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) outlived the topology") }
        }
    }
}
