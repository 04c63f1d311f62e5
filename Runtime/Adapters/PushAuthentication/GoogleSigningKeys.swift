import AsyncHTTPClient
import Foundation
import FunctionsFramework
import Locking
import NIOCore
import _CryptoExtras

/// Where the public keys that sign OIDC tokens come from.
public protocol SigningKeySource: Sendable {
    /// The RSA key with this key id, or `nil` when the issuer publishes no such key.
    /// - Parameter id: The JWT header's `kid`.
    /// - Throws: ``FunctionError`` 503 when the keys cannot be fetched.
    func key(id: String) async throws -> _RSA.Signing.PublicKey?
}

/// Google's OAuth 2 signing keys, fetched as a JSON Web Key Set from
/// `https://www.googleapis.com/oauth2/v3/certs` and kept for as long as the answer's
/// `Cache-Control: max-age` allows (an hour when it says nothing). A token signed with a key
/// not in the set fetches the set again (Google rotates keys), at most once every
/// ``refetchInterval``; one fetch is in flight at a time.
public final class GoogleSigningKeys: SigningKeySource {
    /// Google's JWKS endpoint.
    public static let defaultURL = "https://www.googleapis.com/oauth2/v3/certs"
    /// The least time between two fetches triggered by unknown key ids.
    public static let refetchInterval: TimeInterval = 30

    struct Cache {
        var keys: [String: _RSA.Signing.PublicKey] = [:]
        var expires = Date.distantPast
        var fetchedAt = Date.distantPast
        var fetch: Task<Void, any Error>?
    }

    private let url: String
    private let client: HTTPClient
    private let now: @Sendable () -> Date
    private let cache = Locked(Cache())

    /// Creates the key source.
    /// - Parameters:
    ///   - url: The JWKS URL (`GOOGLE_OIDC_CERTS_URL`; tests serve their own).
    ///   - client: The HTTP client.
    ///   - now: The clock.
    public init(
        url: String = GoogleSigningKeys.defaultURL, client: HTTPClient = .shared,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.url = url
        self.client = client
        self.now = now
    }

    /// The key with this id, fetching the set when it is stale or lacks the id.
    public func key(id: String) async throws -> _RSA.Signing.PublicKey? {
        let date = now()
        let (cached, fresh, mayRefetch) = cache.withLock {
            ($0.keys[id], $0.expires > date, date.timeIntervalSince($0.fetchedAt) >= Self.refetchInterval)
        }
        if let cached, fresh { return cached }
        if cached == nil && fresh && !mayRefetch { return nil }
        try await refresh()
        return cache.withLock { $0.keys[id] }
    }

    private func refresh() async throws {
        let task = cache.withLock { cache -> Task<Void, any Error> in
            if let running = cache.fetch { return running }
            let task = Task { try await self.fetch() }
            cache.fetch = task
            return task
        }
        defer { cache.withLock { if $0.fetch == task { $0.fetch = nil } } }
        try await task.value
    }

    struct KeySet: Decodable {
        struct Key: Decodable {
            let kid: String
            let kty: String
            let n: String?
            let e: String?
        }
        let keys: [Key]
    }

    private func fetch() async throws {
        let keySet: KeySet
        let maxAge: TimeInterval
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            guard response.status == .ok else { throw PushAuthenticationError("answered \(response.status.code)") }
            let body = try await response.body.collect(upTo: 1 << 20)
            keySet = try JSONDecoder().decode(KeySet.self, from: Data(buffer: body))
            maxAge = Self.maxAge(response.headers.first(name: "cache-control")) ?? 3600
        } catch {
            cache.withLock { $0.fetchedAt = now() }
            throw FunctionError(
                .serviceUnavailable, "Event authentication is unavailable for now; try again later",
                headers: [.retryAfter: "30"],
                logDetail: "Google's signing keys could not be fetched from \(url): \(error)")
        }
        var keys: [String: _RSA.Signing.PublicKey] = [:]
        for key in keySet.keys where key.kty == "RSA" {
            guard let n = key.n.flatMap(Base64URL.decode), let e = key.e.flatMap(Base64URL.decode),
                let publicKey = try? _RSA.Signing.PublicKey(n: n, e: e)
            else { continue }
            keys[key.kid] = publicKey
        }
        let date = now()
        cache.withLock {
            $0.keys = keys
            $0.fetchedAt = date
            $0.expires = date.addingTimeInterval(maxAge)
        }
    }

    /// The `max-age` of a `Cache-Control` header.
    static func maxAge(_ header: String?) -> TimeInterval? {
        guard let header else { return nil }
        for directive in header.split(separator: ",") {
            let parts = directive.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "max-age", let seconds = TimeInterval(parts[1]) {
                return seconds
            }
        }
        return nil
    }
}

/// A failure while fetching or reading signing keys.
struct PushAuthenticationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
