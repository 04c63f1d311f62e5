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
    /// The database: its pool, its migrations and how its queries run.
    let database: PostgresDatabase
    /// Whether relays are woken by `NOTIFY` (otherwise they poll every ``idlePollInterval``).
    let listens: Bool
    /// Counts the outbox notifications heard (the listener signals it).
    let outboxChanges = ChangeSignal()

    /// The pool.
    var client: PostgresClient { database.client }
    /// Where it connects.
    var settings: PostgresSettings { database.settings }
    /// Where migrations and the listener log.
    var logger: Logger { database.logger }

    /// The schema version this build migrates to.
    public static var schemaVersion: Int { PostgresSchema.metadata.steps.count }

    /// The channel `NOTIFY` announces outbox messages on, with the schema as payload.
    static let outboxChannel = "image_api_outbox"

    /// Creates the store; nothing connects until the first query.
    /// - Parameters:
    ///   - settings: Where to connect.
    ///   - listens: Whether relays wait for `NOTIFY` (the default) or only poll.
    ///   - leaseTimeout: How long a query waits for a connection before answering 503.
    ///   - logger: Where migrations and the listener log.
    public init(
        settings: PostgresSettings, listens: Bool = true, leaseTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "postgres")
    ) {
        self.database = PostgresDatabase(
            settings: settings, migrations: PostgresSchema.metadata, role: "metadata store",
            leaseTimeout: leaseTimeout, logger: logger)
        self.listens = listens
    }

    /// Runs the outbox listener, when the store listens, until cancelled; then closes the pool.
    public func run() async {
        database.startPool()
        if listens {
            await listenForMessages()
        } else {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }
        database.shutdown()
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

    // MARK: Queries

    /// Migrates if needed; see ``PostgresDatabase/prepared()``.
    func prepared() async throws { try await database.prepared() }

    /// Runs one statement and collects its rows; see ``PostgresDatabase/rows(_:)``.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] { try await database.rows(query) }

    /// A transaction; see ``PostgresDatabase/transaction(_:_:)``.
    func transaction<T: Sendable>(
        _ isolation: String = "READ COMMITTED", _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await database.transaction(isolation, body)
    }

    /// A page of a table's rows; see ``PostgresDatabase/page(_:where:orderBy:_:_:)``.
    func page<T>(
        _ table: String, where condition: PostgresQuery, orderBy order: String, _ page: PageRequest,
        _ read: (PostgresRow) throws -> T
    ) async throws -> Page<T> {
        try await database.page(table, where: condition, orderBy: order, page, read)
    }

    /// A server error's SQLSTATE and constraint; see ``PostgresDatabase/violation(_:)``.
    static func violation(_ error: any Error) -> (state: String, constraint: String?)? {
        PostgresDatabase.violation(error)
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

}

extension PostgresMetadataStore {
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
}
