import Foundation

/// Which deployed service answers which path: the URL map of the production load balancer, and
/// of the local router in front of the separate function processes.
///
/// A rule matches its path prefix and everything below it at a segment boundary
/// (`/api/v1/teams` matches `/api/v1/teams` and `/api/v1/teams/1`, not `/api/v1/teamsx`); the
/// longest matching prefix wins. Paths no rule matches are not the public API's: event routes,
/// the outbox relay endpoint and each service's `/healthz` are called on the service itself.
public struct ServiceURLMap: Sendable, Equatable {
    /// One rule: a path prefix and the service behind it.
    public struct Rule: Sendable, Equatable, Codable {
        /// The path prefix, starting with `/`, without a trailing `/`.
        public let pathPrefix: String
        /// The service (function binary) that serves it, such as `manage-teams`.
        public let service: String

        /// Creates a rule.
        /// - Parameters:
        ///   - pathPrefix: The path prefix.
        ///   - service: The service behind it.
        public init(_ pathPrefix: String, _ service: String) {
            self.pathPrefix = pathPrefix
            self.service = service
        }
    }

    /// The rules, in no particular order.
    public let rules: [Rule]

    /// Creates a map.
    /// - Parameter rules: The rules.
    public init(rules: [Rule]) { self.rules = rules }

    /// The production map: each endpoint group to the function that serves it.
    public static let production = ServiceURLMap(rules: [
        Rule("/api/v1/teams", "manage-teams"),
        Rule("/api/v1/users", "manage-users"),
        Rule("/api/v1/auth", "api-keys"),
        Rule("/api/v1/images", "upload-image"),
        Rule("/api/v1/collections", "upload-image"),
        Rule("/api/v1/search", "search"),
        Rule("/api/v1/admin/dead-letters", "process-embedding"),
    ])

    /// Every service some rule names, sorted.
    public var services: [String] { Set(rules.map(\.service)).sorted() }

    /// The service that answers a path.
    /// - Parameter path: The request path, without its query.
    /// - Returns: The service, or `nil` when no rule matches.
    public func service(for path: String) -> String? {
        rules.filter { path == $0.pathPrefix || path.hasPrefix($0.pathPrefix + "/") }
            .max { $0.pathPrefix.count < $1.pathPrefix.count }?.service
    }

    /// The variable that holds a service's base URL for the local router: `manage-teams` reads
    /// `MANAGE_TEAMS_URL`.
    /// - Parameter service: The service.
    /// - Returns: The variable's name.
    public static func urlVariable(for service: String) -> String {
        service.uppercased().replacingOccurrences(of: "-", with: "_") + "_URL"
    }
}
