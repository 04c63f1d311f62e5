import Crypto
import Foundation
import GoogleCloudAuth
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Locking
import Testing
import _CryptoExtras

/// A stand-in for Google's OAuth token endpoint and the metadata server's token path, answering
/// as Google documents them. Nothing here reaches Google: the tests check the requests' wire
/// format against that documentation.
final class TokenServer: Sendable {
    let key: _RSA.Signing.PrivateKey
    let scope = "https://www.googleapis.com/auth/devstorage.read_write"
    /// How many tokens were handed out.
    let issued = Locked(0)
    /// What the token endpoint answers instead of a token, when set.
    let refusal = Locked<(HTTPResponse.Status, String)?>(nil)

    init() throws {
        key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
    }

    func keyFile(tokenURI: String) throws -> Data {
        try JSONSerialization.data(withJSONObject: [
            "type": "service_account", "client_email": "images@project.iam.gserviceaccount.com",
            "private_key_id": "key-1", "private_key": key.pemRepresentation, "token_uri": tokenURI,
        ])
    }

    private func tokenAnswer() -> Response {
        let number = issued.withLock { count in
            count += 1
            return count
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(
                byteBuffer: ByteBuffer(
                    string: #"{"access_token":"ya29.token-\#(number)","expires_in":3599,"token_type":"Bearer"}"#)))
    }

    /// Checks a JWT-bearer grant as the service-account flow documents it.
    private func checkGrant(_ form: String, tokenURI: String) throws {
        let fields = Dictionary(
            uniqueKeysWithValues: form.split(separator: "&").map { pair -> (String, String) in
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                return (parts[0], (parts.count > 1 ? parts[1] : "").removingPercentEncoding ?? "")
            })
        #expect(fields["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer")
        let parts = try #require(fields["assertion"]).split(separator: ".").map(String.init)
        try #require(parts.count == 3)
        let header = try JSONSerialization.jsonObject(with: Self.decode(parts[0])) as? [String: Any]
        #expect(header?["alg"] as? String == "RS256" && header?["kid"] as? String == "key-1")
        let claims = try #require(try JSONSerialization.jsonObject(with: Self.decode(parts[1])) as? [String: Any])
        #expect(claims["iss"] as? String == "images@project.iam.gserviceaccount.com")
        #expect(claims["scope"] as? String == scope)
        #expect(claims["aud"] as? String == tokenURI)
        let iat = try #require(claims["iat"] as? Int)
        #expect(claims["exp"] as? Int == iat + 3600)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: Self.decode(parts[2]))
        #expect(
            key.publicKey.isValidSignature(
                signature, for: SHA256.hash(data: Data((parts[0] + "." + parts[1]).utf8)), padding: .insecurePKCS1v1_5))
    }

    static func decode(_ text: String) -> Data {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64) ?? Data()
    }

    /// Runs `body` with the server on a free loopback port.
    func serving<T: Sendable>(_ body: @Sendable (_ base: String) async throws -> T) async throws -> T {
        let router = Router()
        let portBox = Locked(0)
        router.post("/token") { request, _ in
            if let (status, text) = self.refusal.withLock({ $0 }) {
                return Response(status: status, body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            let form = String(buffer: try await request.body.collect(upTo: 1 << 16))
            try self.checkGrant(form, tokenURI: "http://127.0.0.1:\(portBox.withLock { $0 })/token")
            return self.tokenAnswer()
        }
        router.get("/computeMetadata/v1/instance/service-accounts/default/token") { request, _ in
            guard request.headers[HTTPField.Name("Metadata-Flavor")!] == "Google" else {
                return Response(status: .forbidden)
            }
            #expect(request.uri.queryParameters["scopes"].map(String.init) == self.scope)
            return self.tokenAnswer()
        }
        return try await Application(router: router).test(.live) { client in
            let port = try #require(client.port)
            portBox.withLock { $0 = port }
            return try await body("127.0.0.1:\(port)")
        }
    }
}

@Suite("Google access tokens")
struct GoogleAccessTokensTests {
    @Test(
        "service-account key: the documented JWT-bearer grant (local test server, not Google); cached, one refresh for many callers"
    )
    func serviceAccount() async throws {
        let server = try TokenServer()
        try await server.serving { host in
            let tokenURI = "http://\(host)/token"
            let clock = Locked(Date(timeIntervalSince1970: 1_800_000_000))
            let tokens = GoogleAccessTokens(
                source: .serviceAccount(
                    try ServiceAccountKey(json: try server.keyFile(tokenURI: tokenURI), path: "key.json"),
                    path: "key.json"),
                scopes: [server.scope], now: { clock.withLock { $0 } })
            #expect(try await tokens.authorization() == "Bearer ya29.token-1")
            #expect(try await tokens.authorization() == "Bearer ya29.token-1", "cached while valid")
            // Past the refresh margin: twenty callers at once share one new token.
            clock.withLock { $0 = $0.addingTimeInterval(3599 - GoogleAccessTokens.refreshMargin + 1) }
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await tokens.authorization() } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(values == ["Bearer ya29.token-2"])
            #expect(server.issued.withLock { $0 } == 2)
        }
    }

    @Test("metadata server: the documented token request with Metadata-Flavor: Google (local test server, not Google)")
    func metadataServer() async throws {
        let server = try TokenServer()
        try await server.serving { host in
            let tokens = try GoogleAccessTokens.applicationDefault(
                variables: ["GCE_METADATA_HOST": host], scopes: [server.scope])
            #expect(tokens.sourceDescription == "metadata server \(host)")
            #expect(try await tokens.token().value == "ya29.token-1")
        }
    }

    @Test("errors name the credential source: a refused grant, an unreadable or foreign key file")
    func errorsNameTheSource() async throws {
        let server = try TokenServer()
        server.refusal.withLock { $0 = (.badRequest, #"{"error":"invalid_grant"}"#) }
        try await server.serving { host in
            let tokens = GoogleAccessTokens(
                source: .serviceAccount(
                    try ServiceAccountKey(json: try server.keyFile(tokenURI: "http://\(host)/token"), path: "k.json"),
                    path: "k.json"),
                scopes: [server.scope])
            let refused = await #expect(throws: GoogleCredentialsError.self) { try await tokens.token() }
            #expect(refused?.description.contains("images@project.iam.gserviceaccount.com") == true)
            #expect(refused?.description.contains("HTTP 400") == true)
        }
        let missing = #expect(throws: GoogleCredentialsError.self) {
            try GoogleAccessTokens.applicationDefault(
                variables: ["GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"], scopes: [])
        }
        #expect(missing?.description.contains("/nonexistent/key.json") == true)
        let foreign = #expect(throws: GoogleCredentialsError.self) {
            try ServiceAccountKey(json: Data(#"{"type":"authorized_user"}"#.utf8), path: "user.json")
        }
        #expect(foreign?.description.contains("not a service-account key") == true)
    }
}
