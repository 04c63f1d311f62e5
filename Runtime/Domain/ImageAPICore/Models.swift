import Foundation

/// A team: the unit of data isolation. Every user, key and image belongs to exactly one team.
public struct Team: Codable, Sendable, Equatable, EncodesEveryField {
    /// The team's identifier.
    public var id: TeamID
    /// The display name.
    public var name: String
    /// An optional description.
    public var description: String?
    /// When the team was created.
    public var createdAt: Date
    /// When the team was last changed.
    public var updatedAt: Date

    /// Creates a team.
    public init(id: TeamID, name: String, description: String?, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.name = name
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, description
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// Writes every field (``EncodesEveryField``).
    public func encode(to encoder: any Encoder) throws {
        try encodeEveryField(to: encoder)
    }
}

/// A person who belongs to one team. Admins manage teams, users and keys.
public struct User: Codable, Sendable, Equatable {
    /// The user's identifier.
    public var id: UserID
    /// The e-mail address, stored normalised (``EmailAddress/normalised(_:)``); unique across the
    /// installation.
    public var email: String
    /// The display name.
    public var name: String
    /// The team the user belongs to.
    public var teamID: TeamID
    /// Whether the user is an administrator.
    public var isAdmin: Bool
    /// Whether the user may use the API; a deactivated user's keys are refused.
    public var isActive: Bool
    /// When the user was created.
    public var createdAt: Date
    /// When the user was last changed.
    public var updatedAt: Date

    /// Creates a user.
    public init(
        id: UserID, email: String, name: String, teamID: TeamID, isAdmin: Bool, isActive: Bool, createdAt: Date,
        updatedAt: Date
    ) {
        self.id = id
        self.email = email
        self.name = name
        self.teamID = teamID
        self.isAdmin = isAdmin
        self.isActive = isActive
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, email, name
        case teamID = "team_id"
        case isAdmin = "is_admin"
        case isActive = "is_active"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

}

/// An API key's stored record. The secret itself is never stored: only its HMAC.
public struct APIKey: Sendable, Equatable {
    /// The key's identifier; its hex form is the lookup part of the key text.
    public var id: APIKeyID
    /// A name the owner chose.
    public var name: String
    /// An optional description.
    public var description: String?
    /// The start of the key text (`imk_1a2b3c4d`), to recognise a key without revealing it.
    public var prefix: String
    /// The owner.
    public var userID: UserID
    /// The owner's team (keys follow their user).
    public var teamID: TeamID
    /// HMAC-SHA256 of the secret part, keyed with `API_KEY_SECRET`.
    public var secretHash: Data
    /// When the key was made.
    public var createdAt: Date
    /// When the key stops working.
    public var expiresAt: Date
    /// When the key last authenticated a request (updated at most once a minute).
    public var lastUsedAt: Date?
    /// `false` once revoked.
    public var isActive: Bool

    /// Creates a key record.
    public init(
        id: APIKeyID, name: String, description: String?, prefix: String, userID: UserID, teamID: TeamID,
        secretHash: Data,
        createdAt: Date, expiresAt: Date, lastUsedAt: Date?, isActive: Bool
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.prefix = prefix
        self.userID = userID
        self.teamID = teamID
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.isActive = isActive
    }
}

/// An API key as the API shows it: every field but the hash; `key` only in the creation answer.
public struct APIKeyView: Codable, Sendable, Equatable, EncodesEveryField {
    /// The record shown.
    public var id: APIKeyID
    /// The key's name.
    public var name: String
    /// The key's description.
    public var description: String?
    /// The recognisable start of the key text.
    public var prefix: String
    /// The owner.
    public var userID: UserID
    /// The owner's team.
    public var teamID: TeamID
    /// When the key was made.
    public var createdAt: Date
    /// When the key stops working.
    public var expiresAt: Date
    /// When the key was last used.
    public var lastUsedAt: Date?
    /// Whether the key still works (not revoked).
    public var isActive: Bool
    /// The full key text: present once, in the answer that created the key.
    public var key: String?

    /// Shows a stored key.
    /// - Parameters:
    ///   - key: The record.
    ///   - plaintext: The full key text, only when answering its creation.
    public init(_ key: APIKey, plaintext: String? = nil) {
        self.id = key.id
        self.name = key.name
        self.description = key.description
        self.prefix = key.prefix
        self.userID = key.userID
        self.teamID = key.teamID
        self.createdAt = key.createdAt
        self.expiresAt = key.expiresAt
        self.lastUsedAt = key.lastUsedAt
        self.isActive = key.isActive
        self.key = plaintext
    }

    enum CodingKeys: String, CodingKey {
        case id, name, description, prefix, key
        case userID = "user_id"
        case teamID = "team_id"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case lastUsedAt = "last_used_at"
        case isActive = "is_active"
    }

    /// The key's text is shown once, in the answer that created it: absent, it is left out.
    public static var omittedWhenAbsent: Set<String> { ["key"] }

    /// Writes every field (``EncodesEveryField``).
    public func encode(to encoder: any Encoder) throws {
        try encodeEveryField(to: encoder)
    }
}
