import Foundation
import GRDB
import ImageAPICore
import RuntimeSupport

/// The embedded metadata store: one SQLite file in WAL mode, opened through GRDB.
///
/// Versioned migrations run when the store opens. A unit of work (``withTransaction(_:)``) gets
/// a connection of its own and holds SQLite's write lock from its first statement
/// (`BEGIN IMMEDIATE`), so transactions of every process on the file run one after another.
public final class SQLiteMetadataStore: MetadataStore {
    /// The connection pool; the image, vector and queue stores in this module share it.
    let pool: DatabasePool
    /// The database file, which each unit of work opens a connection to.
    private let path: String
    /// The settings of every connection: foreign keys, and a wait for the write lock.
    private let configuration: Configuration
    /// Lets one unit of work at a time in this process wait for the file's write lock: the
    /// others wait here, holding no thread, and the busy timeout is left to other processes.
    private let transactions = AsyncGate(limit: 1)

    /// Copies the database at `source` to a new file at `destination` with SQLite's online
    /// backup, in one step, so the copy is one consistent moment of the source. Every outbox
    /// message of the copy is made due at once: a delivery the serving process had claimed, and
    /// may not have finished, is made again after a restore (deliveries are safe to repeat)
    /// rather than when that process's lease would have run out.
    /// - Parameters:
    ///   - source: The database.
    ///   - destination: The copy.
    /// - Throws: When either file cannot be opened, or the copy fails.
    static func snapshot(from source: String, to destination: String) throws {
        guard FileManager.default.fileExists(atPath: source) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: source])
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.readonly = true
        let from = try DatabaseQueue(path: source, configuration: configuration)
        let to = try DatabaseQueue(path: destination)
        try from.backup(to: to)
        try to.write { db in
            try db.execute(sql: "UPDATE outbox SET next_attempt_at = ?", arguments: [Date()])
        }
        try to.close()
        try from.close()
    }

    /// Opens (creating if needed) the database and brings its schema up to date.
    /// - Parameter path: The SQLite file; its folder is created when missing.
    /// - Throws: When the file cannot be opened or a migration fails.
    public init(path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        self.path = path
        self.configuration = configuration
        // Functions started together on one file would otherwise race: GRDB reads which
        // migrations are applied outside the transaction that applies them.
        self.pool = try Self.withProcessLock(path: path + ".migration-lock") {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            return pool
        }
    }

    /// Runs `body` holding an exclusive advisory lock (`flock`) on `path`, so that processes
    /// opening the same database one after another see each other's migrations.
    private static func withProcessLock<T>(path: String, _ body: () throws -> T) throws -> T {
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw DatabaseError(message: "cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw DatabaseError(message: "cannot lock \(path): \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// The schema, one registered migration per version. Never edit a shipped migration: add one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: teams, users, api keys") { db in
            try db.execute(
                sql: """
                    CREATE TABLE teams (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        description TEXT,
                        created_at DATETIME NOT NULL,
                        updated_at DATETIME NOT NULL
                    );
                    CREATE INDEX teams_by_creation ON teams(created_at, id);
                    CREATE TABLE users (
                        id TEXT PRIMARY KEY NOT NULL,
                        email TEXT NOT NULL UNIQUE,
                        name TEXT NOT NULL,
                        team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE RESTRICT,
                        is_admin BOOLEAN NOT NULL,
                        is_active BOOLEAN NOT NULL,
                        created_at DATETIME NOT NULL,
                        updated_at DATETIME NOT NULL
                    );
                    CREATE INDEX users_by_team ON users(team_id, created_at, id);
                    CREATE INDEX users_by_creation ON users(created_at, id);
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        description TEXT,
                        prefix TEXT NOT NULL,
                        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE RESTRICT,
                        secret_hash BLOB NOT NULL,
                        created_at DATETIME NOT NULL,
                        expires_at DATETIME NOT NULL,
                        last_used_at DATETIME,
                        is_active BOOLEAN NOT NULL
                    );
                    CREATE INDEX api_keys_by_user ON api_keys(user_id, created_at, id);
                    """)
        }
        migrator.registerMigration("v2: images, outbox, dead letters, vectors") { db in
            try db.execute(sql: imagesSchema)
        }
        migrator.registerMigration("v3: unique image content per team, consumed bootstrap keys") { db in
            try db.execute(
                sql: """
                    ALTER TABLE images ADD COLUMN is_duplicate BOOLEAN NOT NULL DEFAULT 0;
                    -- Copies kept with allow_duplicate before this version: all but the first.
                    UPDATE images SET is_duplicate = 1 WHERE number NOT IN (
                        SELECT MIN(number) FROM images GROUP BY team_id, sha256);
                    CREATE UNIQUE INDEX images_unique_content ON images(team_id, sha256) WHERE is_duplicate = 0;
                    CREATE TABLE bootstrap_keys (
                        key_id TEXT PRIMARY KEY NOT NULL,
                        secret_hash BLOB NOT NULL,
                        registered_at DATETIME NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v4: dead letters by team") { db in
            try db.execute(
                sql: """
                    ALTER TABLE dead_letters ADD COLUMN team_id TEXT;
                    UPDATE dead_letters SET team_id = \(teamOfPayload);
                    CREATE INDEX dead_letters_by_team ON dead_letters(team_id, dead_at, message_id);
                    """)
        }
        migrator.registerMigration("v5: perceptual hashes") { db in
            try db.execute(sql: "ALTER TABLE images ADD COLUMN phash TEXT")
        }
        migrator.registerMigration("v6: named collections") { db in
            try db.execute(
                sql: """
                    CREATE TABLE collections (
                        id TEXT PRIMARY KEY NOT NULL,
                        team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
                        name TEXT NOT NULL,
                        name_key TEXT NOT NULL,
                        description TEXT,
                        cover_image_id TEXT,
                        created_at DATETIME NOT NULL,
                        updated_at DATETIME NOT NULL
                    );
                    CREATE UNIQUE INDEX collections_unique_name ON collections(team_id, name_key);
                    """)
        }
        return migrator
    }

    /// SQL for the team an image-processing payload in the `data` column names (NULL for any
    /// other payload), lower-cased as every stored id.
    static let teamOfPayload = """
        CASE WHEN topic = '\(ImageProcessingRequest.topic)' AND json_valid(CAST(data AS TEXT))
        THEN lower(json_extract(CAST(data AS TEXT), '$.team_id')) END
        """

    // MARK: Readiness

    /// Runs a trivial query.
    public func checkReady() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: Units of work

    /// Runs `body` in one transaction on a connection of its own: `BEGIN IMMEDIATE` takes the
    /// file's write lock (waiting up to 10 s for another process's writer; this process's units
    /// of work run one at a time), `COMMIT` when `body` returns, `ROLLBACK` when it throws or the
    /// task is cancelled.
    public func withTransaction<T: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> T
    )
        async throws -> T
    {
        try await transactions.run { try await transaction(body) }
    }

    private func transaction<T: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> T
    )
        async throws -> T
    {
        var settings = configuration
        // The transaction spans several accesses to the connection, opened and closed here.
        settings.allowsUnsafeTransactions = true
        let connection = try DatabaseQueue(path: path, configuration: settings)
        try await connection.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        do {
            let result = try await body(SQLiteMetadataTransaction(connection: connection))
            try await connection.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
            return result
        } catch {
            Self.rollBack(connection)
            throw error
        }
    }

    /// Rolls back what is still open, synchronously, so that a cancelled task rolls back too.
    private static func rollBack(_ connection: DatabaseQueue) {
        try? connection.writeWithoutTransaction { db in
            if db.isInsideTransaction { try db.execute(sql: "ROLLBACK") }
        }
    }

    // MARK: Teams

    /// Stores a new team.
    public func insertTeam(_ team: Team) async throws {
        try await pool.write { db in try MetadataRows.insert(team, db) }
    }

    /// Reads a team by id.
    public func team(id: TeamID) async throws -> Team? {
        try await pool.read { db in try MetadataRows.team(id: id, db) }
    }

    /// Lists teams, oldest first, with the total.
    public func teams(_ page: PageRequest) async throws -> Page<Team> {
        try await pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM teams") ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM teams ORDER BY created_at, id LIMIT ? OFFSET ?",
                arguments: [page.limit, page.skip])
            return Page(items: try rows.map(MetadataRows.team), total: total)
        }
    }

    /// Replaces a team's fields; `false` when there is no such team.
    public func updateTeam(_ team: Team) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE teams SET name = ?, description = ?, updated_at = ? WHERE id = ?",
                arguments: [team.name, team.description, team.updatedAt, team.id.lowercasedString])
            return db.changesCount > 0
        }
    }

    // MARK: Users

    /// Reads a user.
    public func user(id: UserID) async throws -> User? {
        try await pool.read { db in try MetadataRows.user(id: id, db) }
    }

    /// Reads a user.
    public func user(email: String) async throws -> User? {
        try await pool.read { db in try MetadataRows.user(email: email, db) }
    }

    /// Lists users, optionally of one team, oldest first, with the total.
    public func users(teamID: TeamID?, _ page: PageRequest) async throws -> Page<User> {
        try await pool.read { db in
            let filter = teamID == nil ? "" : "WHERE team_id = ?"
            var arguments: StatementArguments = teamID.map { [$0.lowercasedString] } ?? []
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users \(filter)", arguments: arguments) ?? 0
            arguments += [page.limit, page.skip]
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM users \(filter) ORDER BY created_at, id LIMIT ? OFFSET ?",
                arguments: arguments)
            return Page(items: try rows.map(MetadataRows.user), total: total)
        }
    }

    // MARK: API keys

    /// Reads a key.
    public func apiKey(id: APIKeyID) async throws -> APIKey? {
        try await pool.read { db in try MetadataRows.apiKey(id: id, db) }
    }

    /// Lists a user's keys, oldest first, with the total.
    public func apiKeys(userID: UserID, _ page: PageRequest) async throws -> Page<APIKey> {
        try await pool.read { db in
            let owner = userID.lowercasedString
            let total =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM api_keys WHERE user_id = ?", arguments: [owner]) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?",
                arguments: [owner, page.limit, page.skip])
            return Page(items: try rows.map(MetadataRows.apiKey), total: total)
        }
    }

    /// Marks a key revoked.
    public func revokeAPIKey(id: APIKeyID) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "UPDATE api_keys SET is_active = 0 WHERE id = ?", arguments: [id.lowercasedString])
            return db.changesCount > 0
        }
    }

    /// Records when a key last authenticated a request.
    public func recordAPIKeyUse(id: APIKeyID, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ?", arguments: [date, id.lowercasedString])
        }
    }

    // MARK: Administrators

    /// The secret hash of a bootstrap key registered once, whatever became of it since.
    public func bootstrapKeyHash(id: APIKeyID) async throws -> Data? {
        try await pool.read { db in
            try Data.fetchOne(
                db, sql: "SELECT secret_hash FROM bootstrap_keys WHERE key_id = ?", arguments: [id.lowercasedString])
        }
    }

    /// Records that a bootstrap key was registered (the first record stays).
    public func recordBootstrapKey(id: APIKeyID, secretHash: Data, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO bootstrap_keys (key_id, secret_hash, registered_at) VALUES (?, ?, ?)",
                arguments: [id.lowercasedString, secretHash, date])
        }
    }
}
