import AsyncHTTPClient
import Crypto
import Foundation
import Locking
import NIOCore
import NIOFoundationCompat
import OutboundHTTP
import RuntimeSupport
import _CryptoExtras

/// Why no access token could be had, naming the credential source.
public struct GoogleCredentialsError: Error, CustomStringConvertible {
    /// Where the credentials came from (`service account key /path/key.json`, `metadata server`).
    public let source: String
    /// What went wrong.
    public let reason: String

    /// `Google credentials (<source>): <reason>`.
    public var description: String { "Google credentials (\(source)): \(reason)" }
}

/// An OAuth 2 access token and when it stops working.
public struct GoogleAccessToken: Sendable, Equatable {
    /// The bearer token.
    public let value: String
    /// When it expires.
    public let expiresAt: Date
}

/// Application Default Credentials, in Google's order: the service-account key file named by
/// `GOOGLE_APPLICATION_CREDENTIALS` (an RS256-signed JWT exchanged at the key's token endpoint),
/// else the metadata server (on Cloud Run; `GCE_METADATA_HOST` names another host, as Google's
/// client libraries allow).
///
/// Tokens are cached and refreshed ``refreshMargin`` before they expire; concurrent callers
/// share one refresh in flight.
public final class GoogleAccessTokens: Sendable {
    /// How long before expiry a token is replaced.
    public static let refreshMargin: TimeInterval = 300
    /// The metadata server's usual host.
    public static let defaultMetadataHost = "metadata.google.internal"

    /// Where tokens come from.
    public enum Source: Sendable {
        /// A service-account key: the JWT-bearer grant at its token endpoint.
        case serviceAccount(ServiceAccountKey, path: String)
        /// The metadata server at this host (`host` or `host:port`).
        case metadataServer(host: String)
    }

    /// Where tokens come from.
    public let source: Source
    private let scopes: [String]
    private let client: HTTPClient
    private let now: @Sendable () -> Date
    private let state = Locked<(token: GoogleAccessToken?, refresh: Task<GoogleAccessToken, any Error>?)>((nil, nil))

    /// Tokens from a known source.
    /// - Parameters:
    ///   - source: The credentials.
    ///   - scopes: The OAuth scopes asked for (`https://www.googleapis.com/auth/devstorage.read_write`).
    ///   - client: The HTTP client.
    ///   - now: The clock (tests move it).
    public init(
        source: Source, scopes: [String], client: HTTPClient = ServiceCaller.client,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.source = source
        self.scopes = scopes
        self.client = client
        self.now = now
    }

    /// Application Default Credentials from the process's variables.
    /// - Parameters:
    ///   - variables: `GOOGLE_APPLICATION_CREDENTIALS` and `GCE_METADATA_HOST`, when set.
    ///   - scopes: The OAuth scopes asked for.
    /// - Returns: The token source.
    /// - Throws: ``GoogleCredentialsError`` when the key file cannot be read or is not a
    ///   service-account key.
    public static func applicationDefault(variables: [String: String], scopes: [String]) throws -> GoogleAccessTokens {
        if let path = variables["GOOGLE_APPLICATION_CREDENTIALS"], !path.isEmpty {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw GoogleCredentialsError(source: "service account key \(path)", reason: "cannot be read: \(error)")
            }
            return GoogleAccessTokens(
                source: .serviceAccount(try ServiceAccountKey(json: data, path: path), path: path), scopes: scopes)
        }
        let host = variables["GCE_METADATA_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultMetadataHost
        return GoogleAccessTokens(source: .metadataServer(host: host), scopes: scopes)
    }

    /// Application Default Credentials for an adapter's factory: a key file that cannot be used
    /// is a configuration error naming `GOOGLE_APPLICATION_CREDENTIALS`, so the process stops at
    /// start (78) instead of failing its first call.
    /// - Parameters:
    ///   - variables: The adapter's variables (`GOOGLE_APPLICATION_CREDENTIALS`, `GCE_METADATA_HOST`).
    ///   - scope: The OAuth scope the adapter's calls need.
    /// - Returns: The token source.
    /// - Throws: ``ConfigurationError`` for an unreadable or foreign key file.
    public static func configured(_ variables: EnvironmentVariables, scope: String) throws -> GoogleAccessTokens {
        do {
            return try applicationDefault(variables: variables.values, scopes: [scope])
        } catch let error as GoogleCredentialsError {
            throw ConfigurationError(variable: "GOOGLE_APPLICATION_CREDENTIALS", reason: error.description)
        }
    }

    /// Names the source in errors and logs.
    public var sourceDescription: String {
        switch source {
        case .serviceAccount(let key, let path): "service account \(key.clientEmail) (key \(path))"
        case .metadataServer(let host): "metadata server \(host)"
        }
    }

    /// The `Authorization` header's value: `Bearer <token>`.
    /// - Throws: ``GoogleCredentialsError`` when no token can be had.
    public func authorization() async throws -> String {
        "Bearer \(try await token().value)"
    }

