import AsyncHTTPClient
import Foundation
import Locking
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OutboundHTTP

/// Signs bytes as the service account of a set of credentials (RSA with SHA-256, PKCS #1 v1.5),
/// as Cloud Storage's V4 signed URLs need: with the private key of a service-account key file, or
/// on Cloud Run, where there is no key, through the IAM Service Account Credentials API's
/// `signBlob` for the metadata server's account.
public final class GoogleServiceAccountSigner: Sendable {
    /// The scope `signBlob` needs.
    public static let scope = "https://www.googleapis.com/auth/cloud-platform"

    private let source: GoogleAccessTokens.Source
    private let tokens: GoogleAccessTokens
    private let client: HTTPClient
    private let iamEndpoint: String
    private let email = Locked<String?>(nil)

    /// A signer for the account of these credentials.
    /// - Parameters:
    ///   - source: The credentials.
    ///   - iamEndpoint: The IAM Service Account Credentials API's base URL.
    ///   - client: The HTTP client.
    public init(
        source: GoogleAccessTokens.Source, iamEndpoint: String = "https://iamcredentials.googleapis.com",
        client: HTTPClient = ServiceCaller.client
    ) {
        self.source = source
        self.tokens = GoogleAccessTokens(source: source, scopes: [Self.scope], client: client)
        self.client = client
        self.iamEndpoint = iamEndpoint.hasSuffix("/") ? String(iamEndpoint.dropLast()) : iamEndpoint
    }

    /// The service account's e-mail address: the key file's `client_email`, or the metadata
    /// server's default account (asked once).
    /// - Throws: ``GoogleCredentialsError`` when the metadata server cannot say.
    public func serviceAccountEmail() async throws -> String {
        switch source {
        case .serviceAccount(let key, _):
            return key.clientEmail
        case .metadataServer(let host):
            if let known = email.withLock({ $0 }) { return known }
            let caller = ServiceCaller(api: "metadata server \(host)", client: client)
            let response = try await caller.send(
                .GET, "http://\(host)/computeMetadata/v1/instance/service-accounts/default/email",
                headers: ["Metadata-Flavor": "Google"], operation: "GET service account e-mail", idempotent: true,
                timeout: .seconds(10))
            guard response.status == .ok else { throw await caller.failure(response, "GET service account e-mail") }
            let address = String(buffer: try await response.body.collect(upTo: 4096))
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard address.contains("@") else {
                throw GoogleCredentialsError(
                    source: "metadata server \(host)",
                    reason: "answered no service-account e-mail: \(address.prefix(100))")
            }
            email.withLock { $0 = address }
            return address
        }
    }

    /// Signs bytes.
    /// - Parameter bytes: What to sign (a V4 string-to-sign).
    /// - Returns: The RSA SHA-256 signature.
    /// - Throws: ``GoogleCredentialsError`` or ``ServiceCallError`` when it cannot be signed.
    public func sign(_ bytes: Data) async throws -> Data {
        switch source {
        case .serviceAccount(let key, _):
            return try key.sign(bytes)
        case .metadataServer:
            let account = try await serviceAccountEmail()
            let caller = ServiceCaller(api: "IAM Credentials") { try await self.tokens.authorization() }
            let operation = "signBlob as \(account)"
            struct Request: Encodable { let payload: String }
            struct Answer: Decodable { let signedBlob: String }
            let response = try await caller.send(
                .POST, "\(iamEndpoint)/v1/projects/-/serviceAccounts/\(path(account)):signBlob",
                headers: ["Content-Type": "application/json"],
                body: ByteBuffer(data: try JSONEncoder().encode(Request(payload: bytes.base64EncodedString()))),
                operation: operation, idempotent: true, timeout: .seconds(10))
            guard response.status == .ok else { throw await caller.failure(response, operation) }
            let body = try await response.body.collect(upTo: 1 << 16)
            guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(buffer: body)),
                let signature = Data(base64Encoded: answer.signedBlob)
            else {
                throw ServiceCallError(
                    api: "IAM Credentials", operation: operation, status: 200, detail: "the answer has no signedBlob")
            }
            return signature
        }
    }

    /// The account as the documented URL writes it (`name@project.iam.gserviceaccount.com`: `@`
    /// is allowed in a path), anything unusual percent-encoded.
    private func path(_ account: String) -> String {
        account.addingPercentEncoding(withAllowedCharacters: ServiceCaller.unreserved.union(["@"])) ?? account
    }
}
