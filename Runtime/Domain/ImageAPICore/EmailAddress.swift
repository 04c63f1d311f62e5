import Foundation

/// The rule for e-mail addresses, which the input checks and the settings both apply.
public enum EmailAddress {
    /// The longest address (RFC 5321).
    public static let maximumLength = 254

    /// Whether text looks like an address: one `@`, a non-empty local part, a dotted domain,
    /// no spaces, at most ``maximumLength`` characters.
    /// - Parameter email: The address.
    /// - Returns: `true` when plausible.
    public static func isPlausible(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= maximumLength, parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64,
            !email.contains(where: { $0.isWhitespace || $0.isNewline })
        else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") }
    }
}
