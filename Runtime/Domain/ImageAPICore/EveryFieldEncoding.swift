import Foundation
import Locking

/// An answer that names every field, as clients of the service this API replaces expect: an absent
/// value is written as `null` (Swift's synthesized encoding leaves it out), identifiers and UUIDs
/// lower-case. The fields are the type's stored properties in declaration order, each under its
/// name in snake case (`createdAt` → `created_at`, `userID` → `user_id`), which is what its
/// `CodingKeys` say for decoding; a test encodes each conforming type and checks the two agree.
public protocol EncodesEveryField: Encodable {
    /// Properties left out when absent instead of written as `null` (a key's text, shown once).
    static var omittedWhenAbsent: Set<String> { get }
}

extension EncodesEveryField {
    /// None: every absent field is written as `null`.
    public static var omittedWhenAbsent: Set<String> { [] }

    /// Writes every stored property (see ``EncodesEveryField``). A type's `encode(to:)` calls this.
    /// - Parameter encoder: The encoder.
    /// - Throws: `EncodingError` when a property's value is not `Encodable`.
    public func encodeEveryField(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        for child in Mirror(reflecting: self).children {
            guard let label = child.label else { continue }
            let key = FieldKey.forProperty(label)
            var value = child.value
            if let optional = value as? any AbsentOrPresent {
                guard let wrapped = optional.presentValue else {
                    if !Self.omittedWhenAbsent.contains(label) { try container.encodeNil(forKey: key) }
                    continue
                }
                value = wrapped
            }
            if let uuid = value as? UUID {
                try container.encode(uuid.uuidString.lowercased(), forKey: key)
            } else if let encodable = value as? any Encodable {
                try container.encode(encodable, forKey: key)
            } else {
                throw EncodingError.invalidValue(
                    value, .init(codingPath: encoder.codingPath + [key], debugDescription: "\(label) is not Encodable"))
            }
        }
    }
}

/// An optional seen through `Any`: its value, if present.
private protocol AbsentOrPresent {
    var presentValue: Any? { get }
}

extension Optional: AbsentOrPresent {
    fileprivate var presentValue: Any? { self.map { $0 as Any } }
}

/// A field's JSON name.
public struct FieldKey: CodingKey, Sendable {
    /// The name.
    public let stringValue: String
    /// Never an index.
    public var intValue: Int? { nil }

    /// Names a field.
    /// - Parameter name: The JSON name.
    public init(_ name: String) { stringValue = name }
    /// Names a field.
    public init?(stringValue: String) { self.stringValue = stringValue }
    /// Fields are never indexes.
    public init?(intValue: Int) { nil }

    /// Property names already converted, so that each is converted once per process.
    private static let converted = Locked<[String: FieldKey]>([:])

    /// The key of a property: its name in snake case (``snakeCased(_:)``), converted once.
    /// - Parameter name: The property's name.
    /// - Returns: The key.
    public static func forProperty(_ name: String) -> FieldKey {
        if let known = converted.withLock({ $0[name] }) { return known }
        let key = FieldKey(snakeCased(name))
        converted.withLock { $0[name] = key }
        return key
    }

    /// A Swift property name in snake case: an underscore before each run of capitals that
    /// follows a lower-case letter or digit, all lower-cased (`lastUsedAt` → `last_used_at`,
    /// `imageID` → `image_id`, `sha256` → `sha256`).
    /// - Parameter name: The property's name.
    /// - Returns: The JSON name.
    public static func snakeCased(_ name: String) -> String {
        var result = ""
        var previous: Character?
        for character in name {
            if character.isUppercase, let previous, !previous.isUppercase { result.append("_") }
            result += character.lowercased()
            previous = character
        }
        return result
    }
}
