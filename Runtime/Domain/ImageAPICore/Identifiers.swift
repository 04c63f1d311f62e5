import Foundation

extension UUID {
    /// The identifier as the API writes it: lower-case, with dashes.
    public var lowercasedString: String { uuidString.lowercased() }
}

/// An identifier of one kind of record: a UUID that cannot be mistaken for another kind's.
///
/// Written in lower case with dashes everywhere (JSON, logs, every store's keys); read in any
/// case. A store keeps ``lowercasedString`` or ``uuid``, whichever its keys are.
public protocol TypedIdentifier: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The UUID.
    var uuid: UUID { get }
    /// Wraps a UUID.
    /// - Parameter uuid: The UUID.
    init(uuid: UUID)
}

extension TypedIdentifier {
    /// A new random identifier.
    public init() { self.init(uuid: UUID()) }

    /// Reads an identifier in any case.
    /// - Parameter text: The UUID text.
    /// - Returns: `nil` when `text` is not a UUID.
    public init?(_ text: String) {
        guard let uuid = UUID(uuidString: text) else { return nil }
        self.init(uuid: uuid)
    }

    /// Lower case, with dashes: how the API and the stores write it.
    public var lowercasedString: String { uuid.lowercasedString }

    /// ``lowercasedString``.
    public var description: String { lowercasedString }

    /// Orders as the lower-case texts do (the tie-breaker of listings).
    public static func < (left: Self, right: Self) -> Bool { left.lowercasedString < right.lowercasedString }

    /// Reads a UUID string in any case.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let uuid = UUID(uuidString: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "Attempted to decode UUID from invalid UUID string.")
        }
        self.init(uuid: uuid)
    }

    /// Writes ``lowercasedString``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(lowercasedString)
    }
}

/// A team's identifier.
public struct TeamID: TypedIdentifier {
    /// The UUID.
    public let uuid: UUID
    /// Wraps a UUID.
    public init(uuid: UUID) { self.uuid = uuid }
}

/// A user's identifier.
public struct UserID: TypedIdentifier {
    /// The UUID.
    public let uuid: UUID
    /// Wraps a UUID.
    public init(uuid: UUID) { self.uuid = uuid }
}

/// An API key's identifier (its hex form is the lookup part of the key text).
public struct APIKeyID: TypedIdentifier {
    /// The UUID.
    public let uuid: UUID
    /// Wraps a UUID.
    public init(uuid: UUID) { self.uuid = uuid }
}

/// An image's identifier.
public struct ImageID: TypedIdentifier {
    /// The UUID.
    public let uuid: UUID
    /// Wraps a UUID.
    public init(uuid: UUID) { self.uuid = uuid }
}
