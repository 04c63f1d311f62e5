import Foundation
import GRDB
import ImageAPICore

/// The embedded metadata store: one SQLite file in WAL mode, opened through GRDB.
///
/// Versioned migrations run when the store opens. Every write that must happen together (a
/// user and their keys, an administrator's team, user and key) runs in one transaction.
public final class SQLiteMetadataStore: MetadataStore {
    /// The connection pool; the image, vector and queue stores in this module share it.
    let pool: DatabasePool

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

    // MARK: Teams

    /// Stores a new team.
    public func insertTeam(_ team: Team) async throws {
        try await pool.write { db in try Self.insert(team, db) }
    }

    /// Reads a team by id.
    public func team(id: UUID) async throws -> Team? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM teams WHERE id = ?", arguments: [id.lowercasedString])
                .map(Self.team)
        }
    }

    /// Lists teams, oldest first, with the total.
    public func teams(_ page: PageRequest) async throws -> Page<Team> {
        try await pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM teams") ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM teams ORDER BY created_at, id LIMIT ? OFFSET ?",
                arguments: [page.limit, page.skip])
            return Page(items: try rows.map(Self.team), total: total)
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

    /// Deletes a team that has no users, in one transaction.
    public func deleteTeam(id: UUID) async throws -> TeamDeletion {
        try await pool.write { db in
            let key = id.lowercasedString
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM teams WHERE id = ?", arguments: [key]) != nil else {
                return .notFound
            }
            let members = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE team_id = ?", arguments: [key])
            guard members == 0 else { return .inUse }
            let images = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM images WHERE team_id = ?", arguments: [key])
            guard images == 0 else { return .inUse }
            try db.execute(sql: "DELETE FROM teams WHERE id = ?", arguments: [key])
            return .deleted
        }
    }

    // MARK: Users

    /// Stores a new user after checking the team exists and the e-mail is free.
    public func insertUser(_ user: User) async throws {
        try await pool.write { db in try Self.insert(user, db) }
    }

    /// Reads a user.
    public func user(id: UUID) async throws -> User? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id.lowercasedString])
                .map(Self.user)
        }
    }

    /// Reads a user.
    public func user(email: String) async throws -> User? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email.lowercased()])
                .map(Self.user)
        }
    }

    /// Lists users, optionally of one team, oldest first, with the total.
    public func users(teamID: UUID?, _ page: PageRequest) async throws -> Page<User> {
        try await pool.read { db in
            let filter = teamID == nil ? "" : "WHERE team_id = ?"
            var arguments: StatementArguments = teamID.map { [$0.lowercasedString] } ?? []
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users \(filter)", arguments: arguments) ?? 0
            arguments += [page.limit, page.skip]
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM users \(filter) ORDER BY created_at, id LIMIT ? OFFSET ?",
                arguments: arguments)
            return Page(items: try rows.map(Self.user), total: total)
        }
    }

    /// Replaces a user's fields; their keys follow them to a new team in the same transaction.
    public func updateUser(_ user: User) async throws -> Bool {
        try await pool.write { db in
            let key = user.id.lowercasedString
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [key]) != nil else {
                return false
            }
            try Self.checkTeamExists(user.teamID, db)
            try Self.checkEmailFree(user.email, except: user.id, db)
            try db.execute(
                sql: """
                    UPDATE users SET email = ?, name = ?, team_id = ?, is_admin = ?, is_active = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [
                    user.email, user.name, user.teamID.lowercasedString, user.isAdmin, user.isActive,
                    user.updatedAt, key,
                ])
            // A user's keys follow the user to a new team.
            try db.execute(
                sql: "UPDATE api_keys SET team_id = ? WHERE user_id = ?",
                arguments: [user.teamID.lowercasedString, key])
            return true
        }
    }

    /// Deletes a user; the foreign key's cascade deletes their keys in the same transaction.
    public func deleteUser(id: UUID) async throws -> Bool {
        try await pool.write { db in
            // api_keys.user_id is ON DELETE CASCADE: the user's keys go in the same statement.
            try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [id.lowercasedString])
            return db.changesCount > 0
        }
    }

    // MARK: API keys

    /// Stores a new key for an existing user.
    public func insertAPIKey(_ key: APIKey) async throws {
        try await pool.write { db in try Self.insert(key, db) }
    }

    /// Reads a key.
    public func apiKey(id: UUID) async throws -> APIKey? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id.lowercasedString])
                .map(Self.apiKey)
        }
    }

    /// Lists a user's keys, oldest first, with the total.
    public func apiKeys(userID: UUID, _ page: PageRequest) async throws -> Page<APIKey> {
        try await pool.read { db in
            let owner = userID.lowercasedString
            let total =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM api_keys WHERE user_id = ?", arguments: [owner]) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?",
                arguments: [owner, page.limit, page.skip])
            return Page(items: try rows.map(Self.apiKey), total: total)
        }
    }

    /// Marks a key revoked.
    public func revokeAPIKey(id: UUID) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "UPDATE api_keys SET is_active = 0 WHERE id = ?", arguments: [id.lowercasedString])
            return db.changesCount > 0
        }
    }

    /// Records when a key last authenticated a request.
    public func recordAPIKeyUse(id: UUID, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ?", arguments: [date, id.lowercasedString])
        }
    }

    // MARK: Administrators

    /// The secret hash of a bootstrap key registered once, whatever became of it since.
    public func bootstrapKeyHash(id: UUID) async throws -> Data? {
        try await pool.read { db in
            try Data.fetchOne(
                db, sql: "SELECT secret_hash FROM bootstrap_keys WHERE key_id = ?", arguments: [id.lowercasedString])
        }
    }

    /// Records that a bootstrap key was registered (the first record stays).
    public func recordBootstrapKey(id: UUID, secretHash: Data, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO bootstrap_keys (key_id, secret_hash, registered_at) VALUES (?, ?, ?)",
                arguments: [id.lowercasedString, secretHash, date])
        }
    }

    /// Writes a team, its admin user and their key in one transaction.
    public func insertAdministrator(team: Team, user: User, key: APIKey) async throws {
        try await pool.write { db in
            try Self.insert(team, db)
            try Self.insert(user, db)
            try Self.insert(key, db)
        }
    }

    // MARK: Rows

    private static func insert(_ team: Team, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO teams (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            arguments: [team.id.lowercasedString, team.name, team.description, team.createdAt, team.updatedAt])
    }

    private static func insert(_ user: User, _ db: Database) throws {
        try checkTeamExists(user.teamID, db)
        try checkEmailFree(user.email, except: nil, db)
        try db.execute(
            sql: """
                INSERT INTO users (id, email, name, team_id, is_admin, is_active, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                user.id.lowercasedString, user.email, user.name, user.teamID.lowercasedString, user.isAdmin,
                user.isActive, user.createdAt, user.updatedAt,
            ])
    }

    private static func insert(_ key: APIKey, _ db: Database) throws {
        let owner = key.userID.lowercasedString
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [owner]) != nil else {
            throw MetadataStoreError.userNotFound
        }
        let id = key.id.lowercasedString
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM api_keys WHERE id = ?", arguments: [id]) == nil else {
            throw MetadataStoreError.keyIDTaken
        }
        try db.execute(
            sql: """
                INSERT INTO api_keys (id, name, description, prefix, user_id, team_id, secret_hash, created_at,
                                      expires_at, last_used_at, is_active)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                id, key.name, key.description, key.prefix, owner, key.teamID.lowercasedString, key.secretHash,
                key.createdAt, key.expiresAt, key.lastUsedAt, key.isActive,
            ])
    }

    private static func checkTeamExists(_ teamID: UUID, _ db: Database) throws {
        let exists = try Bool.fetchOne(
            db, sql: "SELECT 1 FROM teams WHERE id = ?", arguments: [teamID.lowercasedString])
        if exists == nil { throw MetadataStoreError.teamNotFound }
    }

    private static func checkEmailFree(_ email: String, except userID: UUID?, _ db: Database) throws {
        let holder = try String.fetchOne(db, sql: "SELECT id FROM users WHERE email = ?", arguments: [email])
        if let holder, holder != userID?.lowercasedString { throw MetadataStoreError.emailTaken }
    }

    static func uuid(_ row: Row, _ column: String) throws -> UUID {
        let text: String = row[column]
        guard let id = UUID(uuidString: text) else {
            throw DatabaseError(message: "column \(column) holds '\(text)', which is not a UUID")
        }
        return id
    }

    private static func team(_ row: Row) throws -> Team {
        Team(
            id: try uuid(row, "id"), name: row["name"], description: row["description"],
            createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    private static func user(_ row: Row) throws -> User {
        User(
            id: try uuid(row, "id"), email: row["email"], name: row["name"], teamID: try uuid(row, "team_id"),
            isAdmin: row["is_admin"], isActive: row["is_active"], createdAt: row["created_at"],
            updatedAt: row["updated_at"])
    }

    private static func apiKey(_ row: Row) throws -> APIKey {
        APIKey(
            id: try uuid(row, "id"), name: row["name"], description: row["description"], prefix: row["prefix"],
            userID: try uuid(row, "user_id"), teamID: try uuid(row, "team_id"), secretHash: row["secret_hash"],
            createdAt: row["created_at"], expiresAt: row["expires_at"], lastUsedAt: row["last_used_at"],
            isActive: row["is_active"])
    }
}
