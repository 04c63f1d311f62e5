import Foundation
import FunctionsFramework
import ImageAPICore

extension InputRules {
    /// The most tags an image may carry.
    public static let maximumTagCount = 50
    /// The longest tag, in characters.
    public static let maximumTagLength = 50
    /// The longest file name kept, in characters.
    public static let maximumFilenameLength = 255

    /// Normalises tags: split on commas, trimmed, lower-cased, empty ones dropped, duplicates
    /// removed (first kept), each at most ``maximumTagLength`` characters, at most
    /// ``maximumTagCount`` of them.
    /// - Parameters:
    ///   - values: The raw values (each may hold several comma-separated tags).
    ///   - location: Where the input was, for the error.
    /// - Returns: The tags.
    @discardableResult
    public mutating func tags(_ values: [String], location: [String] = ["body", "tags"]) -> [String] {
        var tags: [String] = []
        for value in values {
            let value = text(value, location: location, allowsLineBreaks: false)
            for piece in value.split(separator: ",") {
                let tag = piece.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
                guard !tag.isEmpty, !tags.contains(tag) else { continue }
                if tag.count > Self.maximumTagLength {
                    add(location, "Each tag should have at most \(Self.maximumTagLength) characters", "string_too_long")
                    return []
                }
                tags.append(tag)
            }
        }
        if tags.count > Self.maximumTagCount {
            add(location, "At most \(Self.maximumTagCount) tags are allowed", "too_long")
            return []
        }
        return tags
    }

    /// Reads an optional UUID field.
    /// - Parameters:
    ///   - value: The raw text, if given; empty text and `null` (a form cannot carry JSON null) count as absent.
    ///   - location: Where the input was, for the error.
    /// - Returns: The identifier, or `nil`.
    public mutating func optionalUUID(_ value: String?, location: [String]) -> UUID? {
        guard let text = value?.trimmingCharacters(in: .whitespaces), !text.isEmpty, text != "null" else { return nil }
        guard let id = UUID(uuidString: text) else {
            add(location, "Input should be a valid UUID", "uuid_parsing")
            return nil
        }
        return id
    }

    /// Reads an optional boolean form field (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`; empty is absent).
    /// - Parameters:
    ///   - value: The raw text, if given.
    ///   - location: Where the input was, for the error.
    ///   - nullable: Whether `null` and an empty value count as absent (a form field, which cannot
    ///     carry JSON null) or are refused (a query parameter the API documents as a plain boolean:
    ///     `?redirect=` is a mistake to name, not a default to guess).
    /// - Returns: The value, or `nil`.
    public mutating func optionalBool(_ value: String?, location: [String], nullable: Bool = true) -> Bool? {
        if !nullable, let value, value.trimmingCharacters(in: .whitespaces).isEmpty {
            add(location, "Input should be a valid boolean", "bool_parsing")
            return nil
        }
        guard let text = value?.trimmingCharacters(in: .whitespaces).lowercased(), !text.isEmpty,
            !(nullable && text == "null")
        else {
            return nil
        }
        switch text {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default:
            add(location, "Input should be a valid boolean", "bool_parsing")
            return nil
        }
    }

    /// The base name of a client-supplied file name, without control characters, at most
    /// ``maximumFilenameLength`` characters; `upload` when nothing is left.
    public static func filename(_ raw: String?) -> String {
        let base = (raw ?? "").split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let cleaned = String(base.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) })
            .trimmingCharacters(in: .whitespaces)
        return cleaned.isEmpty ? "upload" : String(cleaned.prefix(maximumFilenameLength))
    }
}
