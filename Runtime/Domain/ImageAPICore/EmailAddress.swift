import Foundation

/// The rule for e-mail addresses, which the input checks and the settings both apply.
public enum EmailAddress {
    /// The longest address (RFC 5321).
    public static let maximumLength = 254

    /// The form an address is stored and compared in, so that one mailbox has one spelling:
    /// Unicode compatibility forms folded (NFKC: a full-width `Ａ` is `A`), invisible characters
    /// (soft hyphens, zero-width spaces and joiners, byte-order marks, tag characters) removed,
    /// surrounding white space trimmed, and the whole address lower-cased.
    /// - Parameter email: The address as given.
    /// - Returns: The normalised address (check it with ``isValid(_:)``).
    public static func normalised(_ email: String) -> String {
        let folded = email.precomposedStringWithCompatibilityMapping
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: folded.unicodeScalars.filter { !$0.properties.isDefaultIgnorableCodePoint })
        return String(scalars).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    /// Whether a normalised address has the syntax of an RFC 5321 mailbox (the `email` format of
    /// the OpenAPI document), letters of any script allowed: a dot-atom local part of at most 64
    /// characters (letters, digits and ``localPartSymbols``; no dot first, last or twice in a
    /// row), `@`, and a domain of at least two dot-separated labels of letters, digits and inner
    /// hyphens, the last not all digits; at most ``maximumLength`` characters.
    /// - Parameter email: The address, normalised.
    /// - Returns: `true` when valid.
    public static func isValid(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= maximumLength, parts.count == 2 else { return false }
        let local = parts[0]
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        let localAtoms = local.split(separator: ".", omittingEmptySubsequences: false)
        guard !local.isEmpty, local.count <= 64, localAtoms.allSatisfy({ !$0.isEmpty }),
            local.unicodeScalars.allSatisfy({ isWordScalar($0) || localPartSymbols.contains($0) || $0 == "." }),
            labels.count >= 2,
            labels.allSatisfy({ label in
                !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.unicodeScalars.allSatisfy { isWordScalar($0) || $0 == "-" }
            }),
            let last = labels.last, !last.allSatisfy(\.isNumber)
        else { return false }
        return true
    }

    /// The symbols RFC 5322 allows in an unquoted local part beside letters and digits.
    public static let localPartSymbols = Set("!#$%&'*+-/=?^_`{|}~".unicodeScalars)

    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) }
        let properties = scalar.properties
        return properties.isAlphabetic || properties.numericType != nil
            || properties.generalCategory == .nonspacingMark || properties.generalCategory == .spacingMark
    }
}
