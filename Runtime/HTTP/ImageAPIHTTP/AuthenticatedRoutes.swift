import FunctionsFramework
import HTTPTypes
import Hummingbird
import ImageAPICore

/// What a group of routes requires of its caller.
public enum RouteAccess: Sendable {
    /// Any valid key; the handler receives its principal.
    case key
    /// A key whose owner is an administrator.
    case admin
}

/// Routes whose handlers receive the caller's identity by type: the key is resolved and checked
/// once, before the handler runs (and before its body is read), so a handler cannot forget to
/// authenticate and never sees an unauthenticated request.
public struct AuthenticatedRoutes: Sendable {
    let routes: FunctionRoutes.Handle
    let policy: AccessPolicy
    let access: RouteAccess

    func principal(_ call: FunctionRequest) async throws -> Principal {
        switch access {
        case .key: try await policy.authenticate(call)
        case .admin: try await policy.requireAdmin(call)
        }
    }

    /// Registers a handler whose result is encoded as JSON.
    public func on<Output: Encodable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:],
        handler: @escaping @Sendable (FunctionRequest, Principal) async throws -> Output
    ) {
        routes.table.on(method, path, status: status, headers: headers) { call in
            try await handler(call, try await principal(call))
        }
    }

    /// Registers a handler that takes a JSON body, read after the caller is authenticated.
    public func on<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:],
        body: Input.Type, handler: @escaping @Sendable (Input, FunctionRequest, Principal) async throws -> Output
    ) {
        routes.table.on(method, path, status: status, headers: headers) { call in
            let principal = try await principal(call)
            return try await handler(try await call.decodeBody(Input.self), call, principal)
        }
    }

    /// Registers a handler that answers `204 No Content`.
    public func on(
        _ method: HTTPRequest.Method, _ path: String,
        handler: @escaping @Sendable (FunctionRequest, Principal) async throws -> NoContent
    ) {
        routes.table.on(method, path) { call -> NoContent in try await handler(call, try await principal(call)) }
    }

    /// Registers a handler that builds its own response (downloads).
    public func on(
        _ method: HTTPRequest.Method, _ path: String,
        handler: @escaping @Sendable (FunctionRequest, Principal) async throws -> Response
    ) {
        routes.table.on(method, path) { call -> Response in try await handler(call, try await principal(call)) }
    }
}

/// Management routes (teams, users, key creation): public in development, where the handler
/// receives `nil`; an administrator's key in production, whose principal the handler receives.
public struct ManagementRoutes: Sendable {
    let routes: FunctionRoutes.Handle
    let policy: AccessPolicy

    /// Registers a handler whose result is encoded as JSON.
    public func on<Output: Encodable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:],
        handler: @escaping @Sendable (FunctionRequest, Principal?) async throws -> Output
    ) {
        routes.table.on(method, path, status: status, headers: headers) { call in
            try await handler(call, try await policy.authorizeManagement(call))
        }
    }

    /// Registers a handler that takes a JSON body, read after the caller is authorised.
    public func on<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:],
        body: Input.Type, handler: @escaping @Sendable (Input, FunctionRequest, Principal?) async throws -> Output
    ) {
        routes.table.on(method, path, status: status, headers: headers) { call in
            let admin = try await policy.authorizeManagement(call)
            return try await handler(try await call.decodeBody(Input.self), call, admin)
        }
    }

    /// Registers a handler that answers `204 No Content`.
    public func on(
        _ method: HTTPRequest.Method, _ path: String,
        handler: @escaping @Sendable (FunctionRequest, Principal?) async throws -> NoContent
    ) {
        routes.table.on(method, path) { call -> NoContent in
            try await handler(call, try await policy.authorizeManagement(call))
        }
    }
}

extension FunctionRoutes {
    /// A route table handle that route groups may keep (registration happens once, at start).
    public struct Handle: @unchecked Sendable {
        let table: FunctionRoutes
    }

    /// Routes that need a key (or an administrator's key); their handlers receive the principal.
    /// - Parameters:
    ///   - access: What the caller must present.
    ///   - policy: Who may call what.
    /// - Returns: The group.
    public func authenticated(_ access: RouteAccess = .key, by policy: AccessPolicy) -> AuthenticatedRoutes {
        AuthenticatedRoutes(routes: Handle(table: self), policy: policy, access: access)
    }

    /// Management routes: public in development, an administrator's key in production.
    /// - Parameter policy: Who may call what.
    /// - Returns: The group.
    public func management(by policy: AccessPolicy) -> ManagementRoutes {
        ManagementRoutes(routes: Handle(table: self), policy: policy)
    }
}
