import Foundation

/// The rules on users: each belongs to an existing team, no two share an e-mail (compared
/// without case: e-mails are stored lower-cased), a user's keys follow them to another team and
/// go with them when they are deleted. Each change is checked and written in one transaction.
public struct UserService: Sendable {
    private let store: any MetadataStore

    /// Creates the service.
    /// - Parameter store: Where users, teams and keys are kept.
    public init(store: any MetadataStore) {
        self.store = store
    }

    /// Stores a new user.
    /// - Parameter user: The user, with a lower-case e-mail.
    /// - Throws: ``MetadataStoreError/teamNotFound`` or ``MetadataStoreError/emailTaken``.
    public func create(_ user: User) async throws {
        try await store.withTransaction { transaction in try await Self.insert(user, in: transaction) }
    }

    /// Replaces a user's fields; when their team changes, their keys move with them.
    /// - Parameter user: The user with its new fields.
    /// - Returns: `false` when there is no such user.
    /// - Throws: ``MetadataStoreError/teamNotFound`` or ``MetadataStoreError/emailTaken``.
    public func update(_ user: User) async throws -> Bool {
        try await store.withTransaction { transaction in
            guard let current = try await transaction.user(id: user.id) else { return false }
            guard try await transaction.team(id: user.teamID) != nil else { throw MetadataStoreError.teamNotFound }
            if let holder = try await transaction.user(email: user.email), holder.id != user.id {
                throw MetadataStoreError.emailTaken
            }
            try await transaction.replaceUser(user)
            if current.teamID != user.teamID {
                try await transaction.moveAPIKeys(userID: user.id, toTeam: user.teamID)
            }
            return true
        }
    }

    /// Deletes a user and every key of theirs.
    /// - Parameter id: The user's id.
    /// - Returns: `false` when there is no such user.
    public func delete(id: UserID) async throws -> Bool {
        try await store.withTransaction { transaction in
            guard try await transaction.user(id: id) != nil else { return false }
            try await transaction.deleteAPIKeys(userID: id)
            try await transaction.deleteUser(id: id)
            return true
        }
    }

    /// Checks a new user's team and e-mail, then stores the user, inside a transaction.
    static func insert(_ user: User, in transaction: any MetadataTransaction) async throws {
        guard try await transaction.team(id: user.teamID) != nil else { throw MetadataStoreError.teamNotFound }
        guard try await transaction.user(email: user.email) == nil else { throw MetadataStoreError.emailTaken }
        try await transaction.insertUser(user)
    }
}
