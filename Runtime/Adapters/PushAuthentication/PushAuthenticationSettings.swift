import Foundation
import FunctionsFramework

/// How the event route authenticates its callers, read from the environment.
///
/// - `PUBSUB_PUSH_AUDIENCE` with `PUBSUB_PUSH_SERVICE_ACCOUNT`: Google-signed OIDC tokens from a
///   push subscription with authentication (keys from `GOOGLE_OIDC_CERTS_URL`, Google's by default).
/// - `PUBSUB_PUSH_TOKEN`: a shared secret, as `Authorization: Bearer` or the endpoint URL's
///   `?token=` (for transports that cannot sign, and the local Pub/Sub, which sends it).
///
/// Either, or both, may be set. In production a process serving the event route refuses to
/// start with neither (the emulator, delivering to itself, makes a token of its own).
public struct PushAuthenticationSettings: Sendable {
    /// The shortest shared token accepted.
    public static let minimumTokenLength = 16

    /// `PUBSUB_PUSH_TOKEN`.
    public var token: String?
    /// `PUBSUB_PUSH_AUDIENCE`.
    public var audience: String?
    /// `PUBSUB_PUSH_SERVICE_ACCOUNT`.
    public var serviceAccount: String?
    /// `GOOGLE_OIDC_CERTS_URL`.
    public var certificatesURL: String

    /// Creates settings.
    public init(
        token: String? = nil, audience: String? = nil, serviceAccount: String? = nil,
        certificatesURL: String = GoogleSigningKeys.defaultURL
    ) {
        self.token = token
        self.audience = audience
        self.serviceAccount = serviceAccount
        self.certificatesURL = certificatesURL
    }

    /// Reads the settings.
    /// - Parameter variables: The process's configuration variables.
    /// - Throws: ``ConfigurationError`` for a short token or an audience without an account.
    public init(_ variables: EnvironmentVariables) throws {
        let token = variables["PUBSUB_PUSH_TOKEN"]
        if let token, token.count < Self.minimumTokenLength {
            throw ConfigurationError(
                variable: "PUBSUB_PUSH_TOKEN", reason: "must be at least \(Self.minimumTokenLength) characters")
        }
        let audience = variables["PUBSUB_PUSH_AUDIENCE"]
        let account = variables["PUBSUB_PUSH_SERVICE_ACCOUNT"]
        if (audience == nil) != (account == nil) {
            throw ConfigurationError(
                variable: audience == nil ? "PUBSUB_PUSH_AUDIENCE" : "PUBSUB_PUSH_SERVICE_ACCOUNT",
                reason: "PUBSUB_PUSH_AUDIENCE and PUBSUB_PUSH_SERVICE_ACCOUNT are set together")
        }
        let url = variables["GOOGLE_OIDC_CERTS_URL"] ?? GoogleSigningKeys.defaultURL
        if URL(string: url)?.scheme?.hasPrefix("http") != true {
            throw ConfigurationError(variable: "GOOGLE_OIDC_CERTS_URL", reason: "must be an http(s) URL")
        }
        self.init(token: token, audience: audience, serviceAccount: account, certificatesURL: url)
    }

    /// The authenticator these settings describe, accepting `extraToken` too.
    /// - Parameter extraToken: A token of the process's own (its local Pub/Sub's), if any.
    /// - Returns: The authenticator, or `nil` when nothing is configured.
    public func makeAuthenticator(extraToken: String? = nil) -> (any EventAuthenticator)? {
        var authenticators: [any EventAuthenticator] = []
        if let audience, let serviceAccount {
            authenticators.append(
                GoogleOIDCAuthenticator(
                    audience: audience, serviceAccount: serviceAccount,
                    keys: GoogleSigningKeys(url: certificatesURL)))
        }
        for token in Set([token, extraToken].compactMap { $0 }).sorted() {
            authenticators.append(SharedPushTokenAuthenticator(token: token))
        }
        switch authenticators.count {
        case 0: return nil
        case 1: return authenticators[0]
        default: return AnyOfEventAuthenticators(authenticators)
        }
    }
}
