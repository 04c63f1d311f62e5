import Foundation
import ImageAPICore
import Logging
import PostgresNIO
import RuntimeSupport
import Synchronization

/// The metadata store on a PostgreSQL server, shared by any number of processes on any number
/// of machines.
///
/// Every metadata port is served from one database through postgres-nio's connection pool. The
/// schema is migrated before the first query, in one transaction holding an advisory lock, so
/// that instances starting together migrate once. Units of work
/// (``withTransaction(_:)``) run `SERIALIZABLE` and are run again when PostgreSQL reports a
/// serialization failure or a deadlock. Every message put in the outbox is announced with
/// `NOTIFY`, which wakes the relays of every process listening (``listenForMessages()``).
///
/// The connection pool starts with the first query; ``run()`` (the host's background work)
/// listens for outbox notifications and closes the pool when cancelled.
public final class PostgresMetadataStore: MetadataStore, Sendable {
    /// The connection pool.
    let client: PostgresClient
    /// Where it connects, for messages.
    let settings: PostgresSettings
    /// Logs the pool's background events and the listener's reconnections.
    let logger: Logger
    /// Whether relays are woken by `NOTIFY` (otherwise they poll every ``idlePollInterval``).
    let listens: Bool
    /// Counts the outbox notifications heard (the listener signals it).
    let outboxChanges = ChangeSignal()
    /// How long a query waits for a connection (the server unreachable, or every connection
    /// busy) before it is answered with a 503.
    let leaseTimeout: Duration
    /// The connection pool's loop, started by the first query.
    private let poolLoop = Mutex<Task<Void, Never>?>(nil)
    /// The schema migration, run once before the first query.
    private let migration = Mutex<Task<Void, any Error>?>(nil)

    /// The schema version this build migrates to.
    public static var schemaVersion: Int { PostgresSchema.migrations.count }

    /// The channel `NOTIFY` announces outbox messages on, with the schema as payload.
    static let outboxChannel = "image_api_outbox"

