import Foundation
import ImageAPICore
import Locking
import PostgresNIO
import PostgresStorage
import RuntimeSupport
import Testing

/// What the PostgreSQL store adds to the contracts, on the server the test command starts:
/// migrations shared by instances starting together, delivery claims shared by relays of
/// several processes, the notification that wakes them, and an unreachable server.
@Suite(
    "PostgreSQL store",
    .enabled(if: TestServers.postgres != nil, "needs the PostgreSQL server scripts/test-servers.sh starts"))
struct PostgresStoreTests {
    @Test("ten instances starting together on a new schema migrate it once and all serve")
    func migrationsRunOnce() async throws {
        try await TestServers.withPostgresDatabase { settings in
            var settings = settings
            settings.schema = "starting_together"
            let teams = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<10 {
                    group.addTask { [settings] in
                        try await PostgresMetadataStore.withRunningStore(settings, listens: false) { store in
                            try await store.insertTeam(Make.team("Team \(index)"))
                            return try await store.teams(PageRequest()).total
                        }
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(teams.count == 10 && teams.allSatisfy { (1...10).contains($0) })
            let applied = try await TestServers.postgresRows(
                settings, "SELECT count(*) FROM starting_together.schema_migrations")
            #expect(applied == [PostgresMetadataStore.schemaVersion])
        }
    }

    @Test(
        "two relays' stores claiming 1,000 messages concurrently never take the same delivery attempt twice; failed attempts come back once each"
    )
    func claimsAreExclusive() async throws {
        try await TestServers.withPostgresDatabase(poolSize: 8) { settings in
            try await PostgresMetadataStore.withRunningStore(settings, listens: false) { first in
                try await PostgresMetadataStore.withRunningStore(settings, listens: false) { second in
                    let team = Make.team()
                    try await first.insertTeam(team)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for slice in 0..<8 {
                            group.addTask {
                                for index in stride(from: slice, to: 1000, by: 8) {
                                    let image = Make.image(team: team, at: index % 7)
                                    try await first.insertImage(
                                        image, publishing: Make.message(for: image), allowDuplicate: false)
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    // About a fifth of the messages (ids ending in 2, 7 or d) fail their first attempt and are retried at once.
                    let claims = Locked<[String: [Int]]>([:])
                    let now = Make.date(10)
                    let relay: @Sendable (PostgresMetadataStore) async throws -> Void = { store in
                        var idle = 0
                        while idle < 3 {
                            let claimed = try await store.claimDueMessages(
                                now: now, leaseUntil: Make.date(100_000), limit: 4)
                            idle = claimed.isEmpty ? idle + 1 : 0
                            for queued in claimed {
                                let id = queued.message.messageID
                                claims.withLock { $0[id, default: []].append(queued.attempts) }
                                if queued.attempts == 1, (id.utf8.last ?? 0) % 5 == 0 {
                                    try await store.scheduleRetry(messageID: id, error: "503", at: now)
                                } else {
                                    try await store.acknowledge(messageID: id)
                                }
                            }
                        }
                    }
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for store in [first, second, first, second, first, second] {
                            group.addTask { try await relay(store) }
                        }
                        try await group.waitForAll()
                    }
                    let attempts = claims.withLock { $0 }
                    #expect(attempts.count == 1000)
                    let repeated = attempts.filter { _, seen in seen != Array(1...seen.count) || seen.count > 2 }
                    #expect(repeated.isEmpty, "attempts claimed twice or out of order: \(repeated.prefix(5))")
                    #expect(attempts.values.contains { $0.count == 2 })
                    #expect(try await first.nextDueDate() == nil)
                }
            }
        }
    }

    @Test("a relay waiting on one store is woken by a message another process's store commits, not by its poll")
    func notificationWakesRelays() async throws {
        try await TestServers.withPostgresDatabase { settings in
            try await PostgresMetadataStore.withRunningStore(settings) { listener in
                try await PostgresMetadataStore.withRunningStore(settings, listens: false) { writer in
                    let team = Make.team()
                    try await writer.insertTeam(team)
                    // The listener counts one change when its channel opens.
                    while listener.enqueuedHere == 0 { try await listener.waitForNewMessages(after: 0) }
                    let seen = listener.enqueuedHere
                    let image = Make.image(team: team)
                    try await writer.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
                    // Counted only when the notification arrives (within the 1 s the wait lasts at most).
                    try await listener.waitForNewMessages(after: seen)
                    #expect(listener.enqueuedHere > seen, "no notification of the commit reached the listener")
                    #expect(writer.enqueuedHere == 0)
                }
            }
        }
    }

    @Test("a server that cannot be reached answers 503 naming the metadata store")
    func unreachable() async throws {
        let settings = try PostgresSettings(url: "postgres://nobody@127.0.0.1:1/none?sslmode=disable")
        let error = try await PostgresMetadataStore.withRunningStore(
            settings, listens: false, leaseTimeout: .seconds(1)
        ) { store in
            await #expect(throws: DomainError.self) { try await store.checkReady() }
            do {
                _ = try await store.team(id: TeamID())
                return nil as DomainError?
            } catch let error as DomainError {
                return error
            }
        }
        #expect(error?.kind == .unavailableFor(retryAfterSeconds: 1))
        #expect(error?.detail.contains("metadata store is unavailable") == true)
    }

    @Test("DATABASE_URL: users, hosts, sockets, ports and sslmode as libpq reads them; bad values are refused")
    func settings() throws {
        let full = try PostgresSettings(url: "postgresql://app:s%40cret@db.internal:6543/images?sslmode=verify-full")
        #expect(full.username == "app" && full.password == "s@cret" && full.host == "db.internal")
        #expect(full.port == 6543 && full.database == "images" && full.tls == .verifyFull && full.schema == "public")
        let defaults = try PostgresSettings(url: "postgres://app@localhost")
        #expect(defaults.port == 5432 && defaults.database == "app" && defaults.tls == .prefer)
        let socket = try PostgresSettings(url: "postgres://app@/images?host=/var/run/postgresql")
        #expect(socket.socketFolder == "/var/run/postgresql" && socket.host == nil)
        for bad in ["mysql://app@db/x", "postgres://db/x", "postgres://app@db/x?sslmode=sometimes", "not a url"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try PostgresSettings(url: bad) }
        }
        #expect(throws: ConfigurationError.self) { try PostgresSettings(url: "postgres://app@db", schema: "Bad-Name") }
        #expect(throws: ConfigurationError.self) { try PostgresSettings(EnvironmentVariables([:])) }
        let pooled = try PostgresSettings(
            EnvironmentVariables([
                "DATABASE_URL": "postgres://app@db/x", "DATABASE_POOL_SIZE": "25", "DATABASE_SCHEMA": "tenant_a",
            ]))
        #expect(pooled.poolSize == 25 && pooled.schema == "tenant_a")
    }
}

extension TestServers {
    /// The integers a query's first column holds, on a database of the PostgreSQL server.
    static func postgresRows(_ settings: PostgresSettings, _ sql: String) async throws -> [Int] {
        let client = PostgresClient(configuration: settings.testClientConfiguration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await client.query(PostgresQuery(unsafeSQL: sql)).collect().map { try $0.decode(Int.self) }
        }
    }
}

extension PostgresSettings {
    /// A plain-TCP configuration of these settings (the test server takes no TLS).
    var testClientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: host ?? "127.0.0.1", port: port, username: username, password: password, database: database,
            tls: .disable)
    }
}

@Suite(
    "PostgreSQL: dump and restore",
    .enabled(if: TestServers.postgres != nil, "needs the PostgreSQL server scripts/test-servers.sh starts"))
struct PostgresDumpRestoreTests {
    /// Runs a PostgreSQL client program to its end; its output when it fails.
    func run(_ program: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let text = String(decoding: try errors.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(program): \(text)")
    }

    func url(_ settings: PostgresSettings) -> String {
        "postgresql://\(settings.username)@\(settings.host ?? "127.0.0.1"):\(settings.port)/\(settings.database)"
    }

    @Test(
        "pg_dump of a serving database, pg_restore into a new one: teams, images and the outbox come back, and the store serves it"
    )
    func dumpAndRestore() async throws {
        let dump = FileManager.default.temporaryDirectory.appendingPathComponent("image-api-\(UUID()).dump")
        defer { try? FileManager.default.removeItem(at: dump) }
        let team = Make.team("Backed up")
        let image = Make.image(team: team)
        let message = Make.message(for: image)
        try await TestServers.withPostgresDatabase { source in
            try await PostgresMetadataStore.withRunningStore(source, listens: false) { store in
                try await store.insertTeam(team)
                try await store.insertImage(image, publishing: message, allowDuplicate: false)
                // The dump is taken while the store holds its connections, as on a serving database.
                try run("pg_dump", ["--format=custom", "--file=\(dump.path)", url(source)])
            }
        }
        try await TestServers.withPostgresDatabase { target in
            try run("pg_restore", ["--no-owner", "--dbname=\(url(target))", dump.path])
            try await PostgresMetadataStore.withRunningStore(target, listens: false) { store in
                #expect(try await store.team(id: team.id)?.name == "Backed up")
                let restored = try #require(try await store.image(id: image.id, teamID: team.id))
                #expect(restored.sha256 == image.sha256 && restored.filename == image.filename)
                let due = try await store.claimDueMessages(now: Make.date(3600), leaseUntil: Make.date(3660), limit: 10)
                #expect(due.map(\.message.messageID) == [message.messageID])
                // The restored database takes new writes.
                try await store.insertTeam(Make.team("After the restore"))
                #expect(try await store.teams(PageRequest()).total == 2)
            }
        }
    }
}
