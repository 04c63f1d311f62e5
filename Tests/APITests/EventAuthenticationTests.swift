import Crypto
import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ImageAPICore
import LocalPush
import PushAuthentication
import Testing
import _CryptoExtras

/// Signs ID tokens the way Google signs a Pub/Sub push subscription's OIDC token (RS256, `kid`
/// in the header, the documented claims), with a key the test makes, and serves the public half
/// as a JSON Web Key Set shaped like `https://www.googleapis.com/oauth2/v3/certs`.
struct TestTokenIssuer: Sendable {
    let keyID = "test-key-1"
    let key: _RSA.Signing.PrivateKey
    let audience = "https://process-embedding-abc123-uc.a.run.app"
    let account = "pubsub-push@demo-project.iam.gserviceaccount.com"

    init() throws {
        key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
    }

    /// The key set body, as Google publishes it.
    func keySet() throws -> String {
        let primitives = try key.publicKey.getKeyPrimitives()
        let jwk: [String: String] = [
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": keyID,
            "n": Base64URL.encode(primitives.modulus), "e": Base64URL.encode(primitives.publicExponent),
        ]
        let data = try JSONSerialization.data(withJSONObject: ["keys": [jwk]], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// A token with the claims a push subscription's token carries; `change` edits them.
    func token(
        issuedAt: Date = Date(), keyID: String? = nil, signingKey: _RSA.Signing.PrivateKey? = nil,
        _ change: (inout [String: Any]) -> Void = { _ in }
    ) throws -> String {
        var claims: [String: Any] = [
            "aud": audience, "azp": "1234567890", "email": account, "email_verified": true,
            "exp": Int(issuedAt.timeIntervalSince1970) + 3600, "iat": Int(issuedAt.timeIntervalSince1970),
            "iss": "https://accounts.google.com", "sub": "1234567890",
        ]
        change(&claims)
        let header = try JSONSerialization.data(withJSONObject: [
            "alg": "RS256", "kid": keyID ?? self.keyID, "typ": "JWT",
        ])
        let payload = try JSONSerialization.data(withJSONObject: claims)
        let input = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let signature = try (signingKey ?? key).signature(
            for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// Runs `body` with the key set served over HTTP on a free loopback port.
    func serving<T: Sendable>(_ body: @Sendable (_ url: String) async throws -> T) async throws -> T {
        let keySet = try keySet()
        let router = Router()
        router.get("/oauth2/v3/certs") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json", .cacheControl: "public, max-age=20000, must-revalidate"],
                body: .init(byteBuffer: ByteBuffer(string: keySet)))
        }
        return try await Application(router: router).test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))/oauth2/v3/certs")
        }
    }
}

@Suite("Event route authentication")
struct EventAuthenticationTests {
    /// A processing delivery for an image, as the local Pub/Sub would push it.
    func delivery(for image: ImageRecord, at date: Date, id: String = "m-1") throws -> (HTTPFields, String) {
        let message = OutboxMessage.processing(
            ImageProcessingRequest(imageID: image.id, teamID: image.teamID, reason: "upload"))
        let queued = QueuedMessage(
            message: OutboxMessage(topic: message.topic, messageID: id, data: message.data), publishedAt: date,
            attempts: 1)
        var headers: HTTPFields = [:]
        for (name, value) in LocalPushPublisher.headers(for: queued) { headers[HTTPField.Name(name)!] = value }
        return (headers, String(decoding: try LocalPushPublisher.body(for: queued), as: UTF8.self))
    }

    @Test("a shared push token: refused without it or with another, accepted as Bearer or ?token=")
    func sharedToken() async throws {
        let token = "a-push-token-of-some-length"
        let api = try TestAPI(environment: .production, eventAuthenticator: SharedPushTokenAuthenticator(token: token))
        try await api.run { (client) async throws in
            let admin = try await api.bootstrapAdmin()
            let team = try await client.createTeam("Desk", key: admin.key).decode(Team.self)
            let member = try await client.member(of: team, email: "ann@example.com", adminKey: admin.key)
            let image = try await client.upload("sunset.jpg", key: member.key).decode(ImageRecord.self)
            var (headers, body) = try delivery(for: image, at: api.clock.now())

            let missing = try await client.send(.post, LocalPushFactory.defaultPushPath, headers: headers, json: body)
            #expect(missing.status == .unauthorized)
            #expect(missing.detail?.contains("push token") == true)
            #expect(missing.headers[.wwwAuthenticate] != nil)
            headers[.authorization] = "Bearer not-the-push-token-at-all"
            #expect(
                try await client.send(.post, LocalPushFactory.defaultPushPath, headers: headers, json: body).status
                    == .unauthorized)
            headers[.authorization] = nil
            #expect(
                try await client.send(
                    .post, LocalPushFactory.defaultPushPath + "?token=wrong", headers: headers, json: body
                )
                .status == .unauthorized)
            // Nothing was processed by the refused deliveries.
            var stored = try await client.getImage(image.id, key: member.key).decode(ImageRecord.self)
            #expect(stored.embeddingStatus == .pending && stored.embeddingAttempts == 0)

