import Crypto
import Foundation
import FunctionsFramework
import _CryptoExtras

/// Verifies the OIDC token that a Pub/Sub push subscription with authentication sends in
/// `Authorization: Bearer …`: an RS256-signed JWT from Google whose audience is this service and
/// whose `email` is the subscription's service account.
///
/// Checked: the signature against Google's published keys (by `kid`), `alg` = RS256, `iss`
/// (`https://accounts.google.com` or `accounts.google.com`), `aud`, `exp` and `iat` with a minute
/// of leeway, `email` and `email_verified`.
public struct GoogleOIDCAuthenticator: EventAuthenticator {
    /// The issuers Google writes in its ID tokens.
    public static let issuers: Set<String> = ["https://accounts.google.com", "accounts.google.com"]
    /// Clock skew tolerated on `exp` and `iat`.
    public static let leeway: TimeInterval = 60

    /// The audience the subscription was configured with (the service URL, by default).
    public let audience: String
    /// The push subscription's service account e-mail.
    public let serviceAccount: String
    private let keys: any SigningKeySource
    private let now: @Sendable () -> Date

    /// Creates the authenticator.
    /// - Parameters:
    ///   - audience: The expected `aud` claim.
    ///   - serviceAccount: The expected `email` claim.
    ///   - keys: Where Google's public keys come from.
    ///   - now: The clock (tests move it).
    public init(
        audience: String, serviceAccount: String, keys: any SigningKeySource,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.audience = audience
        self.serviceAccount = serviceAccount.lowercased()
        self.keys = keys
        self.now = now
    }

    /// Verifies the bearer token.
    /// - Parameter request: The delivery.
    /// - Throws: ``FunctionError`` 401 for a missing, malformed, badly signed or expired token,
    ///   403 for a valid token of another audience or account, 503 when the keys are unavailable.
    public func authenticate(_ request: EventCaller) async throws {
        guard let token = request.bearerToken else {
            throw FunctionError.unauthorized("Event deliveries need a Google OIDC token")
        }
        let claims = try await verifiedClaims(token)
        let date = now().timeIntervalSince1970
        guard let expiry = claims.exp, expiry + Self.leeway > date else {
            throw FunctionError.unauthorized("The OIDC token has expired")
        }
        if let issuedAt = claims.iat, issuedAt - Self.leeway > date {
            throw FunctionError.unauthorized("The OIDC token is issued in the future")
        }
        guard let issuer = claims.iss, Self.issuers.contains(issuer) else {
            throw FunctionError.unauthorized("The OIDC token is not issued by Google")
        }
        guard claims.aud == audience else {
            throw FunctionError.forbidden("The OIDC token is for another audience")
        }
        guard claims.email?.lowercased() == serviceAccount, claims.email_verified == true else {
            throw FunctionError.forbidden("The OIDC token belongs to another account")
        }
    }

    /// The claims this authenticator reads.
    struct Claims: Decodable {
        let iss: String?
        let aud: String?
        let exp: TimeInterval?
        let iat: TimeInterval?
        let email: String?
        let email_verified: Bool?
    }

    struct Header: Decodable {
        let alg: String
        let kid: String?
    }

    private func verifiedClaims(_ token: String) async throws -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Base64URL.decode(parts[0]),
            let payloadData = Base64URL.decode(parts[1]), let signature = Base64URL.decode(parts[2]),
            let header = try? JSONDecoder().decode(Header.self, from: headerData)
        else { throw FunctionError.unauthorized("The OIDC token is malformed") }
        guard header.alg == "RS256", let kid = header.kid else {
            throw FunctionError.unauthorized("The OIDC token is not signed with RS256 and a key id")
        }
        guard let key = try await keys.key(id: kid) else {
            throw FunctionError.unauthorized("The OIDC token is signed with an unknown key")
        }
        let signingInput = Data("\(parts[0]).\(parts[1])".utf8)
        guard
            key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signingInput),
                padding: .insecurePKCS1v1_5)
        else { throw FunctionError.unauthorized("The OIDC token's signature is not valid") }
        guard let claims = try? JSONDecoder().decode(Claims.self, from: payloadData) else {
            throw FunctionError.unauthorized("The OIDC token's claims are malformed")
        }
        return claims
    }
}

/// Base64url without padding, as JWTs and JWKs write it.
public enum Base64URL {
    /// Decodes base64url text, padded or not.
    /// - Parameter text: The text.
    /// - Returns: The bytes, or `nil` when the text is not base64url.
    public static func decode(_ text: some StringProtocol) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    /// Encodes bytes as base64url without padding.
    /// - Parameter data: The bytes.
    /// - Returns: The text.
    public static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
