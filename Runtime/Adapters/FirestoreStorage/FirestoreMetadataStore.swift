import Foundation
import ImageAPICore
import Synchronization

/// The metadata store on Firestore (`METADATA_BACKEND=firestore`): teams, users, keys, images,
/// the outbox and dead letters as documents of the collections ``FirestoreCollection`` names,
/// through Firestore's REST API.
///
/// What SQLite's constraints do, documents do here: an e-mail is unique through a document keyed
/// by the address, a team's image bytes through a document keyed by their digest, each created
/// in the transaction that writes the user or image. Units of work are Firestore transactions,
/// retried on contention; their reads see their own writes (``FirestoreTransaction``).
public final class FirestoreMetadataStore: MetadataStore {
    /// The REST client.
    public let client: FirestoreClient
    /// How many images one transaction of re-embedding queues.
    public let requeueBatch: Int
    /// Outbox messages this process has committed (``enqueuedHere``).
    let enqueued = Atomic<Int>(0)

    /// A store on one database.
    /// - Parameters:
    ///   - client: The client of that database.
    ///   - requeueBatch: How many images one transaction of re-embedding queues (1 to
    ///     ``largestRequeueBatch``, which it is unless a test wants smaller batches).
    public init(client: FirestoreClient, requeueBatch: Int = FirestoreMetadataStore.largestRequeueBatch) {
        self.client = client
        self.requeueBatch = min(max(1, requeueBatch), Self.largestRequeueBatch)
    }

    // MARK: Readiness

    /// Reads one (missing) document: Firestore answers, whether or not it exists.
    public func checkReady() async throws {
        _ = try await client.documents(["readiness/probe"])
    }

    // MARK: Units of work

    /// Runs `body` in a Firestore transaction and commits what it wrote; on contention it runs
    /// again in a new transaction (so `body` only reads and writes through the transaction).
    public func withTransaction<T: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> T
    )
        async throws -> T
    {
        try await client.withTransaction { transaction in
            try await body(FirestoreMetadataTransaction(transaction: transaction))
        }
    }

    // MARK: Pages

    /// A page of a query, decoded, with the total from a count aggregation run beside it.
    func page<Item: Sendable>(
        _ query: FirestoreQuery, _ request: PageRequest, _ decode: (FirestoreDocument) throws -> Item
    ) async throws -> Page<Item> {
        var paged = query
        paged.offset = request.skip
        paged.limit = request.limit
        // The page and its total in parallel: two round trips' time, not their sum.
        async let total = client.count(query)
        let items = try await client.run(paged).map(decode)
        return Page(items: items, total: try await total)
    }

    // MARK: Teams

    /// Stores a new team.
    public func insertTeam(_ team: Team) async throws {
        try await client.commit([.create(FirestoreCollection.team(team.id), FirestoreRecords.fields(team))])
    }

    /// Reads a team by id.
    public func team(id: TeamID) async throws -> Team? {
        try await client.document(FirestoreCollection.team(id)).map(FirestoreRecords.team)
    }

    /// Lists teams, oldest first, with the total.
    public func teams(_ page: PageRequest) async throws -> Page<Team> {
        var query = FirestoreQuery(collection: FirestoreCollection.teams)
        query.orderBy = [("created_at", true), ("__name__", true)]
        return try await self.page(query, page, FirestoreRecords.team)
    }

    /// Replaces a team's fields; `false` when there is no such team.
    public func updateTeam(_ team: Team) async throws -> Bool {
        try await updating(
            FirestoreCollection.team(team.id),
            [
                "name": .string(team.name), "description": .optional(team.description),
                "updated_at": .timestamp(team.updatedAt),
            ])
    }

    /// Applies a field update to an existing document; `false` when it is missing.
    func updating(_ path: String, _ fields: [String: FirestoreValue]) async throws -> Bool {
        do {
            try await client.commit([.update(path, fields)])
            return true
        } catch let error as FirestoreError where error.code == "NOT_FOUND" {
            return false
        }
    }

    // MARK: Users

    /// Reads a user.
    public func user(id: UserID) async throws -> User? {
        try await client.document(FirestoreCollection.user(id)).map(FirestoreRecords.user)
    }

    /// Reads a user by e-mail, through the address's reservation.
    public func user(email: String) async throws -> User? {
        guard let reservation = try await client.document(FirestoreCollection.email(email)),
            let id = UserID(try FieldReader(document: reservation).string("user_id"))
        else { return nil }
        return try await user(id: id)
    }

    /// Lists users, optionally of one team, oldest first, with the total.
    public func users(teamID: TeamID?, _ page: PageRequest) async throws -> Page<User> {
        var query = FirestoreQuery(collection: FirestoreCollection.users)
        if let teamID { query.filters = [.init("team_id", .equal, .id(teamID))] }
        query.orderBy = [("created_at", true), ("__name__", true)]
        return try await self.page(query, page, FirestoreRecords.user)
    }

    // MARK: API keys

    /// Reads a key: one document read.
    public func apiKey(id: APIKeyID) async throws -> APIKey? {
        try await client.document(FirestoreCollection.apiKey(id)).map(FirestoreRecords.apiKey)
    }

    /// Lists a user's keys, oldest first, with the total.
    public func apiKeys(userID: UserID, _ page: PageRequest) async throws -> Page<APIKey> {
        var query = FirestoreQuery(collection: FirestoreCollection.apiKeys)
        query.filters = [.init("user_id", .equal, .id(userID))]
        query.orderBy = [("created_at", true), ("__name__", true)]
        return try await self.page(query, page, FirestoreRecords.apiKey)
    }

    /// Marks a key revoked.
    public func revokeAPIKey(id: APIKeyID) async throws -> Bool {
        try await updating(FirestoreCollection.apiKey(id), ["is_active": .boolean(false)])
    }

    /// Records when a key last authenticated a request (a key deleted meanwhile is left alone).
    public func recordAPIKeyUse(id: APIKeyID, at date: Date) async throws {
        _ = try await updating(FirestoreCollection.apiKey(id), ["last_used_at": .timestamp(date)])
    }

    // MARK: Administrators

    /// The secret hash of a bootstrap key registered once, whatever became of it since.
    public func bootstrapKeyHash(id: APIKeyID) async throws -> Data? {
        guard let document = try await client.document(FirestoreCollection.bootstrapKey(id)) else { return nil }
        return try FieldReader(document: document).bytes("secret_hash")
    }

    /// Records that a bootstrap key was registered (the first record stays).
    public func recordBootstrapKey(id: APIKeyID, secretHash: Data, at date: Date) async throws {
        do {
            try await client.commit([
                .create(
                    FirestoreCollection.bootstrapKey(id),
                    [
                        "key_id": .id(id), "secret_hash": .bytes(secretHash), "registered_at": .timestamp(date),
                    ])
            ])
        } catch let error as FirestoreError where error.code == "ALREADY_EXISTS" {
            return
        }
    }
}

