import Foundation

/// The rule on deleting teams: a team goes only when no user and no image belongs to it.
public struct TeamService: Sendable {
    private let store: any MetadataStore

    /// Creates the service.
    /// - Parameter store: Where teams, users and images are kept.
    public init(store: any MetadataStore) {
        self.store = store
    }

    /// Deletes a team that nothing belongs to, checking and deleting in one transaction.
    /// - Parameter id: The team's id.
    /// - Returns: What happened.
    public func delete(id: TeamID) async throws -> TeamDeletion {
        try await store.withTransaction { transaction in
            guard try await transaction.team(id: id) != nil else { return .notFound }
            guard try await transaction.userCount(teamID: id) == 0, try await transaction.imageCount(teamID: id) == 0
            else { return .inUse }
            try await transaction.deleteTeam(id: id)
            return .deleted
        }
    }
}
