import FunctionsFramework
import HTTPTypes
import ImageAPICore

extension Caller {
    /// The caller of a request: the key in `X-API-Key` or `Authorization: Bearer`, the client
    /// address and the request's logger.
    /// - Parameter call: The request.
    /// - Throws: ``FunctionError`` 401 when `Authorization` uses a scheme other than Bearer.
    public init(_ call: FunctionRequest) throws {
        self.init(
            presentedKey: try Self.presentedKey(in: call.headers), client: call.clientAddress, logger: call.logger)
    }

    /// The key a request presents in `X-API-Key` or `Authorization: Bearer`, if any.
    /// - Parameter headers: The request headers.
    /// - Returns: The presented text, or `nil` when neither header is present.
    /// - Throws: ``FunctionError`` 401 when `Authorization` uses another scheme.
    public static func presentedKey(in headers: HTTPFields) throws -> String? {
        if let key = headers[HTTPField.Name("X-API-Key")!] {
            return key.trimmingCharacters(in: .whitespaces)
        }
        guard let authorization = headers[.authorization] else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw FunctionError.unauthorized("Authorization header must use the Bearer scheme")
        }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }
}

extension AccessPolicy {
    /// Requires a valid key on a request (see ``AccessPolicy/authenticate(_:)-(Caller)``).
    /// - Parameter call: The request.
    /// - Returns: The principal.
    /// - Throws: 401 without a valid key, 429 after too many failures.
    public func authenticate(_ call: FunctionRequest) async throws -> Principal {
        try await authenticate(try Caller(call))
    }

    /// Requires a valid administrator's key on a request.
    /// - Parameter call: The request.
    /// - Returns: The admin principal.
    /// - Throws: 401 without a valid key, 403 when its owner is not an admin.
    public func requireAdmin(_ call: FunctionRequest) async throws -> Principal {
        try await requireAdmin(try Caller(call))
    }

    /// Authorises a management request: public in development, an administrator's key in production.
    /// - Parameter call: The request.
    /// - Returns: `nil` in development; the admin principal in production.
    /// - Throws: 401 without a valid key, 403 for a non-admin key (production only).
    public func authorizeManagement(_ call: FunctionRequest) async throws -> Principal? {
        try await authorizeManagement(try Caller(call))
    }
}

extension PageRequest {
    /// Reads `skip` and `limit` from the query; out-of-range values are refused with 422, not clamped.
    /// - Parameter query: The query parameters.
    /// - Throws: ``ValidationError`` naming the bad parameter.
    public init(query: QueryParameters) throws {
        self.init(
            skip: try query.integer("skip", default: 0, in: 0...Int(Int32.max)),
            limit: try query.integer("limit", default: Self.defaultLimit, in: 1...Self.maximumLimit))
    }
}
