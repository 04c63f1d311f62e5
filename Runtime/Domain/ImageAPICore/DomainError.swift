import Foundation

/// A refusal by the domain: what kind of refusal, and why, for a person.
///
/// The domain knows nothing of HTTP. The HTTP layer (`ImageAPIHTTP`) gives each kind its status
/// and headers (`notFound` 404, `conflict` 409, `forbidden` 403, `unauthenticated` 401 with a
/// challenge, `rateLimited` 429 with `Retry-After`, `unavailable` 503, `unavailableFor` 503 with
/// `Retry-After`).
public struct DomainError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kinds of refusal.
    public enum Kind: Sendable, Equatable {
        /// The thing does not exist, or belongs to another team.
        case notFound
        /// The request conflicts with the current state.
        case conflict
        /// The caller is known but may not do this.
        case forbidden
        /// The caller could not be identified.
        case unauthenticated
        /// The caller must wait this many seconds before trying again.
        case rateLimited(retryAfterSeconds: Int)
        /// Something the domain needs is not available now.
        case unavailable
        /// Something the domain needs is not available for about this many seconds (a provider's
        /// quota, say).
        case unavailableFor(retryAfterSeconds: Int)
    }

    /// The kind of refusal.
    public let kind: Kind
    /// Why, for a person.
    public let detail: String
    /// Facts a client can act on beside the reason, such as the id of a conflicting resource.
    public let fields: [String: String]

    /// Creates a refusal.
    /// - Parameters:
    ///   - kind: The kind of refusal.
    ///   - detail: Why, for a person.
    ///   - fields: Facts beside the reason.
    public init(_ kind: Kind, _ detail: String, fields: [String: String] = [:]) {
        self.kind = kind
        self.detail = detail
        self.fields = fields
    }

    /// The thing does not exist, or belongs to another team.
    public static func notFound(_ detail: String) -> Self { .init(.notFound, detail) }
    /// The request conflicts with the current state.
    public static func conflict(_ detail: String) -> Self { .init(.conflict, detail) }
    /// The caller is known but may not do this.
    public static func forbidden(_ detail: String) -> Self { .init(.forbidden, detail) }
    /// The caller could not be identified.
    public static func unauthenticated(_ detail: String) -> Self { .init(.unauthenticated, detail) }

    /// The kind and the reason.
    public var description: String { "\(kind): \(detail)" }
}
