import CloudStorage
import Crypto
import Foundation
import GoogleCloudAuth
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Locking
import Testing
import _CryptoExtras

@Suite("Cloud Storage V4 signed URLs")
struct SignedURLTests {
    static let signingTime = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z

    func key(_ server: TokenServer) throws -> ServiceAccountKey {
        try ServiceAccountKey(json: try server.keyFile(tokenURI: "http://127.0.0.1:9/token"), path: "key.json")
    }

    @Test(
        "the documented GOOG4-RSA-SHA256 canonical request and string to sign, signed with the key file's private key (no Google server involved)"
    )
    func signedWithTheKeyFile() async throws {
        let server = try TokenServer()
        let signer = CloudStorageURLSigner(
            endpoint: try #require(URL(string: "https://storage.googleapis.com")), lifetime: 900,
            signer: GoogleServiceAccountSigner(source: .serviceAccount(try key(server), path: "key.json")))
        let signed = try await signer.download(
            bucket: "photos", object: "teams/t 1/images/é/original", contentDisposition: #"inline; filename="a b.jpg""#,
            now: Self.signingTime)

        let credential = "images%40project.iam.gserviceaccount.com%2F20270115%2Fauto%2Fstorage%2Fgoog4_request"
        let query =
            "X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=\(credential)&X-Goog-Date=20270115T080000Z"
            + "&X-Goog-Expires=900&X-Goog-SignedHeaders=host"
            + "&response-content-disposition=inline%3B%20filename%3D%22a%20b.jpg%22"
        #expect(
            signed.canonicalRequest == """
                GET
                /photos/teams/t%201/images/%C3%A9/original
                \(query)
                host:storage.googleapis.com

                host
                UNSIGNED-PAYLOAD
                """)
        let digest = SHA256.hash(data: Data(signed.canonicalRequest.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(
            signed.stringToSign == """
                GOOG4-RSA-SHA256
                20270115T080000Z
                20270115/auto/storage/goog4_request
                \(digest)
                """)
        let prefix =
            "https://storage.googleapis.com/photos/teams/t%201/images/%C3%A9/original?\(query)&X-Goog-Signature="
        #expect(signed.url.absoluteString.hasPrefix(prefix))
        let hex = String(signed.url.absoluteString.dropFirst(prefix.count))
        #expect(hex.count == 512 && hex.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        let signature = Data(
            stride(from: 0, to: hex.count, by: 2).map { offset in
                let start = hex.index(hex.startIndex, offsetBy: offset)
                return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
            })
        #expect(
            server.key.publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature),
                for: SHA256.hash(data: Data(signed.stringToSign.utf8)), padding: .insecurePKCS1v1_5))
    }

    @Test(
        "on Cloud Run, without a key: the account from the metadata server and the signature from IAM signBlob, as documented (local test server, not Google)"
    )
    func signedThroughIAM() async throws {
        let requests = Locked<[String]>([])
        let router = Router()
        router.get("/computeMetadata/v1/instance/service-accounts/default/email") { request, _ in
            guard request.headers[HTTPField.Name("Metadata-Flavor")!] == "Google" else {
                return Response(status: .forbidden)
            }
            requests.withLock { $0.append("email") }
            return Response(
                status: .ok, body: .init(byteBuffer: ByteBuffer(string: "runner@project.iam.gserviceaccount.com")))
        }
        router.get("/computeMetadata/v1/instance/service-accounts/default/token") { request, _ in
            #expect(request.uri.queryParameters["scopes"].map(String.init) == GoogleServiceAccountSigner.scope)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"access_token":"ya29.iam","expires_in":3599}"#)))
        }
        router.post("/v1/projects/-/serviceAccounts/{account}:signBlob") { request, context in
            #expect(context.parameters.get("account") == "runner@project.iam.gserviceaccount.com")
            #expect(request.headers[.authorization] == "Bearer ya29.iam")
            let body = try await request.body.collect(upTo: 1 << 16)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: String])
            let payload = try #require(object["payload"].flatMap { Data(base64Encoded: $0) })
            requests.withLock { $0.append("signBlob \(String(decoding: payload, as: UTF8.self).prefix(16))") }
            let answer = ["keyId": "k1", "signedBlob": Data([0xAB, 0xCD]).base64EncodedString()]
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(data: try JSONSerialization.data(withJSONObject: answer))))
        }
        try await Application(router: router).test(.live) { client in
            let host = "127.0.0.1:\(try #require(client.port))"
            let signer = CloudStorageURLSigner(
                endpoint: try #require(URL(string: "https://storage.googleapis.com")), lifetime: 60,
                signer: GoogleServiceAccountSigner(source: .metadataServer(host: host), iamEndpoint: "http://\(host)"))
            let first = try await signer.download(bucket: "photos", object: "a", now: Self.signingTime)
            #expect(first.url.absoluteString.hasSuffix("&X-Goog-Signature=abcd"))
            #expect(first.url.absoluteString.contains("X-Goog-Credential=runner%40project.iam.gserviceaccount.com%2F"))
            _ = try await signer.download(bucket: "photos", object: "b", now: Self.signingTime)
            // The account is asked once; each URL is signed.
            #expect(requests.withLock { $0 } == ["email", "signBlob GOOG4-RSA-SHA256", "signBlob GOOG4-RSA-SHA256"])
        }
    }
}