/// One unit of work of ``FirestoreMetadataStore``: reads and writes through one Firestore
/// transaction, reads seeing the unit's own writes.
struct FirestoreMetadataTransaction: MetadataTransaction {
    let transaction: FirestoreTransaction

    func team(id: TeamID) async throws -> Team? {
        try await transaction.document(FirestoreCollection.team(id)).map(FirestoreRecords.team)
    }

    func insertTeam(_ team: Team) async throws {
        transaction.write(.create(FirestoreCollection.team(team.id), FirestoreRecords.fields(team)))
    }

    func deleteTeam(id: TeamID) async throws {
        transaction.write(FirestoreWrite(FirestoreCollection.team(id), .delete))
    }

    func userCount(teamID: TeamID) async throws -> Int {
        var query = FirestoreQuery(collection: FirestoreCollection.users)
        query.filters = [.init("team_id", .equal, .id(teamID))]
        return try await transaction.runSeeingOwnWrites(query).count
    }

    func imageCount(teamID: TeamID) async throws -> Int {
        var query = FirestoreQuery(collection: FirestoreCollection.images)
        query.filters = [.init("team_id", .equal, .id(teamID))]
        return try await transaction.count(query)
    }

    func user(id: UserID) async throws -> User? {
        try await transaction.document(FirestoreCollection.user(id)).map(FirestoreRecords.user)
    }

    func user(email: String) async throws -> User? {
        guard let id = try await owner(ofEmail: email) else { return nil }
        return try await user(id: id)
    }

    /// The user an e-mail's reservation names, if any.
    private func owner(ofEmail email: String) async throws -> UserID? {
        guard let reservation = try await transaction.document(FirestoreCollection.email(email)) else { return nil }
        return UserID(try FieldReader(document: reservation).string("user_id"))
    }

    /// Reserves an e-mail for a user, refusing one another user holds.
    private func reserve(email: String, for id: UserID) async throws {
        switch try await owner(ofEmail: email) {
        case id?: return
        case .some: throw MetadataStoreError.emailTaken
        case nil:
            transaction.write(
                .create(FirestoreCollection.email(email), ["user_id": .id(id), "email": .string(email.lowercased())]))
        }
    }

    func insertUser(_ user: User) async throws {
        try await reserve(email: user.email, for: user.id)
        transaction.write(.create(FirestoreCollection.user(user.id), FirestoreRecords.fields(user)))
    }

    func replaceUser(_ user: User) async throws {
        let previous = try await self.user(id: user.id)
        try await reserve(email: user.email, for: user.id)
        if let previous, previous.email.lowercased() != user.email.lowercased() {
            transaction.write(FirestoreWrite(FirestoreCollection.email(previous.email), .delete))
        }
        transaction.write(.replace(FirestoreCollection.user(user.id), FirestoreRecords.fields(user)))
    }

    func deleteUser(id: UserID) async throws {
        if let user = try await user(id: id) {
            transaction.write(FirestoreWrite(FirestoreCollection.email(user.email), .delete))
        }
        transaction.write(FirestoreWrite(FirestoreCollection.user(id), .delete))
    }

    func apiKey(id: APIKeyID) async throws -> APIKey? {
        try await transaction.document(FirestoreCollection.apiKey(id)).map(FirestoreRecords.apiKey)
    }

    func insertAPIKey(_ key: APIKey) async throws {
        transaction.write(.create(FirestoreCollection.apiKey(key.id), FirestoreRecords.fields(key)))
    }

    /// Every key of a user, as this unit of work sees them.
    private func keys(of userID: UserID) async throws -> [String: FirestoreDocument] {
        var query = FirestoreQuery(collection: FirestoreCollection.apiKeys)
        query.filters = [.init("user_id", .equal, .id(userID))]
        return try await transaction.runSeeingOwnWrites(query)
    }

    func moveAPIKeys(userID: UserID, toTeam teamID: TeamID) async throws {
        for (path, document) in try await keys(of: userID) {
            var moved = document.fields
            moved["team_id"] = .id(teamID)
            transaction.write(FirestoreWrite(path, .set(FirestoreDocument(fields: moved))))
        }
    }

    func deleteAPIKeys(userID: UserID) async throws {
        for path in try await keys(of: userID).keys {
            transaction.write(FirestoreWrite(path, .delete))
        }
    }
}