    /// Creates the store; nothing connects until the first query.
    /// - Parameters:
    ///   - settings: Where to connect.
    ///   - listens: Whether relays wait for `NOTIFY` (the default) or only poll.
    ///   - logger: Where migrations and the listener log.
    ///   - leaseTimeout: How long a query waits for a connection before answering 503.
    public init(
        settings: PostgresSettings, listens: Bool = true, leaseTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "postgres")
    ) {
        self.settings = settings
        self.leaseTimeout = leaseTimeout
        self.listens = listens
        self.logger = logger
        // The pool's own log: errors only (it warns of every lease asked for before it runs).
        var poolLogger = logger
        poolLogger.logLevel = .error
        self.client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: poolLogger)
    }

    /// Starts the connection pool's loop unless it runs: the first query does, so that a store
    /// serves before its host's background work starts (the bootstrap key is registered first).
    private func startPool() {
        poolLoop.withLock { loop in
            if loop == nil { loop = Task { [client] in await client.run() } }
        }
    }

    /// Runs the outbox listener, when the store listens, until cancelled; then closes the pool.
    public func run() async {
        startPool()
        if listens {
            await listenForMessages()
        } else {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }
        shutdown()
    }

    /// Closes the connection pool: queries made afterwards fail.
    public func shutdown() {
        poolLoop.withLock { $0?.cancel() }
    }

    /// Runs `body` with the store (and its listener, when it listens), and closes the pool
    /// afterwards: for tools and tests that use the store outside a host.
    /// - Parameters:
    ///   - settings: Where to connect.
    ///   - listens: Whether relays wait for `NOTIFY`.
    ///   - leaseTimeout: How long a query waits for a connection.
    ///   - body: The work.
    /// - Returns: What `body` returns.
    public static func withRunningStore<T: Sendable>(
        _ settings: PostgresSettings, listens: Bool = true, leaseTimeout: Duration = .seconds(10),
        _ body: (PostgresMetadataStore) async throws -> T
    ) async throws -> T {
        let store = PostgresMetadataStore(settings: settings, listens: listens, leaseTimeout: leaseTimeout)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            return try await body(store)
        }
    }

    /// Runs one statement on the server, outside any transaction and without migrating
    /// (`CREATE DATABASE`, `DROP DATABASE`): for tools and tests that prepare a server.
    /// - Parameters:
    ///   - settings: Where to connect.
    ///   - statement: The SQL, taken as it is.
    public static func administer(_ settings: PostgresSettings, _ statement: String) async throws {
        var logger = Logger(label: "postgres")
        logger.logLevel = .error
        let client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.query(PostgresQuery(unsafeSQL: statement))
        }
    }

    // MARK: Schema

    /// Starts the pool and migrates the schema, once per store; a failed migration is tried
    /// again by the next call.
    func prepared() async throws {
        startPool()
        let task = migration.withLock { current in
            if let current { return current }
            let task = Task {
                try await withLeasedConnection { [settings, logger] connection in
                    try await PostgresSchema.migrate(on: connection, schema: settings.schema, logger: logger)
                }
            }
            current = task
            return task
        }
        do {
            try await task.value
        } catch {
            migration.withLock { if $0 == task { $0 = nil } }
            throw unavailable(error)
        }
    }

    // MARK: Queries

    /// Runs one statement and collects its rows.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await prepared()
        return try await withLeasedConnection { connection in
            try await connection.query(query, logger: self.logger).collect()
        }
    }

    /// Runs `body` on a connection of the pool, answering 503 when none is leased within
    /// ``leaseTimeout`` (the time `body` takes once it has one is not bounded).
    func withLeasedConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let leased = LeaseFlag()
        do {
            return try await withThrowingTaskGroup(of: LeaseOutcome<T>.self) { group in
                group.addTask { [client] in
                    .finished(
                        try await client.withConnection { connection in
                            leased.set()
                            return try await body(connection)
                        })
                }
                group.addTask { [leaseTimeout] in
                    try await Task.sleep(for: leaseTimeout)
                    return .deadline
                }
                while let outcome = try await group.next() {
                    switch outcome {
                    case .finished(let result):
                        group.cancelAll()
                        return result
                    case .deadline where !leased.isSet:
                        group.cancelAll()
                        throw DomainError(
                            .unavailableFor(retryAfterSeconds: 1),
                            "The metadata store is unavailable: no connection to PostgreSQL at "
                                + "\(settings.serverDescription) within \(leaseTimeout)")
                    case .deadline:
                        continue
                    }
                }
                throw CancellationError()
            }
        } catch {
            throw unavailable(error)
        }
    }

    /// Runs `body` on one connection inside `BEGIN … COMMIT` at `isolation`, rolling back when it
    /// throws; a serialization failure or deadlock runs it again (up to 20 times, with jitter).
    func transaction<T: Sendable>(
        _ isolation: String = "READ COMMITTED", _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await prepared()
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withLeasedConnection { [logger] connection in
                    try await connection.query("BEGIN ISOLATION LEVEL \(unescaped: isolation)", logger: logger)
                    do {
                        let result = try await body(connection)
                        try await connection.query("COMMIT", logger: logger)
                        return result
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        throw error
                    }
                }
            } catch let error as PSQLError where Self.isRetryable(error) && attempt < 20 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 * attempt))))
            }
        }
    }

    /// A serialization failure (40001) or a deadlock (40P01): the transaction may simply be run again.
    static func isRetryable(_ error: PSQLError) -> Bool {
        ["40001", "40P01"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    /// The SQLSTATE and constraint of a server error, when it is one.
    static func violation(_ error: any Error) -> (state: String, constraint: String?)? {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return nil }
        return (state, error.serverInfo?[.constraintName])
    }

    /// The server cannot be reached (or the pool is closed): a 503 that says so, as
    /// ``DomainError``; any other error as it is.
    func unavailable(_ error: any Error) -> any Error {
        // The pool's own errors (its circuit breaker, after a minute of failed connections)
        // come as `ConnectionPoolError`, a type its module does not export.
        if String(describing: type(of: error)) == "ConnectionPoolError" {
            return DomainError(
                .unavailableFor(retryAfterSeconds: 1),
                "The metadata store is unavailable: PostgreSQL at \(settings.serverDescription) cannot be reached")
        }
        guard let error = error as? PSQLError else { return error }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown,
            .sslUnsupported, .failedToAddSSLHandler:
            return DomainError(
                .unavailableFor(retryAfterSeconds: 1),
                "The metadata store is unavailable: PostgreSQL at \(settings.serverDescription) cannot be reached")
        default:
            return error
        }
    }

    // MARK: Readiness

    /// Migrates if needed and runs a trivial query.
    public func checkReady() async throws {
        _ = try await rows("SELECT 1")
    }

    // MARK: Units of work

    /// Runs `body` in one `SERIALIZABLE` transaction on a connection of its own, run again on a
    /// serialization failure or deadlock, or an e-mail's unique violation (up to 20 times).
    public func withTransaction<T: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> T
    )
        async throws -> T
    {
        var attempt = 0
        while true {
            attempt += 1
            do {
                // The connection's task ends before this call returns: `body` does not outlive it.
                return try await withoutActuallyEscaping(body) { body in
                    try await transaction("SERIALIZABLE") { connection in
                        try await body(PostgresMetadataTransaction(connection: connection, logger: self.logger))
                    }
                }
            } catch let error as MetadataStoreError where error == .emailTaken && attempt < 20 {
                // PostgreSQL reports a unique violation, not a serialization failure, when a
                // concurrent transaction inserted the same e-mail and this one had not read it:
                // run again on what is committed, where the body's own checks see the other user.
                // (A body that reads the address first, as the services do, gets the
                // serialization failure instead.)
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(2 * attempt))))
            }
        }
    }

    // MARK: Teams

    /// Stores a new team.
    public func insertTeam(_ team: Team) async throws {
        _ = try await rows(MetadataStatements.insert(team))
    }

    /// Reads a team by id.
    public func team(id: TeamID) async throws -> Team? {
        try await rows("SELECT * FROM teams WHERE id = \(id.uuid)").first.map(MetadataStatements.team)
    }

    /// Lists teams, oldest first, with the total.
    public func teams(_ page: PageRequest) async throws -> Page<Team> {
        try await self.page("teams", where: "true", orderBy: "created_at, id", page, MetadataStatements.team)
    }

    /// Replaces a team's fields; `false` when there is no such team.
    public func updateTeam(_ team: Team) async throws -> Bool {
        try await !rows(
            """
            UPDATE teams SET name = \(team.name), description = \(team.description), updated_at = \(team.updatedAt)
            WHERE id = \(team.id.uuid) RETURNING id
            """
        ).isEmpty
    }

    // MARK: Users

    /// Reads a user.
    public func user(id: UserID) async throws -> User? {
        try await rows("SELECT * FROM users WHERE id = \(id.uuid)").first.map(MetadataStatements.user)
    }

    /// Reads a user.
    public func user(email: String) async throws -> User? {
        try await rows("SELECT * FROM users WHERE lower(email) = \(email.lowercased())").first.map(
            MetadataStatements.user)
    }

    /// Lists users, optionally of one team, oldest first, with the total.
    public func users(teamID: TeamID?, _ page: PageRequest) async throws -> Page<User> {
        let team = teamID?.uuid
        return try await self.page(
            "users", where: "(\(team)::uuid IS NULL OR team_id = \(team))", orderBy: "created_at, id", page,
            MetadataStatements.user)
    }

    // MARK: API keys

    /// Reads a key.
    public func apiKey(id: APIKeyID) async throws -> APIKey? {
        try await rows("SELECT * FROM api_keys WHERE id = \(id.uuid)").first.map(MetadataStatements.apiKey)
    }

    /// Lists a user's keys, oldest first, with the total.
    public func apiKeys(userID: UserID, _ page: PageRequest) async throws -> Page<APIKey> {
        try await self.page(
            "api_keys", where: "user_id = \(userID.uuid)", orderBy: "created_at, id", page, MetadataStatements.apiKey)
    }

    /// Marks a key revoked.
    public func revokeAPIKey(id: APIKeyID) async throws -> Bool {
        try await !rows("UPDATE api_keys SET is_active = false WHERE id = \(id.uuid) RETURNING id").isEmpty
    }

    /// Records when a key last authenticated a request.
    public func recordAPIKeyUse(id: APIKeyID, at date: Date) async throws {
        _ = try await rows("UPDATE api_keys SET last_used_at = \(date) WHERE id = \(id.uuid)")
    }

    // MARK: Administrators

    /// The secret hash of a bootstrap key registered once, whatever became of it since.
    public func bootstrapKeyHash(id: APIKeyID) async throws -> Data? {
        try await rows("SELECT secret_hash FROM bootstrap_keys WHERE key_id = \(id.uuid)").first?.decode(Data.self)
    }

    /// Records that a bootstrap key was registered (the first record stays).
    public func recordBootstrapKey(id: APIKeyID, secretHash: Data, at date: Date) async throws {
        _ = try await rows(
            try """
            INSERT INTO bootstrap_keys (key_id, secret_hash, registered_at) VALUES (\(id.uuid), \(secretHash), \(date))
            ON CONFLICT (key_id) DO NOTHING
            """)
    }

    // MARK: Helpers

    /// A page of a table's rows that pass `condition`, in `order`, with the total: one query
    /// whose rows carry the total (a window count), and a count of its own only for a page past
    /// the end, which has no rows to carry it.
    /// - Parameters:
    ///   - table: The table (a constant of this module, never input).
    ///   - condition: The `WHERE` condition, with its binds.
    ///   - order: The `ORDER BY` list (a constant of this module).
    ///   - page: The page wanted.
    ///   - read: Reads one row.
    func page<T>(
        _ table: String, where condition: PostgresQuery, orderBy order: String, _ page: PageRequest,
        _ read: (PostgresRow) throws -> T
    ) async throws -> Page<T> {
        var query = PostgresQuery(
            unsafeSQL: "SELECT *, count(*) OVER () AS total FROM \(table) WHERE \(condition.sql) ORDER BY \(order)",
            binds: condition.binds)
        query.binds.append(page.limit)
        query.binds.append(page.skip)
        query.sql += " LIMIT $\(query.binds.count - 1) OFFSET $\(query.binds.count)"
        let rows = try await rows(query)
        if let first = rows.first {
            return Page(items: try rows.map(read), total: try first.makeRandomAccess()["total"].decode(Int.self))
        }
        let count = PostgresQuery(
            unsafeSQL: "SELECT count(*) FROM \(table) WHERE \(condition.sql)", binds: condition.binds)
        return Page(items: [], total: try await self.rows(count).first?.decode(Int.self) ?? 0)
    }
}

/// Whether a connection was leased: set once, from the task that leased it.
final class LeaseFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    func set() { flag.store(true, ordering: .releasing) }

    var isSet: Bool { flag.load(ordering: .acquiring) }
}

/// How the first of a leased query and its lease deadline ended.
enum LeaseOutcome<T: Sendable>: Sendable {
    case finished(T)
    case deadline
}
