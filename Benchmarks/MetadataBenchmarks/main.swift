// The metadata-store benchmark: `Benchmarks/metadata-stores.sh` (which starts Google's Firestore
// emulator and a PostgreSQL server through scripts/test-servers.sh) runs `metadata-bench`.
//
// In one run, on a SQLite file (the baseline), on the Firestore emulator and on PostgreSQL, it
// measures each store operation a request makes, one after another:
// - create image: the image, its digest reservation and its outbox message in one transaction;
// - list page: 20 images of a team of 200, from the 41st, with the total;
// - count: the team's images counted by embedding state (`GET /api/v1/images/embeddings`);
// - key verify: an API key authenticated (the key read, its secret checked, its user read).
// It prints median and p95 per operation and the ratio of each median to SQLite's, and the
// document reads a Firestore listing page costs. Then, SQLite against PostgreSQL:
// - upload commits per second with 8 clients: the metadata write of an upload (the image and
//   its outbox message in one transaction), 8 at a time, for 4 seconds;
// - pickup latency: from an upload's commit (one store, as the upload process) to a relay's
//   claim of its message (another store, as the relay process), the relay woken by
//   LISTEN/NOTIFY or polling every 50 ms (SQLite's relays poll every 50 ms).
import BenchmarkSupport
import FirestoreStorage
import Foundation
import ImageAPICore
import Locking
import PostgresStorage
import SQLiteStorage

typealias Store = MetadataStore & ImageStore

// BENCH_QUICK: a few runs of each, half a second of commits and 5 pickups, to check that it runs.
let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? (isQuickRun ? 5 : 100)
let commitSeconds = isQuickRun ? 0.5 : 4
let pickups = isQuickRun ? 5 : 60
let clock = ContinuousClock()
let epoch = Date(timeIntervalSince1970: 1_800_000_000)

/// Times `body` `iterations` times (after 5 unmeasured runs) and returns the durations in ms.
func measure(_ body: (Int) async throws -> Void) async throws -> [Double] {
    for warmup in 0..<5 { try await body(-1 - warmup) }
    var times: [Double] = []
    for index in 0..<iterations {
        let start = clock.now
        try await body(index)
        let elapsed = clock.now - start
        times.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
    }
    return times.sorted()
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.down)))]
}

func image(team: TeamID, _ index: Int) -> ImageRecord {
    ImageRecord(
        id: ImageID(), teamID: team, uploaderID: UserID(), collectionID: nil, filename: "photo-\(index).jpg",
        contentType: "image/jpeg", format: "jpeg", fileSize: 100_000, width: 1024, height: 768, orientation: nil,
        sha256: UUID().uuidString, description: "a harbour at dusk, number \(index)", tags: ["sea", "boats"],
        exif: ["Make": "Camera"], createdAt: epoch.addingTimeInterval(Double(index)))
}

/// Each operation's sorted durations, by name.
func run(_ store: some Store) async throws -> [String: [Double]] {
    let team = Team(id: TeamID(), name: "Bench", description: nil, createdAt: epoch, updatedAt: epoch)
    try await store.insertTeam(team)
    let user = User(
        id: UserID(), email: "bench-\(UUID().uuidString.prefix(8))@example.com", name: "Bench", teamID: team.id,
        isAdmin: false, isActive: true, createdAt: epoch, updatedAt: epoch)
    try await UserService(store: store).create(user)
    for index in 0..<200 {
        let record = image(team: team.id, index)
        try await store.insertImage(
            record,
            publishing: .processing(ImageProcessingRequest(imageID: record.id, teamID: team.id, reason: "upload")),
            allowDuplicate: false)
    }
    let keys = APIKeyService(store: store, secret: "bench-secret", expiryDays: 30, clock: SystemTimeSource())
    let issued = try await keys.issueKey(for: user, name: "bench", description: nil)
    guard let text = issued.key else { throw BenchmarkFailure("no key text") }
    // Images of a team of their own, so that the listing's team keeps 200.
    let other = TeamID()
    try await store.insertTeam(Team(id: other, name: "Other", description: nil, createdAt: epoch, updatedAt: epoch))
    var results: [String: [Double]] = [:]
    results["create image"] = try await measure { index in
        let record = image(team: other, 1000 + index)
        try await store.insertImage(
            record,
            publishing: .processing(ImageProcessingRequest(imageID: record.id, teamID: other, reason: "upload")),
            allowDuplicate: false)
    }
    results["list page"] = try await measure { _ in
        let page = try await store.images(teamID: team.id, filter: ImageFilter(), PageRequest(skip: 40, limit: 20))
        guard page.items.count == 20, page.total == 200 else { throw BenchmarkFailure("a wrong page") }
    }
    results["count"] = try await measure { _ in
        let summary = try await store.embeddingSummary(teamID: team.id, model: "m")
        guard summary.total == 200 else { throw BenchmarkFailure("a wrong count") }
    }
    results["key verify"] = try await measure { _ in
        _ = try await keys.authenticate(presented: text)
    }
    return results
}

