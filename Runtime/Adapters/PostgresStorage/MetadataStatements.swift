import Foundation
import ImageAPICore
import PostgresNIO

/// The statements and row readers of the teams, users and api_keys tables: what the store's
/// reads and its transactions share.
enum MetadataStatements {
    static func insert(_ team: Team) -> PostgresQuery {
        """
        INSERT INTO teams (id, name, description, created_at, updated_at)
        VALUES (\(team.id.uuid), \(team.name), \(team.description), \(team.createdAt), \(team.updatedAt))
        """
    }

    static func insert(_ user: User) -> PostgresQuery {
        """
        INSERT INTO users (id, email, name, team_id, is_admin, is_active, created_at, updated_at)
        VALUES (\(user.id.uuid), \(user.email), \(user.name), \(user.teamID.uuid), \(user.isAdmin), \(user.isActive),
                \(user.createdAt), \(user.updatedAt))
        """
    }

    static func replace(_ user: User) -> PostgresQuery {
        """
        UPDATE users SET email = \(user.email), name = \(user.name), team_id = \(user.teamID.uuid),
            is_admin = \(user.isAdmin), is_active = \(user.isActive), updated_at = \(user.updatedAt)
        WHERE id = \(user.id.uuid)
        """
    }

    static func insert(_ key: APIKey) throws -> PostgresQuery {
        try """
        INSERT INTO api_keys (id, name, description, prefix, user_id, team_id, secret_hash, created_at, expires_at,
                              last_used_at, is_active)
        VALUES (\(key.id.uuid), \(key.name), \(key.description), \(key.prefix), \(key.userID.uuid),
                \(key.teamID.uuid), \(key.secretHash), \(key.createdAt), \(key.expiresAt), \(key.lastUsedAt),
                \(key.isActive))
        """
    }

    /// Runs a user write, answering ``MetadataStoreError/emailTaken`` for the unique index on the
    /// lower-cased e-mail, and ``MetadataStoreError/teamNotFound`` for a missing team.
    static func writeUser(_ statement: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws {
        do {
            try await connection.query(statement, logger: logger)
        } catch let error as PSQLError {
            switch PostgresMetadataStore.violation(error) {
            case ("23505", "users_email_unique")?: throw MetadataStoreError.emailTaken
            case ("23503", "users_team_id_fkey")?: throw MetadataStoreError.teamNotFound
            default: throw error
            }
        }
    }

    static func team(_ row: PostgresRow) throws -> Team {
        let row = row.makeRandomAccess()
        return Team(
            id: TeamID(uuid: try row["id"].decode(UUID.self)), name: try row["name"].decode(String.self),
            description: try row["description"].decode(String?.self),
            createdAt: try row["created_at"].decode(Date.self), updatedAt: try row["updated_at"].decode(Date.self))
    }

    static func user(_ row: PostgresRow) throws -> User {
        let row = row.makeRandomAccess()
        return User(
            id: UserID(uuid: try row["id"].decode(UUID.self)), email: try row["email"].decode(String.self),
            name: try row["name"].decode(String.self), teamID: TeamID(uuid: try row["team_id"].decode(UUID.self)),
            isAdmin: try row["is_admin"].decode(Bool.self), isActive: try row["is_active"].decode(Bool.self),
            createdAt: try row["created_at"].decode(Date.self), updatedAt: try row["updated_at"].decode(Date.self))
    }

    static func apiKey(_ row: PostgresRow) throws -> APIKey {
        let row = row.makeRandomAccess()
        return APIKey(
            id: APIKeyID(uuid: try row["id"].decode(UUID.self)), name: try row["name"].decode(String.self),
            description: try row["description"].decode(String?.self), prefix: try row["prefix"].decode(String.self),
            userID: UserID(uuid: try row["user_id"].decode(UUID.self)),
            teamID: TeamID(uuid: try row["team_id"].decode(UUID.self)),
            secretHash: try row["secret_hash"].decode(Data.self), createdAt: try row["created_at"].decode(Date.self),
            expiresAt: try row["expires_at"].decode(Date.self), lastUsedAt: try row["last_used_at"].decode(Date?.self),
            isActive: try row["is_active"].decode(Bool.self))
    }
}

/// One unit of work of ``PostgresMetadataStore``: every statement on the transaction's own
/// connection, inside the `BEGIN ISOLATION LEVEL SERIALIZABLE` the store issued.
struct PostgresMetadataTransaction: MetadataTransaction {
    let connection: PostgresConnection
    let logger: Logger

    private func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await connection.query(query, logger: logger).collect()
    }

    private func count(_ query: PostgresQuery) async throws -> Int {
        try await rows(query).first?.decode(Int.self) ?? 0
    }

    func team(id: TeamID) async throws -> Team? {
        try await rows("SELECT * FROM teams WHERE id = \(id.uuid)").first.map(MetadataStatements.team)
    }

    func insertTeam(_ team: Team) async throws {
        _ = try await rows(MetadataStatements.insert(team))
    }

    func deleteTeam(id: TeamID) async throws {
        _ = try await rows("DELETE FROM teams WHERE id = \(id.uuid)")
    }

    func userCount(teamID: TeamID) async throws -> Int {
        try await count("SELECT count(*) FROM users WHERE team_id = \(teamID.uuid)")
    }

    func imageCount(teamID: TeamID) async throws -> Int {
        try await count("SELECT count(*) FROM images WHERE team_id = \(teamID.uuid)")
    }

    func user(id: UserID) async throws -> User? {
        try await rows("SELECT * FROM users WHERE id = \(id.uuid)").first.map(MetadataStatements.user)
    }

    func user(email: String) async throws -> User? {
        try await rows("SELECT * FROM users WHERE lower(email) = \(email.lowercased())").first.map(
            MetadataStatements.user)
    }

    func insertUser(_ user: User) async throws {
        try await MetadataStatements.writeUser(MetadataStatements.insert(user), on: connection, logger: logger)
    }

    func replaceUser(_ user: User) async throws {
        try await MetadataStatements.writeUser(MetadataStatements.replace(user), on: connection, logger: logger)
    }

    func deleteUser(id: UserID) async throws {
        _ = try await rows("DELETE FROM users WHERE id = \(id.uuid)")
    }

    func apiKey(id: APIKeyID) async throws -> APIKey? {
        try await rows("SELECT * FROM api_keys WHERE id = \(id.uuid)").first.map(MetadataStatements.apiKey)
    }

    func insertAPIKey(_ key: APIKey) async throws {
        do {
            _ = try await rows(try MetadataStatements.insert(key))
        } catch let error as PSQLError {
            switch PostgresMetadataStore.violation(error) {
            case ("23505", "api_keys_pkey")?: throw MetadataStoreError.keyIDTaken
            case ("23503", "api_keys_user_id_fkey")?: throw MetadataStoreError.userNotFound
            case ("23503", "api_keys_team_id_fkey")?: throw MetadataStoreError.teamNotFound
            default: throw error
            }
        }
    }

    func moveAPIKeys(userID: UserID, toTeam teamID: TeamID) async throws {
        _ = try await rows("UPDATE api_keys SET team_id = \(teamID.uuid) WHERE user_id = \(userID.uuid)")
    }

    func deleteAPIKeys(userID: UserID) async throws {
        _ = try await rows("DELETE FROM api_keys WHERE user_id = \(userID.uuid)")
    }
}
