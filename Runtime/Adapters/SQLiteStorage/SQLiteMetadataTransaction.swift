import Foundation
import GRDB
import ImageAPICore

/// One unit of work of ``SQLiteMetadataStore``: every statement on the transaction's own
/// connection, inside the `BEGIN IMMEDIATE` the store issued.
struct SQLiteMetadataTransaction: MetadataTransaction {
    let connection: DatabaseQueue

    private func run<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await connection.writeWithoutTransaction(work)
    }

    func team(id: TeamID) async throws -> Team? {
        try await run { db in try MetadataRows.team(id: id, db) }
    }

    func insertTeam(_ team: Team) async throws {
        try await run { db in try MetadataRows.insert(team, db) }
    }

    func deleteTeam(id: TeamID) async throws {
        try await run { db in try db.execute(sql: "DELETE FROM teams WHERE id = ?", arguments: [id.lowercasedString]) }
    }

    func userCount(teamID: TeamID) async throws -> Int {
        try await run { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM users WHERE team_id = ?", arguments: [teamID.lowercasedString])
                ?? 0
        }
    }

    func imageCount(teamID: TeamID) async throws -> Int {
        try await run { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM images WHERE team_id = ?", arguments: [teamID.lowercasedString]) ?? 0
        }
    }

    func user(id: UserID) async throws -> User? {
        try await run { db in try MetadataRows.user(id: id, db) }
    }

    func user(email: String) async throws -> User? {
        try await run { db in try MetadataRows.user(email: email, db) }
    }

    func insertUser(_ user: User) async throws {
        try await run { db in try MetadataRows.write(user, replacing: false, db) }
    }

    func replaceUser(_ user: User) async throws {
        try await run { db in try MetadataRows.write(user, replacing: true, db) }
    }

    func deleteUser(id: UserID) async throws {
        try await run { db in try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [id.lowercasedString]) }
    }

    func apiKey(id: APIKeyID) async throws -> APIKey? {
        try await run { db in try MetadataRows.apiKey(id: id, db) }
    }

    func insertAPIKey(_ key: APIKey) async throws {
        try await run { db in try MetadataRows.insert(key, db) }
    }

    func moveAPIKeys(userID: UserID, toTeam teamID: TeamID) async throws {
        try await run { db in
            try db.execute(
                sql: "UPDATE api_keys SET team_id = ? WHERE user_id = ?",
                arguments: [teamID.lowercasedString, userID.lowercasedString])
        }
    }

    func deleteAPIKeys(userID: UserID) async throws {
        try await run { db in
            try db.execute(sql: "DELETE FROM api_keys WHERE user_id = ?", arguments: [userID.lowercasedString])
        }
    }
}