await runBenchmark("metadata-bench") {
    guard let host = ProcessInfo.processInfo.environment["TEST_FIRESTORE_EMULATOR_HOST"] else {
        throw BenchmarkFailure("TEST_FIRESTORE_EMULATOR_HOST is not set: run Benchmarks/metadata-stores.sh")
    }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("metadata-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let sqlite = try await run(try SQLiteMetadataStore(path: folder.appendingPathComponent("metadata.sqlite").path))
    let queries = Locked<[FirestoreQuery]>([])
    let firestoreClient = FirestoreClient(
        endpoint: "http://\(host)", project: "bench-\(UUID().uuidString.prefix(8).lowercased())",
        concurrentTransactions: 1, queryObserver: { query in queries.withLock { $0.append(query) } })
    let firestore = try await run(FirestoreMetadataStore(client: firestoreClient))
    guard let postgresURL = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] else {
        throw BenchmarkFailure("TEST_DATABASE_URL is not set: run Benchmarks/metadata-stores.sh")
    }
    /// A schema of its own on the server for each store this run opens.
    func postgresSettings(poolSize: Int = 10) throws -> PostgresSettings {
        try PostgresSettings(
            url: postgresURL, schema: "bench_\(UUID().uuidString.prefix(8).lowercased())", poolSize: poolSize)
    }
    let postgres = try await PostgresMetadataStore.withRunningStore(try postgresSettings()) { @Sendable in
        try await run($0)
    }

    print(
        "Metadata store operations, \(iterations) runs each, one at a time (ms; SQLite file vs Firestore emulator vs PostgreSQL)"
    )
    print(
        "operation      SQLite median    p95   Firestore median    p95  (÷SQLite)   PostgreSQL median    p95  (÷SQLite)"
    )
    for name in ["create image", "list page", "count", "key verify"] {
        let (s, f, g) = (sqlite[name]!, firestore[name]!, postgres[name]!)
        print(
            name.padding(toLength: 14, withPad: " ", startingAt: 0)
                + String(
                    format: " %13.2f %6.2f %18.2f %6.2f %8.1f× %19.2f %6.2f %8.1f×", percentile(s, 0.5),
                    percentile(s, 0.95), percentile(f, 0.5), percentile(f, 0.95),
                    percentile(f, 0.5) / percentile(s, 0.5),
                    percentile(g, 0.5), percentile(g, 0.95), percentile(g, 0.5) / percentile(s, 0.5)))
    }
    // What one listing page costs in Firestore reads: the documents the page query returns, and the
    // count aggregation (billed as one read per 1,000 index entries counted, at least one).
    queries.withLock { $0.removeAll() }
    let store = FirestoreMetadataStore(client: firestoreClient)
    let team = TeamID()
    try await store.insertTeam(Team(id: team, name: "Reads", description: nil, createdAt: epoch, updatedAt: epoch))
    for index in 0..<30 {
        let record = image(team: team, index)
        try await store.insertImage(
            record, publishing: .processing(ImageProcessingRequest(imageID: record.id, teamID: team, reason: "upload")),
            allowDuplicate: false)
    }
    queries.withLock { $0.removeAll() }
    let page = try await store.images(teamID: team, filter: ImageFilter(), PageRequest(skip: 0, limit: 20))
    let issued = queries.withLock { $0 }
    print(
        "Firestore reads per listing page of 20: \(page.items.count) documents + \(issued.count - 1) count aggregation"
            + " (1 read per 1,000 entries counted) = \(page.items.count + (issued.count - 1) * max(1, (page.total + 999) / 1000))"
    )

    // Upload commits per second with 8 clients, SQLite against PostgreSQL.
    /// How many uploads' metadata 8 concurrent clients commit in `seconds`.
    @Sendable func uploadRate(_ store: some Store, seconds: Double = commitSeconds) async throws -> Double {
        let team = TeamID()
        try await store.insertTeam(Team(id: team, name: "Rate", description: nil, createdAt: epoch, updatedAt: epoch))
        let deadline = clock.now + .milliseconds(Int(seconds * 1000))
        let began = clock.now
        let committed = try await withThrowingTaskGroup(of: Int.self) { group in
            for client in 0..<8 {
                group.addTask {
                    var count = 0
                    while clock.now < deadline {
                        let record = image(team: team, client * 1_000_000 + count)
                        try await store.insertImage(
                            record,
                            publishing: .processing(
                                ImageProcessingRequest(imageID: record.id, teamID: team, reason: "upload")),
                            allowDuplicate: false)
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = clock.now - began
        return Double(committed) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
    let sqliteRate = try await uploadRate(
        try SQLiteMetadataStore(path: folder.appendingPathComponent("rate.sqlite").path))
    let postgresRate = try await PostgresMetadataStore.withRunningStore(try postgresSettings(poolSize: 16)) {
        @Sendable in try await uploadRate($0)
    }
    print(
        String(
            format: "Upload commits per second, 8 clients for %.1f s: SQLite %.0f, PostgreSQL %.0f (%.2f× SQLite)",
            commitSeconds, sqliteRate, postgresRate, postgresRate / sqliteRate))

    // Commit → relay pickup: one store commits uploads one at a time, 100 ms apart; a relay on a
    // second store (its own pool, as another process) claims each message, woken by NOTIFY or
    // polling every 50 ms.
    /// What a pickup run saw: each message's latency (ms) and the claims the relay made.
    final class PickupRecord: Sendable {
        let latencies = Locked<[Double]>([])
        let claims = Locked(0)
    }

    /// The pickup latencies (ms, sorted) and the claim queries the relay made per second.
    func pickup(listens: Bool, count: Int = pickups) async throws -> (latencies: [Double], claimsPerSecond: Double) {
        let settings = try postgresSettings()
        return try await PostgresMetadataStore.withRunningStore(settings, listens: false) { writer in
            try await PostgresMetadataStore.withRunningStore(settings, listens: listens) { relay in
                let team = TeamID()
                try await writer.insertTeam(
                    Team(id: team, name: "Pickup", description: nil, createdAt: epoch, updatedAt: epoch))
                // The listener is on its channel once it counts its first change.
                if listens { while relay.enqueuedHere == 0 { try await relay.waitForNewMessages(after: 0) } }
                let recorded = PickupRecord()
                let began = clock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while recorded.latencies.withLock({ $0.count }) < count {
                            let seen = relay.enqueuedHere
                            let claimed = try await relay.claimDueMessages(
                                now: Date(), leaseUntil: Date().addingTimeInterval(60), limit: 4)
                            recorded.claims.withLock { $0 += 1 }
                            let now = Date()
                            for message in claimed {
                                recorded.latencies.withLock {
                                    $0.append(now.timeIntervalSince(message.publishedAt) * 1000)
                                }
                                try await relay.acknowledge(messageID: message.message.messageID)
                            }
                            if claimed.isEmpty { try await relay.waitForNewMessages(after: seen) }
                        }
                    }
                    for index in 0..<count {
                        try await Task.sleep(for: .milliseconds(100))
                        var record = image(team: team, index)
                        record.createdAt = Date()
                        try await writer.insertImage(
                            record,
                            publishing: .processing(
                                ImageProcessingRequest(imageID: record.id, teamID: team, reason: "upload")),
                            allowDuplicate: false)
                    }
                    try await group.waitForAll()
                }
                let elapsed = clock.now - began
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                return (recorded.latencies.withLock { $0.sorted() }, Double(recorded.claims.withLock { $0 }) / seconds)
            }
        }
    }
    let notified = try await pickup(listens: true)
    let polled = try await pickup(listens: false)
    print(
        "Commit → relay pickup on PostgreSQL, \(pickups) uploads 100 ms apart (ms; median, p95; claim queries per second)"
    )
    for (name, result) in [("LISTEN/NOTIFY", notified), ("polling, 50 ms", polled)] {
        print(
            name.padding(toLength: 16, withPad: " ", startingAt: 0)
                + String(
                    format: " %7.2f %7.2f   %5.1f claims/s", percentile(result.latencies, 0.5),
                    percentile(result.latencies, 0.95), result.claimsPerSecond))
    }
    print(
        String(
            format: "LISTEN/NOTIFY picks up %.1f× sooner than polling (median)",
            percentile(polled.latencies, 0.5) / percentile(notified.latencies, 0.5)))
}
