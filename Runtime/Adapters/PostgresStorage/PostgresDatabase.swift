import Foundation
import ImageAPICore
import Locking
import Logging
import PostgresNIO
import Synchronization

/// One PostgreSQL database as a store uses it: postgres-nio's connection pool (started by the
/// first query), the store's migrations (applied once before the first query), queries that
/// answer 503 when no connection comes within a deadline, and transactions run again on
/// serialization failures and deadlocks. The metadata store and the pgvector index each have one.
final class PostgresDatabase: Sendable {
    /// The connection pool.
    let client: PostgresClient
    /// Where it connects.
    let settings: PostgresSettings
    /// The migrations of the store using it.
    let migrations: PostgresMigrations
    /// What the store is, in messages (`metadata store`, `vector index`).
    let role: String
    /// Where migrations log.
    let logger: Logger
    /// How long a query waits for a connection (the server unreachable, or every connection
    /// busy) before it is answered with a 503.
    let leaseTimeout: Duration
    /// The connection pool's loop, started by the first query.
    private let poolLoop = Locked<Task<Void, Never>?>(nil)
    /// The migration, run once before the first query.
    private let migration = Locked<Task<Void, any Error>?>(nil)

    /// Describes the database; nothing connects until the first query.
    init(
        settings: PostgresSettings, migrations: PostgresMigrations, role: String, leaseTimeout: Duration,
        logger: Logger
    ) {
        self.settings = settings
        self.migrations = migrations
        self.role = role
        self.leaseTimeout = leaseTimeout
        self.logger = logger
        // The pool's own log: errors only (it warns of every lease asked for before it runs).
        var poolLogger = logger
        poolLogger.logLevel = .error
        self.client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: poolLogger)
    }

    /// Starts the connection pool's loop unless it runs: the first query does, so that a store
    /// serves before its host's background work starts (the bootstrap key is registered first).
    func startPool() {
        poolLoop.withLock { loop in
            if loop == nil { loop = Task { [client] in await client.run() } }
        }
    }

    /// Closes the connection pool: queries made afterwards fail.
    func shutdown() {
        poolLoop.withLock { $0?.cancel() }
    }

    /// Starts the pool and applies the migrations, once; a failed migration is tried again by
    /// the next call.
    func prepared() async throws {
        startPool()
        let task = migration.withLock { current in
            if let current { return current }
            let task = Task {
                try await withLeasedConnection { [settings, migrations, logger] connection in
                    try await migrations.apply(on: connection, schema: settings.schema, logger: logger)
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

    /// Runs one statement and collects its rows.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await prepared()
        return try await withLeasedConnection { [logger] connection in
            try await connection.query(query, logger: logger).collect()
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
                            "The \(role) is unavailable: no connection to PostgreSQL at "
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
                        await Self.rollBack(connection, logger: logger)
                        throw error
                    }
                }
            } catch let error as PSQLError where Self.isRetryable(error) && attempt < 20 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 * attempt))))
            }
        }
    }

    /// Rolls back what `connection` has open; a connection that cannot roll back is closed, so
    /// that the pool never hands out one still inside a transaction.
    static func rollBack(_ connection: PostgresConnection, logger: Logger) async {
        do {
            try await connection.query("ROLLBACK", logger: logger)
        } catch {
            try? await connection.close()
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

    /// The server cannot be reached (or the pool is closed): a 503 that says so, naming the
    /// role, as ``DomainError``; any other error as it is.
    func unavailable(_ error: any Error) -> any Error {
        // The pool's own errors (its circuit breaker, after a minute of failed connections)
        // come as `ConnectionPoolError`, a type its module does not export.
        if String(describing: type(of: error)) == "ConnectionPoolError" {
            return DomainError(
                .unavailableFor(retryAfterSeconds: 1),
                "The \(role) is unavailable: PostgreSQL at \(settings.serverDescription) cannot be reached")
        }
        guard let error = error as? PSQLError else { return error }
        // The server's own word that it is going away or not yet back: class 08 (connection
        // exception) and 57P (shut down, crashed, or starting up: a killed server's backends end
        // their connections with 57P01 or 57P02, and it refuses new ones with 57P03 while it
        // recovers).
        if let state = error.serverInfo?[.sqlState], state.hasPrefix("08") || state.hasPrefix("57P") {
            return DomainError(
                .unavailableFor(retryAfterSeconds: 1),
                "The \(role) is unavailable: PostgreSQL at \(settings.serverDescription) is restarting (\(state))")
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown,
            .sslUnsupported, .failedToAddSSLHandler:
            return DomainError(
                .unavailableFor(retryAfterSeconds: 1),
                "The \(role) is unavailable: PostgreSQL at \(settings.serverDescription) cannot be reached")
        default:
            return error
        }
    }

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
