import Crypto
import Foundation

/// Who made a request: the key that authenticated it and the key's owner.
public struct Principal: Sendable {
    /// The owner, as stored now.
    public let user: User
    /// The key used.
    public let key: APIKey

    /// The team whose data the request may see.
    public var teamID: TeamID { user.teamID }
    /// Whether the owner is an administrator.
    public var isAdmin: Bool { user.isAdmin }

    /// Creates a principal.
    /// - Parameters:
    ///   - user: The owner.
    ///   - key: The key used.
    public init(user: User, key: APIKey) {
        self.user = user
        self.key = key
    }
}

/// Issues API keys and authenticates requests that carry them.
public struct APIKeyService: Sendable {
    /// How often `last_used_at` is written for a busy key, at most.
    public static let lastUsedResolution: TimeInterval = 60

    private let store: any MetadataStore
    private let secretBytes: Data
    private let previousSecretBytes: Data?
    private let expiryDays: Int
    private let clock: any TimeSource

    /// Creates the service.
    /// - Parameters:
    ///   - store: Where keys and users are kept.
    ///   - secret: `API_KEY_SECRET`, the HMAC key for stored hashes.
    ///   - previousSecret: `API_KEY_PREVIOUS_SECRET`: hashes made with it still authenticate.
    ///   - expiryDays: How long new keys work.
    ///   - clock: The time source.
    public init(
        store: any MetadataStore, secret: String, previousSecret: String? = nil, expiryDays: Int,
        clock: any TimeSource
    ) {
        self.store = store
        self.secretBytes = Data(secret.utf8)
        self.previousSecretBytes = previousSecret.map { Data($0.utf8) }
        self.expiryDays = expiryDays
        self.clock = clock
    }

    /// The HMAC key: made on use, since `SymmetricKey` is not `Sendable`.
    private var hmacKey: SymmetricKey { SymmetricKey(data: secretBytes) }

    /// Whether a presented secret is the one a stored hash was made from, with `API_KEY_SECRET`
    /// or, during a rotation, with `API_KEY_PREVIOUS_SECRET` (compared in constant time).
    /// - Parameters:
    ///   - secret: The secret part of a key text.
    ///   - stored: A stored hash.
    /// - Returns: `true` when either secret makes `stored` from it.
    public func matches(_ secret: String, _ stored: Data) -> Bool {
        let presented = Data(secret.utf8)
        if HMAC<SHA256>.isValidAuthenticationCode(stored, authenticating: presented, using: hmacKey) { return true }
        guard let previousSecretBytes else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            stored, authenticating: presented, using: SymmetricKey(data: previousSecretBytes))
    }

    /// HMAC-SHA256 of a key's secret part.
    /// - Parameter secret: The secret part of the key text.
    /// - Returns: The 32-byte hash that is stored.
    public func hash(secret: String) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data(secret.utf8), using: hmacKey))
    }

    /// Makes a new key record for a user (not yet stored).
    /// - Parameters:
    ///   - user: The owner.
    ///   - name: The key's name.
    ///   - description: The key's description.
    ///   - text: The key text to use; a fresh random one when `nil`.
    /// - Returns: The record and the full key text, which is shown once and never stored.
    public func makeKey(
        for user: User, name: String, description: String?, text: APIKeyText? = nil
    ) -> (record: APIKey, text: APIKeyText) {
        var generator = SystemRandomNumberGenerator()
        let text = text ?? APIKeyText.generate(using: &generator)
        let now = clock.now()
        let record = APIKey(
            id: text.keyID, name: name, description: description, prefix: text.displayPrefix, userID: user.id,
            teamID: user.teamID, secretHash: hash(secret: text.secret), createdAt: now,
            expiresAt: now.addingTimeInterval(TimeInterval(expiryDays) * 86_400), lastUsedAt: nil, isActive: true)
        return (record, text)
    }

    /// Makes and stores a new key for a user.
    /// - Parameters:
    ///   - user: The owner.
    ///   - name: The key's name.
    ///   - description: The key's description.
    /// - Returns: The key as shown once, with its full text in `key`.
    /// - Throws: ``MetadataStoreError/userNotFound`` when the user was deleted meanwhile.
    public func issueKey(for user: User, name: String, description: String?) async throws -> APIKeyView {
        let (record, text) = makeKey(for: user, name: name, description: description)
        return APIKeyView(try await register(record), plaintext: text.text)
    }

    /// Stores a key made by ``makeKey(for:name:description:text:)``, checking in one transaction
    /// that its user still exists and its id is free.
    /// - Parameter record: The key record.
    /// - Returns: The record as stored: in its user's team as of now.
    /// - Throws: ``MetadataStoreError/userNotFound`` or ``MetadataStoreError/keyIDTaken``.
    public func register(_ record: APIKey) async throws -> APIKey {
        try await store.withTransaction { transaction in try await Self.insert(record, in: transaction) }
    }

    /// Checks a new key's user and id, then stores it in the user's current team, inside a
    /// transaction.
    @discardableResult
    static func insert(_ record: APIKey, in transaction: any MetadataTransaction) async throws -> APIKey {
        guard let owner = try await transaction.user(id: record.userID) else {
            throw MetadataStoreError.userNotFound
        }
        guard try await transaction.apiKey(id: record.id) == nil else { throw MetadataStoreError.keyIDTaken }
        var stored = record
        stored.teamID = owner.teamID
        try await transaction.insertAPIKey(stored)
        return stored
    }

    /// Authenticates a caller by the key it presents.
    ///
    /// Missing, malformed, unknown, revoked and expired keys, wrong secrets and keys of deleted
    /// or deactivated users are all refused as ``DomainError/Kind/unauthenticated``. The secret
    /// is compared in constant time.
    /// - Parameter presented: The key text the caller presented, or `nil` when none.
    /// - Returns: The principal.
    /// - Throws: ``DomainError`` (unauthenticated).
    public func authenticate(presented: String?) async throws -> Principal {
        guard let presented else {
            throw DomainError.unauthenticated("Missing API key: send it in X-API-Key or Authorization: Bearer")
        }
        guard let text = APIKeyText(parsing: presented) else {
            throw DomainError.unauthenticated("Malformed API key")
        }
        guard let key = try await store.apiKey(id: text.keyID), matches(text.secret, key.secretHash) else {
            throw DomainError.unauthenticated("Invalid API key")
        }
        guard key.isActive else { throw DomainError.unauthenticated("API key has been revoked") }
        let now = clock.now()
        guard now < key.expiresAt else { throw DomainError.unauthenticated("API key has expired") }
        guard let user = try await store.user(id: key.userID) else {
            throw DomainError.unauthenticated("Invalid API key")
        }
        guard user.isActive else { throw DomainError.unauthenticated("User is deactivated") }
        var used = key
        if key.lastUsedAt.map({ now.timeIntervalSince($0) >= Self.lastUsedResolution }) ?? true {
            try await store.recordAPIKeyUse(id: key.id, at: now)
            used.lastUsedAt = now
        }
        return Principal(user: user, key: used)
    }
}