            let accepted = try await client.send(
                .post, LocalPushFactory.defaultPushPath + "?token=\(token)", headers: headers, json: body)
            #expect(accepted.status == .noContent)
            stored = try await client.getImage(image.id, key: member.key).decode(ImageRecord.self)
            #expect(stored.embeddingStatus == .success && stored.embeddingAttempts == 1)
            headers[.authorization] = "Bearer \(token)"
            #expect(
                try await client.send(.post, LocalPushFactory.defaultPushPath, headers: headers, json: body).status
                    == .noContent)
        }
    }

    @Test(
        "Google OIDC push tokens (wire format per Google's documented JWKS and ID-token claims; Google's endpoint cannot be reached here)"
    )
    func googleOIDCTokens() async throws {
        let issuer = try TestTokenIssuer()
        try await issuer.serving { url in
            let authenticator = GoogleOIDCAuthenticator(
                audience: issuer.audience, serviceAccount: issuer.account, keys: GoogleSigningKeys(url: url))
            let api = try TestAPI(environment: .production, eventAuthenticator: authenticator)
            try await api.run { (client) async throws in
                let admin = try await api.bootstrapAdmin()
                let team = try await client.createTeam("Desk", key: admin.key).decode(Team.self)
                let member = try await client.member(of: team, email: "ann@example.com", adminKey: admin.key)
                let image = try await client.upload("sunset.jpg", key: member.key).decode(ImageRecord.self)
                var (headers, body) = try delivery(for: image, at: api.clock.now())
                func post(_ token: String?) async throws -> Reply {
                    headers[.authorization] = token.map { "Bearer \($0)" }
                    return try await client.send(
                        .post, LocalPushFactory.defaultPushPath, headers: headers, json: body)
                }
                let otherKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
                let refused: [(String?, HTTPResponse.Status, String)] = [
                    (nil, .unauthorized, "no token"),
                    ("not.a.jwt", .unauthorized, "malformed"),
                    (try issuer.token(signingKey: otherKey), .unauthorized, "signed by another key"),
                    (try issuer.token(keyID: "unknown-key"), .unauthorized, "unknown key id"),
                    (try issuer.token(issuedAt: Date().addingTimeInterval(-7200)), .unauthorized, "expired"),
                    (try issuer.token { $0["iss"] = "https://evil.example.com" }, .unauthorized, "other issuer"),
                    (try issuer.token { $0["aud"] = "https://other-service.run.app" }, .forbidden, "other audience"),
                    (try issuer.token { $0["email"] = "someone@example.com" }, .forbidden, "other account"),
                    (try issuer.token { $0["email_verified"] = false }, .forbidden, "unverified e-mail"),
                ]
                for (token, status, why) in refused {
                    let answer = try await post(token)
                    #expect(answer.status == status, "\(why)")
                    #expect(answer.detail != nil, "\(why): a JSON error")
                }
                var stored = try await client.getImage(image.id, key: member.key).decode(ImageRecord.self)
                #expect(stored.embeddingStatus == .pending && stored.embeddingAttempts == 0)

                #expect(try await post(try issuer.token()).status == .noContent)
                stored = try await client.getImage(image.id, key: member.key).decode(ImageRecord.self)
                #expect(stored.embeddingStatus == .success)
            }
        }
    }

    @Test(
        "unreachable signing keys answer 503 so that Pub/Sub retries, never 500, and name no address or library error")
    func keysUnavailable() async throws {
        let issuer = try TestTokenIssuer()
        let authenticator = GoogleOIDCAuthenticator(
            audience: issuer.audience, serviceAccount: issuer.account,
            keys: GoogleSigningKeys(url: "http://127.0.0.1:9/oauth2/v3/certs"))
        await #expect(throws: FunctionError.self) {
            try await authenticator.authenticate(
                EventCaller(headers: [.authorization: "Bearer \(try issuer.token())"]))
        }
        do {
            try await authenticator.authenticate(EventCaller(headers: [.authorization: "Bearer \(try issuer.token())"]))
        } catch let error as FunctionError {
            #expect(error.status == .serviceUnavailable)
            // The caller gets a stable sentence; the address and the network error go to the log.
            #expect(error.detail == "Event authentication is unavailable for now; try again later")
            #expect(error.logDetail?.contains("http://127.0.0.1:9/oauth2/v3/certs") == true)
        }
    }

    @Test("push authentication settings: both OIDC variables or neither, a long enough token")
    func settings() throws {
        #expect(throws: ConfigurationError.self) {
            try PushAuthenticationSettings(EnvironmentVariables(["PUBSUB_PUSH_TOKEN": "short"]))
        }
        #expect(throws: ConfigurationError.self) {
            try PushAuthenticationSettings(EnvironmentVariables(["PUBSUB_PUSH_AUDIENCE": "https://x.run.app"]))
        }
        let none = try PushAuthenticationSettings(EnvironmentVariables([:]))
        #expect(none.makeAuthenticator() == nil)
        let both = try PushAuthenticationSettings(
            EnvironmentVariables([
                "PUBSUB_PUSH_AUDIENCE": "https://x.run.app",
                "PUBSUB_PUSH_SERVICE_ACCOUNT": "a@b.iam.gserviceaccount.com",
                "PUBSUB_PUSH_TOKEN": "a-push-token-of-some-length",
            ]))
        #expect(both.makeAuthenticator() is AnyOfEventAuthenticators)
    }
}