    /// A token valid for at least ``refreshMargin`` more, from the cache or fetched now.
    /// - Throws: ``GoogleCredentialsError`` when no token can be had.
    public func token() async throws -> GoogleAccessToken {
        let current = now()
        let refresh: Task<GoogleAccessToken, any Error>? = state.withLock { state in
            if let refresh = state.refresh { return refresh }
            if let token = state.token, token.expiresAt.timeIntervalSince(current) > Self.refreshMargin { return nil }
            let refresh = Task { try await self.fetch() }
            state.refresh = refresh
            return refresh
        }
        guard let refresh else {
            if let token = state.withLock({ $0.token }) { return token }
            return try await self.token()
        }
        do {
            let token = try await refresh.value
            state.withLock { state in
                state.token = token
                state.refresh = nil
            }
            return token
        } catch {
            state.withLock { $0.refresh = nil }
            throw error
        }
    }

    private func fetch() async throws -> GoogleAccessToken {
        let issued = now()
        var request: HTTPClientRequest
        switch source {
        case .serviceAccount(let key, _):
            request = HTTPClientRequest(url: key.tokenURI)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let assertion = try key.signedAssertion(scopes: scopes, issuedAt: issued)
            let form =
                "grant_type=\(ServiceCaller.escaped("urn:ietf:params:oauth:grant-type:jwt-bearer"))&assertion=\(assertion)"
            request.body = .bytes(ByteBuffer(string: form))
        case .metadataServer(let host):
            let scopeQuery = scopes.isEmpty ? "" : "?scopes=\(ServiceCaller.escaped(scopes.joined(separator: ",")))"
            request = HTTPClientRequest(
                url: "http://\(host)/computeMetadata/v1/instance/service-accounts/default/token\(scopeQuery)")
            request.headers.add(name: "Metadata-Flavor", value: "Google")
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(10))
        } catch {
            throw GoogleCredentialsError(source: sourceDescription, reason: "token endpoint unreachable: \(error)")
        }
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw GoogleCredentialsError(
                source: sourceDescription,
                reason: "token request answered HTTP \(response.status.code): \(String(buffer: body).prefix(300))")
        }
        struct Answer: Decodable {
            let access_token: String
            let expires_in: Int
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(buffer: body)) else {
            throw GoogleCredentialsError(source: sourceDescription, reason: "the token answer has no access_token")
        }
        return GoogleAccessToken(
            value: answer.access_token, expiresAt: issued.addingTimeInterval(TimeInterval(answer.expires_in)))
    }
}

/// The parts of a service-account key file (`"type": "service_account"`) that sign tokens.
public struct ServiceAccountKey: Sendable {
    /// The account, the JWT's issuer.
    public let clientEmail: String
    /// The key's id, the JWT's `kid`.
    public let privateKeyID: String
    /// Where the signed JWT is exchanged for a token.
    public let tokenURI: String
    private let privateKeyPEM: String

    /// Reads a key file.
    /// - Parameters:
    ///   - json: The file's contents.
    ///   - path: The file's path, for errors.
    /// - Throws: ``GoogleCredentialsError`` when it is not a usable service-account key.
    public init(json: Data, path: String) throws {
        struct File: Decodable {
            let type: String?
            let client_email: String?
            let private_key_id: String?
            let private_key: String?
            let token_uri: String?
        }
        let source = "service account key \(path)"
        guard let file = try? JSONDecoder().decode(File.self, from: json) else {
            throw GoogleCredentialsError(source: source, reason: "is not JSON")
        }
        guard file.type == "service_account", let email = file.client_email, let pem = file.private_key else {
            throw GoogleCredentialsError(
                source: source, reason: "is not a service-account key (type, client_email and private_key are needed)")
        }
        guard (try? _RSA.Signing.PrivateKey(pemRepresentation: pem)) != nil else {
            throw GoogleCredentialsError(source: source, reason: "private_key is not an RSA key in PEM form")
        }
        self.clientEmail = email
        self.privateKeyID = file.private_key_id ?? ""
        self.tokenURI = file.token_uri ?? "https://oauth2.googleapis.com/token"
        self.privateKeyPEM = pem
    }

    /// The JWT-bearer assertion Google's token endpoint takes: RS256 over
    /// `{"alg":"RS256","typ":"JWT","kid":…}.{"iss":…,"scope":…,"aud":token_uri,"iat":…,"exp":iat+3600}`.
    /// - Parameters:
    ///   - scopes: The scopes asked for, space-separated in the claim.
    ///   - issuedAt: Now.
    /// - Returns: The compact JWT.
    public func signedAssertion(scopes: [String], issuedAt: Date) throws -> String {
        let issued = Int(issuedAt.timeIntervalSince1970)
        let header: [String: String] = ["alg": "RS256", "typ": "JWT", "kid": privateKeyID]
        struct Claims: Encodable {
            let iss: String
            let scope: String
            let aud: String
            let iat: Int
            let exp: Int
        }
        let claims = Claims(
            iss: clientEmail, scope: scopes.joined(separator: " "), aud: tokenURI, iat: issued, exp: issued + 3600)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let signingInput =
            Self.base64URL(try encoder.encode(header)) + "." + Self.base64URL(try encoder.encode(claims))
        return signingInput + "." + Self.base64URL(try sign(Data(signingInput.utf8)))
    }

    /// Signs bytes with the key: RSA with SHA-256 and PKCS #1 v1.5 padding (RS256, and the
    /// signature of Cloud Storage's V4 signed URLs).
    /// - Parameter bytes: What to sign.
    /// - Returns: The signature.
    public func sign(_ bytes: Data) throws -> Data {
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        return try key.signature(for: SHA256.hash(data: bytes), padding: .insecurePKCS1v1_5).rawRepresentation
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
