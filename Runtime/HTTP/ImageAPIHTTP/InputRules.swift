import Foundation
import FunctionsFramework
import ImageAPICore

/// The limits on user input and the checks that collect every violation into one 422.
public struct InputRules {
    /// The longest name (teams, users, keys).
    public static let maximumNameLength = 100
    /// The longest description.
    public static let maximumDescriptionLength = 1000
    /// The longest e-mail address (RFC 5321).
    public static let maximumEmailLength = EmailAddress.maximumLength

    private var issues: [ValidationError.Issue] = []

    /// Starts an empty set of checks.
    public init() {}

    /// Checks a required name: trimmed, non-empty, within ``maximumNameLength``.
    /// - Parameters:
    ///   - value: The input.
    ///   - field: The body field name.
    /// - Returns: The trimmed name.
    @discardableResult
    public mutating func name(_ value: String, field: String = "name") -> String {
        let trimmed = text(value, location: ["body", field], allowsLineBreaks: false)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty {
            issues.append(
                .init(loc: ["body", field], msg: "String should have at least 1 character", type: "string_too_short"))
        } else if trimmed.count > Self.maximumNameLength {
            issues.append(
                .init(
                    loc: ["body", field], msg: "String should have at most \(Self.maximumNameLength) characters",
                    type: "string_too_long"))
        }
        return trimmed
    }

    /// Checks an optional description; an empty one becomes `nil`.
    /// - Parameter value: The input.
    /// - Returns: The trimmed description, or `nil`.
    public mutating func description(_ value: String?) -> String? {
        guard
            let trimmed = value.map({ text($0, location: ["body", "description"], allowsLineBreaks: true) })?
                .trimmingCharacters(in: .whitespacesAndNewlines), !trimmed.isEmpty
        else {
            return nil
        }
        if trimmed.count > Self.maximumDescriptionLength {
            issues.append(
                .init(
                    loc: ["body", "description"],
                    msg: "String should have at most \(Self.maximumDescriptionLength) characters",
                    type: "string_too_long"))
        }
        return trimmed
    }

    /// Checks an e-mail address and normalises it (see ``EmailAddress/normalised(_:)``), so that
    /// one mailbox cannot be registered twice in two spellings.
    /// - Parameter value: The input.
    /// - Returns: The normalised address.
    public mutating func email(_ value: String) -> String {
        let normalised = EmailAddress.normalised(text(value, location: ["body", "email"], allowsLineBreaks: false))
        if !EmailAddress.isValid(normalised) {
            issues.append(
                .init(loc: ["body", "email"], msg: "value is not a valid email address", type: "value_error"))
        }
        return normalised
    }

    /// Normalises text to Unicode NFC and refuses the characters no name or description needs:
    /// control characters (tab and line breaks are allowed where `allowsLineBreaks`), the
    /// bidirectional embedding, override and isolate controls that make text display in another
    /// order than it is stored, and invisible format characters that make two texts look alike
    /// (zero-width spaces and joiners, word joiners, byte-order marks, soft hyphens, tag characters).
    /// - Parameters:
    ///   - value: The input.
    ///   - location: Where the input was, for the 422.
    ///   - allowsLineBreaks: Whether tab, CR and LF are allowed (descriptions).
    /// - Returns: The NFC form of the input (unchanged when refused; the 422 follows at ``check()``).
    public mutating func text(_ value: String, location: [String], allowsLineBreaks: Bool) -> String {
        if let bad = value.unicodeScalars.first(where: { Self.isForbidden($0, allowsLineBreaks: allowsLineBreaks) }) {
            let code = "U+" + String(bad.value, radix: 16, uppercase: true).leftPadded(to: 4)
            add(
                location, "String should not contain control, bidirectional-override or invisible characters (\(code))",
                "string_pattern_mismatch")
            return value
        }
        return value.precomposedStringWithCanonicalMapping
    }

    /// Whether a character is refused in text input.
    /// - Parameters:
    ///   - scalar: The character.
    ///   - allowsLineBreaks: Whether tab, CR and LF are allowed.
    /// - Returns: `true` for control and bidirectional-control characters.
    public static func isForbidden(_ scalar: Unicode.Scalar, allowsLineBreaks: Bool) -> Bool {
        if allowsLineBreaks && (scalar == "\t" || scalar == "\n" || scalar == "\r") { return false }
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true  // C0 and C1 controls, DEL
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: return true  // bidirectional controls
        case 0x2028, 0x2029, 0xFFFE, 0xFFFF: return true  // line/paragraph separators, noncharacters
        case 0x200B...0x200D, 0x2060...0x2064, 0xFEFF, 0x00AD, 0x180E, 0xE0000...0xE007F: return true  // invisible
        default: return false
        }
    }

    /// Records an invalid input.
    /// - Parameters:
    ///   - location: Where the input was, such as `["body", "tags"]`.
    ///   - message: What is wrong.
    ///   - type: The machine-readable kind.
    public mutating func add(_ location: [String], _ message: String, _ type: String) {
        issues.append(.init(loc: location, msg: message, type: type))
    }

    /// Throws every violation found so far as one 422.
    /// - Throws: ``ValidationError`` when any check failed.
    public func check() throws {
        if !issues.isEmpty { throw ValidationError(issues) }
    }
}

extension String {
    /// The string with leading zeros up to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
