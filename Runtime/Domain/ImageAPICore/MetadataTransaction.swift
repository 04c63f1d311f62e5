import Foundation

/// The persistence primitives of teams, users and keys, as one unit of work sees them.
///
/// A transaction enforces no business rule: it reads and writes what it is told. The rules
/// (a team is deleted only when nothing belongs to it, e-mails are unique, keys follow their
/// user) are the services' (``TeamService``, ``UserService``, ``APIKeyService``), which check
/// them with these reads and then write, inside one
/// ``MetadataStore/withTransaction(_:)``. Every backend guarantees that:
/// - reads see the transaction's own writes, and nothing written by others after it began that
///   would change what it read (the transactions of one store are serialisable);
/// - its writes become visible all together when the body returns, or not at all when it throws.
public protocol MetadataTransaction: Sendable {
    /// Reads a team.
    /// - Parameter id: The team's id.
    /// - Returns: The team, or `nil`.
    func team(id: TeamID) async throws -> Team?
    /// Stores a new team.
    /// - Parameter team: The team.
    func insertTeam(_ team: Team) async throws
    /// Deletes a team (whatever still refers to it).
    /// - Parameter id: The team's id.
    func deleteTeam(id: TeamID) async throws
    /// How many users the team has.
    /// - Parameter teamID: The team.
    /// - Returns: The count.
    func userCount(teamID: TeamID) async throws -> Int
    /// How many images the team has.
    /// - Parameter teamID: The team.
    /// - Returns: The count.
    func imageCount(teamID: TeamID) async throws -> Int

    /// Reads a user.
    /// - Parameter id: The user's id.
    /// - Returns: The user, or `nil`.
    func user(id: UserID) async throws -> User?
    /// Reads a user by e-mail.
    /// - Parameter email: The lower-case address.
    /// - Returns: The user, or `nil`.
    func user(email: String) async throws -> User?
    /// Stores a new user.
    /// - Parameter user: The user, with a lower-case e-mail.
    /// - Throws: ``MetadataStoreError/emailTaken`` where the backend keeps e-mails unique itself
    ///   as well (a second line of defence; the services check first).
    func insertUser(_ user: User) async throws
    /// Replaces an existing user's fields.
    /// - Parameter user: The user with its new fields.
    /// - Throws: ``MetadataStoreError/emailTaken`` as for ``insertUser(_:)``.
    func replaceUser(_ user: User) async throws
    /// Deletes a user (not their keys).
    /// - Parameter id: The user's id.
    func deleteUser(id: UserID) async throws

    /// Reads a key.
    /// - Parameter id: The key's id.
    /// - Returns: The key, or `nil`.
    func apiKey(id: APIKeyID) async throws -> APIKey?
    /// Stores a new key.
    /// - Parameter key: The key record.
    func insertAPIKey(_ key: APIKey) async throws
    /// Moves every key of a user to a team.
    /// - Parameters:
    ///   - userID: The keys' owner.
    ///   - teamID: Their new team.
    func moveAPIKeys(userID: UserID, toTeam teamID: TeamID) async throws
    /// Deletes every key of a user.
    /// - Parameter userID: The keys' owner.
    func deleteAPIKeys(userID: UserID) async throws
}
