import Crypto
import Foundation
import GoogleCloudAuth
import OutboundHTTP

/// Cloud Storage's V4 signed download URLs (`GOOG4-RSA-SHA256`): a `GET` of one object that the
/// holder may make without credentials until the URL expires.
///
/// The canonical request is `GET`, the path `/<bucket>/<object>` (each segment percent-encoded),
/// the sorted query (`X-Goog-Algorithm`, `X-Goog-Credential`, `X-Goog-Date`, `X-Goog-Expires`,
/// `X-Goog-SignedHeaders=host`, and `response-content-disposition` when asked), the `host`
/// header alone, and `UNSIGNED-PAYLOAD`; the string to sign is the algorithm, the time, the
/// credential scope (`<date>/auto/storage/goog4_request`) and the canonical request's SHA-256,
/// signed as the service account, the signature appended as `X-Goog-Signature` in hex.
public struct CloudStorageURLSigner: Sendable {
    /// The longest validity V4 allows: 7 days.
    public static let maximumLifetime = 604_800

    /// Where the URLs point: `https://storage.googleapis.com`, or an emulator.
    public let endpoint: URL
    /// How long a URL stays valid, in seconds.
    public let lifetime: Int
    private let email: @Sendable () async throws -> String
    private let sign: @Sendable (Data) async throws -> Data

    /// A signer over a service account.
    /// - Parameters:
    ///   - endpoint: Where the URLs point.
    ///   - lifetime: How long a URL stays valid, in seconds (1 to ``maximumLifetime``).
    ///   - signer: Signs as the service account.
    public init(endpoint: URL, lifetime: Int, signer: GoogleServiceAccountSigner) {
        self.init(
            endpoint: endpoint, lifetime: lifetime, email: { try await signer.serviceAccountEmail() },
            sign: { try await signer.sign($0) })
    }

    /// A signer over any account and signing function.
    /// - Parameters:
    ///   - endpoint: Where the URLs point.
    ///   - lifetime: How long a URL stays valid, in seconds.
    ///   - email: The service account's e-mail address.
    ///   - sign: RSA SHA-256 (PKCS #1 v1.5) as that account.
    public init(
        endpoint: URL, lifetime: Int, email: @escaping @Sendable () async throws -> String,
        sign: @escaping @Sendable (Data) async throws -> Data
    ) {
        self.endpoint = endpoint
        self.lifetime = lifetime
        self.email = email
        self.sign = sign
    }

    /// The parts of one signed URL, kept for tests and logs.
    public struct Signed: Sendable {
        /// The URL.
        public let url: URL
        /// The canonical request that was hashed.
        public let canonicalRequest: String
        /// The string that was signed.
        public let stringToSign: String
    }

    /// Signs a download of one object.
    /// - Parameters:
    ///   - bucket: The bucket.
    ///   - object: The object's name.
    ///   - contentDisposition: The `Content-Disposition` the download answers with, if any.
    ///   - now: The signing time.
    /// - Returns: The URL and what was signed.
    public func download(
        bucket: String, object: String, contentDisposition: String? = nil, now: Date = Date()
    ) async throws -> Signed {
        let account = try await email()
        let time = Self.timestamp(now)
        let scope = "\(time.prefix(8))/auto/storage/goog4_request"
        var parameters = [
            ("X-Goog-Algorithm", "GOOG4-RSA-SHA256"), ("X-Goog-Credential", "\(account)/\(scope)"),
            ("X-Goog-Date", time), ("X-Goog-Expires", String(lifetime)), ("X-Goog-SignedHeaders", "host"),
        ]
        if let contentDisposition { parameters.append(("response-content-disposition", contentDisposition)) }
        let query = parameters.map { (ServiceCaller.escaped($0.0), ServiceCaller.escaped($0.1)) }
            .sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let path = "/\(ServiceCaller.escaped(bucket))/\(ServiceCaller.escapedPath(object))"
        var host = endpoint.host ?? "storage.googleapis.com"
        if let port = endpoint.port { host += ":\(port)" }
        let canonicalRequest = ["GET", path, query, "host:\(host)\n", "host", "UNSIGNED-PAYLOAD"]
            .joined(separator: "\n")
        let stringToSign = [
            "GOOG4-RSA-SHA256", time, scope, Self.hex(Data(SHA256.hash(data: Data(canonicalRequest.utf8)))),
        ].joined(separator: "\n")
        let signature = Self.hex(try await sign(Data(stringToSign.utf8)))
        let base =
            endpoint.absoluteString.hasSuffix("/")
            ? String(endpoint.absoluteString.dropLast()) : endpoint.absoluteString
        guard let url = URL(string: "\(base)\(path)?\(query)&X-Goog-Signature=\(signature)") else {
            throw ServiceCallError(
                api: "Cloud Storage", operation: "sign a download of \(object)", status: nil,
                detail: "the signed URL does not parse")
        }
        return Signed(url: url, canonicalRequest: canonicalRequest, stringToSign: stringToSign)
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` in UTC.
    static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!,
            parts.second!)
    }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
}
