import Foundation

/// Why a store refused a write. Handlers turn these into 404 or 409 answers.
public struct MetadataStoreError: Error, Equatable, CustomStringConvertible {
    private enum Kind: Equatable {
        case emailTaken, teamNotFound, userNotFound, keyIDTaken
    }

    private let kind: Kind

    /// Another user already has this e-mail address (compared without case).
    public static let emailTaken = MetadataStoreError(kind: .emailTaken)
    /// The team referred to does not exist.
    public static let teamNotFound = MetadataStoreError(kind: .teamNotFound)
    /// The user referred to does not exist.
    public static let userNotFound = MetadataStoreError(kind: .userNotFound)
    /// An API key with this id already exists.
    public static let keyIDTaken = MetadataStoreError(kind: .keyIDTaken)

    /// A short explanation.
    public var description: String {
        switch kind {
        case .emailTaken: "a user with this email already exists"
        case .teamNotFound: "team not found"
        case .userNotFound: "user not found"
        case .keyIDTaken: "an API key with this id already exists"
        }
    }
}

/// What deleting a team did.
public enum TeamDeletion: Sendable, Equatable {
    /// The team was deleted.
    case deleted
    /// No such team.
    case notFound
    /// The team still has users or images and was kept.
    case inUse
}

/// Storage of teams. Deleting one is a rule of ``TeamService``, in a transaction.
public protocol TeamStore: Sendable {
    /// Stores a new team.
    /// - Parameter team: The team.
    func insertTeam(_ team: Team) async throws
    /// Reads a team.
    /// - Parameter id: The team's id.
    /// - Returns: The team, or `nil` when there is none.
    func team(id: TeamID) async throws -> Team?
    /// Lists teams, oldest first.
    /// - Parameter page: The slice to return.
    /// - Returns: The page and the total.
    func teams(_ page: PageRequest) async throws -> Page<Team>
    /// Replaces a team's fields.
    /// - Parameter team: The team with its new fields.
    /// - Returns: `false` when there is no such team.
    func updateTeam(_ team: Team) async throws -> Bool
}

/// Storage of users, read-only here: ``UserService`` writes them, in transactions.
public protocol UserStore: Sendable {
    /// Reads a user.
    /// - Parameter id: The user's id.
    /// - Returns: The user, or `nil`.
    func user(id: UserID) async throws -> User?
    /// Reads a user by e-mail.
    /// - Parameter email: The lower-case address.
    /// - Returns: The user, or `nil`.
    func user(email: String) async throws -> User?
    /// Lists users, oldest first.
    /// - Parameters:
    ///   - teamID: Only this team's users, when given.
    ///   - page: The slice to return.
    /// - Returns: The page and the total.
    func users(teamID: TeamID?, _ page: PageRequest) async throws -> Page<User>
}

/// Storage of API keys. New keys are written by ``APIKeyService``, in a transaction.
public protocol APIKeyStore: Sendable {
    /// Reads a key.
    /// - Parameter id: The key's id.
    /// - Returns: The key, or `nil`.
    func apiKey(id: APIKeyID) async throws -> APIKey?
    /// Lists a user's keys, oldest first, revoked ones included.
    /// - Parameters:
    ///   - userID: The owner.
    ///   - page: The slice to return.
    /// - Returns: The page and the total.
    func apiKeys(userID: UserID, _ page: PageRequest) async throws -> Page<APIKey>
    /// Marks a key revoked.
    /// - Parameter id: The key's id.
    /// - Returns: `false` when there is no such key.
    func revokeAPIKey(id: APIKeyID) async throws -> Bool
    /// Records that a key authenticated a request.
    /// - Parameters:
    ///   - id: The key's id.
    ///   - date: When.
    func recordAPIKeyUse(id: APIKeyID, at date: Date) async throws
}

/// The metadata-store port: everything the functions keep apart from image bytes and vectors.
///
/// One implementation per backend (`SQLiteMetadataStore`, `MemoryMetadataStore`, `FirestoreMetadataStore`).
/// Reads of something missing return `nil` or `false`; handlers turn those into 404. Writes
/// that must go together, and the rules checked before them, run in ``withTransaction(_:)``.
public protocol MetadataStore: TeamStore, UserStore, APIKeyStore {
    /// Throws when the store cannot serve requests; backs `/readyz`.
    func checkReady() async throws
    /// Runs `body` as one unit of work, with the guarantees ``MetadataTransaction`` documents:
    /// its writes are kept when it returns and dropped when it throws.
    ///
    /// A backend may run `body` more than once (one whose transactions are optimistic retries on
    /// contention), so `body` only reads and writes through the transaction.
    /// - Parameter body: The work, given the transaction.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws, or the backend's error when the transaction cannot commit.
    func withTransaction<T: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> T
    )
        async throws -> T
    /// The secret hash of a `BOOTSTRAP_ADMIN_KEY` registered before, or `nil` if it never was.
    /// The record outlives the key and its user: a consumed bootstrap key is never recreated.
    func bootstrapKeyHash(id: APIKeyID) async throws -> Data?
    /// Records that a bootstrap key was registered; a second record of the same id is ignored.
    func recordBootstrapKey(id: APIKeyID, secretHash: Data, at date: Date) async throws
}
