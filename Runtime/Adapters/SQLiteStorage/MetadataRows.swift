import Foundation
import GRDB
import ImageAPICore

/// Rows of the teams, users and api_keys tables, read and written on a connection: what the
/// store's reads and its transactions share.
enum MetadataRows {
    static func team(id: TeamID, _ db: Database) throws -> Team? {
        try Row.fetchOne(db, sql: "SELECT * FROM teams WHERE id = ?", arguments: [id.lowercasedString]).map(team)
    }

    static func user(id: UserID, _ db: Database) throws -> User? {
        try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id.lowercasedString]).map(user)
    }

    static func user(email: String, _ db: Database) throws -> User? {
        try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email.lowercased()]).map(user)
    }

    static func apiKey(id: APIKeyID, _ db: Database) throws -> APIKey? {
        try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id.lowercasedString])
            .map(apiKey)
    }

    static func insert(_ team: Team, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO teams (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            arguments: [team.id.lowercasedString, team.name, team.description, team.createdAt, team.updatedAt])
    }

    /// Inserts or replaces a user; the unique index on e-mail answers ``MetadataStoreError/emailTaken``.
    static func write(_ user: User, replacing: Bool, _ db: Database) throws {
        let fields: [any DatabaseValueConvertible] = [
            user.email, user.name, user.teamID.lowercasedString, user.isAdmin, user.isActive, user.updatedAt,
            user.id.lowercasedString,
        ]
        do {
            if replacing {
                try db.execute(
                    sql: """
                        UPDATE users SET email = ?, name = ?, team_id = ?, is_admin = ?, is_active = ?, updated_at = ?
                        WHERE id = ?
                        """,
                    arguments: StatementArguments(fields))
            } else {
                try db.execute(
                    sql: """
                        INSERT INTO users (email, name, team_id, is_admin, is_active, updated_at, id, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: StatementArguments(fields + [user.createdAt]))
            }
        } catch let error as DatabaseError
            where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && error.message?.contains("email") == true
        {
            throw MetadataStoreError.emailTaken
        }
    }

    static func insert(_ key: APIKey, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO api_keys (id, name, description, prefix, user_id, team_id, secret_hash, created_at,
                                      expires_at, last_used_at, is_active)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                key.id.lowercasedString, key.name, key.description, key.prefix, key.userID.lowercasedString,
                key.teamID.lowercasedString, key.secretHash, key.createdAt, key.expiresAt, key.lastUsedAt,
                key.isActive,
            ])
    }

    /// An identifier column of a row.
    static func id<ID: TypedIdentifier>(_ row: Row, _ column: String) throws -> ID {
        let text: String = row[column]
        guard let id = ID(text) else {
            throw DatabaseError(message: "column \(column) holds '\(text)', which is not a UUID")
        }
        return id
    }

    static func team(_ row: Row) throws -> Team {
        Team(
            id: try id(row, "id"), name: row["name"], description: row["description"],
            createdAt: row["created_at"], updatedAt: row["updated_at"])
    }

    static func user(_ row: Row) throws -> User {
        User(
            id: try id(row, "id"), email: row["email"], name: row["name"], teamID: try id(row, "team_id"),
            isAdmin: row["is_admin"], isActive: row["is_active"], createdAt: row["created_at"],
            updatedAt: row["updated_at"])
    }

    static func apiKey(_ row: Row) throws -> APIKey {
        APIKey(
            id: try id(row, "id"), name: row["name"], description: row["description"], prefix: row["prefix"],
            userID: try id(row, "user_id"), teamID: try id(row, "team_id"), secretHash: row["secret_hash"],
            createdAt: row["created_at"], expiresAt: row["expires_at"], lastUsedAt: row["last_used_at"],
            isActive: row["is_active"])
    }
}
