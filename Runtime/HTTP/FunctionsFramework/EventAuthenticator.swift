import Foundation
import HTTPTypes

/// Decides whether the sender of an event may deliver it: Pub/Sub's push service presenting a
/// Google-signed OIDC token, or any transport presenting the shared push token.
///
/// A ``CloudEventEndpoint`` with an authenticator checks every request before it reads the body.
public protocol EventAuthenticator: Sendable {
    /// Checks the caller of one delivery.
    /// - Parameter request: The request's headers and query parameters.
    /// - Throws: ``FunctionError`` 401 (no or invalid credentials), 403 (valid credentials of
    ///   another caller) or 503 (the keys to check them with cannot be fetched).
    func authenticate(_ request: EventCaller) async throws
}

/// What an ``EventAuthenticator`` sees of a delivery.
public struct EventCaller: Sendable {
    /// The request headers.
    public let headers: HTTPFields
    /// The query parameters (a push endpoint URL may carry `?token=`).
    public let query: [String: String]

    /// Creates the view of a request.
    /// - Parameters:
    ///   - headers: The request headers.
    ///   - query: The query parameters.
    public init(headers: HTTPFields, query: [String: String] = [:]) {
        self.headers = headers
        self.query = query
    }

    /// The credential of an `Authorization: Bearer …` header, if any.
    public var bearerToken: String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

extension EventCaller {
    /// The view of a request to a function.
    /// - Parameter call: The request.
    public init(_ call: FunctionRequest) {
        let query = Dictionary(call.request.uri.queryParameters.map { (String($0.key), String($0.value)) }) {
            first, _ in first
        }
        self.init(headers: call.headers, query: query)
    }
}

/// Accepts deliveries that present a shared secret, as `Authorization: Bearer <token>` or as the
/// `token` query parameter of the push endpoint URL. The comparison takes the same time wherever
/// the first difference is.
public struct SharedPushTokenAuthenticator: EventAuthenticator {
    private let token: [UInt8]

    /// Creates the authenticator.
    /// - Parameter token: The shared push token (`PUBSUB_PUSH_TOKEN`).
    public init(token: String) {
        self.token = Array(token.utf8)
    }

    /// Checks the presented token.
    /// - Parameter request: The delivery.
    /// - Throws: ``FunctionError`` 401 when no token or another token is presented.
    public func authenticate(_ request: EventCaller) async throws {
        guard let presented = request.bearerToken ?? request.query["token"] else {
            throw FunctionError.unauthorized("Event deliveries need a push token or a Google OIDC token")
        }
        guard Self.constantTimeEqual(Array(presented.utf8), token) else {
            throw FunctionError.unauthorized("The push token is not valid")
        }
    }

    /// Compares two byte strings in time that depends on their lengths only.
    /// - Parameters:
    ///   - lhs: One byte string.
    ///   - rhs: The other.
    /// - Returns: Whether they are equal.
    public static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
        for index in 0..<max(lhs.count, rhs.count) {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }
}

/// Accepts a delivery when any of several authenticators accepts it (an OIDC token from Pub/Sub,
/// or the shared token the process's own local Pub/Sub sends). When all refuse, the first
/// refusal that is not a plain 401 is thrown (a 503 while keys cannot be fetched, say), else the
/// first 401.
public struct AnyOfEventAuthenticators: EventAuthenticator {
    /// The authenticators, tried in order.
    public let authenticators: [any EventAuthenticator]

    /// Creates the combination.
    /// - Parameter authenticators: The authenticators, tried in order; at least one.
    public init(_ authenticators: [any EventAuthenticator]) {
        precondition(!authenticators.isEmpty, "at least one authenticator")
        self.authenticators = authenticators
    }

    /// Tries each authenticator in turn.
    /// - Parameter request: The delivery.
    /// - Throws: The most telling refusal when none accepts.
    public func authenticate(_ request: EventCaller) async throws {
        var refusals: [any Error] = []
        for authenticator in authenticators {
            do {
                try await authenticator.authenticate(request)
                return
            } catch {
                refusals.append(error)
            }
        }
        let telling = refusals.first { ($0 as? FunctionError)?.status != .unauthorized }
        throw telling ?? refusals[0]
    }
}
