import Foundation

/// The text of an API key: `imk_<32 hex digits: key id>_<43 base64url characters: secret>`.
///
/// The `imk_` prefix makes keys recognisable (to people and to secret scanners); the id finds
/// the stored record without scanning; the secret is 32 bytes from the system's cryptographic
/// generator, of which only an HMAC is stored.
public struct APIKeyText: Sendable, Equatable {
    /// The fixed start of every key.
    public static let prefix = "imk_"
    /// How many random bytes the secret holds.
    public static let secretByteCount = 32
    /// The format, for error messages.
    public static let formatDescription = "imk_<32 hex digits>_<43 base64url characters>"

    /// The key record's id.
    public let keyID: APIKeyID
    /// The secret part, as written in the key.
    public let secret: String

    /// The full key text.
    public var text: String {
        Self.prefix + keyID.uuid.uuidString.replacingOccurrences(of: "-", with: "").lowercased() + "_" + secret
    }

    /// The part shown in listings to recognise the key: the prefix and 8 hex digits of the id.
    public var displayPrefix: String { String(text.prefix(Self.prefix.count + 8)) }

    /// Makes a new key with a fresh id and secret.
    /// - Parameter generator: The random source; the system one is cryptographically secure.
    /// - Returns: The new key text.
    public static func generate(using generator: inout some RandomNumberGenerator) -> APIKeyText {
        var bytes = [UInt8](repeating: 0, count: secretByteCount)
        for index in bytes.indices { bytes[index] = generator.next() }
        var idBytes = [UInt8](repeating: 0, count: 16)
        for index in idBytes.indices { idBytes[index] = generator.next() }
        idBytes[6] = (idBytes[6] & 0x0F) | 0x40  // version 4
        idBytes[8] = (idBytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let id = UUID(
            uuid: (
                idBytes[0], idBytes[1], idBytes[2], idBytes[3], idBytes[4], idBytes[5], idBytes[6], idBytes[7],
                idBytes[8], idBytes[9], idBytes[10], idBytes[11], idBytes[12], idBytes[13], idBytes[14], idBytes[15]
            ))
        return APIKeyText(keyID: APIKeyID(uuid: id), secret: Data(bytes).base64URLEncoded())
    }

    /// Parses key text.
    /// - Parameter text: The presented key.
    /// - Returns: `nil` unless the text has exactly the key format.
    public init?(parsing text: String) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let body = text.dropFirst(Self.prefix.count)
        let parts = body.split(separator: "_", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 32, parts[0].allSatisfy(\.isHexDigit), parts[1].count == 43,
            parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else { return nil }
        let hex = parts[0]
        var dashed = ""
        for (offset, character) in hex.enumerated() {
            if [8, 12, 16, 20].contains(offset) { dashed.append("-") }
            dashed.append(character)
        }
        guard let id = APIKeyID(dashed) else { return nil }
        self.init(keyID: id, secret: String(parts[1]))
    }

    /// Creates key text from its parts.
    /// - Parameters:
    ///   - keyID: The record id.
    ///   - secret: The secret part.
    public init(keyID: APIKeyID, secret: String) {
        self.keyID = keyID
        self.secret = secret
    }
}

extension Data {
    /// Base64url without padding (RFC 4648 §5).
    func base64URLEncoded() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
