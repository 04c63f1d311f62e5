import Foundation
import ImageAPICore
import Locking

/// The teams, users and keys of ``MemoryMetadataStore``, with the checks a database's keys and
/// unique indexes would make.
struct MemoryMetadataState: Sendable {
    var teams: [TeamID: Team] = [:]
    var users: [UserID: User] = [:]
    var keys: [APIKeyID: APIKey] = [:]
    var bootstrapKeys: [APIKeyID: Data] = [:]

    func user(email: String) -> User? {
        let wanted = email.lowercased()
        return users.values.first { $0.email == wanted }
    }

    mutating func insert(_ team: Team) throws {
        guard teams[team.id] == nil else { throw MemoryStoreError.duplicateID("team", team.id.lowercasedString) }
        teams[team.id] = team
    }

    /// Writes a user, refusing an e-mail another user has (a unique index, in a database).
    mutating func write(_ user: User, replacing: Bool) throws {
        guard (users[user.id] != nil) == replacing else {
            throw MemoryStoreError.duplicateID("user", user.id.lowercasedString)
        }
        if let holder = self.user(email: user.email), holder.id != user.id { throw MetadataStoreError.emailTaken }
        users[user.id] = user
    }

    mutating func insert(_ key: APIKey) throws {
        guard keys[key.id] == nil else { throw MetadataStoreError.keyIDTaken }
        keys[key.id] = key
    }
}

/// One unit of work of ``MemoryMetadataStore``: a private copy of the teams, users and keys,
/// which the store keeps when the work succeeds.
final class MemoryMetadataTransaction: MetadataTransaction {
    private let copy: Locked<MemoryMetadataState>
    private let countImages: @Sendable (TeamID) async -> Int

    init(state: MemoryMetadataState, countImages: @escaping @Sendable (TeamID) async -> Int) {
        self.copy = Locked(state)
        self.countImages = countImages
    }

    /// The copy as the work left it.
    var state: MemoryMetadataState { copy.withLock { $0 } }

    func team(id: TeamID) async throws -> Team? { copy.withLock { $0.teams[id] } }

    func insertTeam(_ team: Team) async throws { try copy.withLock { try $0.insert(team) } }

    func deleteTeam(id: TeamID) async throws { copy.withLock { _ = $0.teams.removeValue(forKey: id) } }

    func userCount(teamID: TeamID) async throws -> Int {
        copy.withLock { $0.users.values.count { $0.teamID == teamID } }
    }

    func imageCount(teamID: TeamID) async throws -> Int { await countImages(teamID) }

    func user(id: UserID) async throws -> User? { copy.withLock { $0.users[id] } }

    func user(email: String) async throws -> User? { copy.withLock { $0.user(email: email) } }

    func insertUser(_ user: User) async throws { try copy.withLock { try $0.write(user, replacing: false) } }

    func replaceUser(_ user: User) async throws { try copy.withLock { try $0.write(user, replacing: true) } }

    func deleteUser(id: UserID) async throws { copy.withLock { _ = $0.users.removeValue(forKey: id) } }

    func apiKey(id: APIKeyID) async throws -> APIKey? { copy.withLock { $0.keys[id] } }

    func insertAPIKey(_ key: APIKey) async throws { try copy.withLock { try $0.insert(key) } }

    func moveAPIKeys(userID: UserID, toTeam teamID: TeamID) async throws {
        copy.withLock { state in
            for (id, key) in state.keys where key.userID == userID { state.keys[id]?.teamID = teamID }
        }
    }

    func deleteAPIKeys(userID: UserID) async throws {
        copy.withLock { state in state.keys = state.keys.filter { $0.value.userID != userID } }
    }
}
