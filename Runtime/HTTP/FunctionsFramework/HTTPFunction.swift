import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// A function served over HTTP: a named set of endpoints, each with a typed handler.
///
/// The runtime owns the server; a function only registers its endpoints. The same function
/// value is served alone by its own executable and, beside the others, by the emulator.
public protocol HTTPFunction: Sendable {
    /// The service name, as deployed (`manage-teams`).
    var name: String { get }

    /// Registers every endpoint of the function.
    /// - Parameter routes: The route table to add endpoints to.
    func registerEndpoints(on routes: FunctionRoutes)

    /// Endpoints that accept bodies larger than `MAX_REQUEST_BODY_BYTES`, with their limit.
    var bodyLimits: [Endpoint: Int] { get }
}

extension HTTPFunction {
    /// No endpoint takes a larger body than the server-wide limit.
    public var bodyLimits: [Endpoint: Int] { [:] }
}

/// One registered method and path, such as `GET /api/v1/teams/{team_id}`.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The HTTP method.
    public let method: HTTPRequest.Method
    /// The path, with parameters written `{name}` as OpenAPI writes them.
    public let path: String

    /// Creates an endpoint description.
    /// - Parameters:
    ///   - method: The HTTP method.
    ///   - path: The path template.
    public init(_ method: HTTPRequest.Method, _ path: String) {
        self.method = method
        self.path = path
    }

    /// `METHOD /path`.
    public var description: String { "\(method.rawValue) \(path)" }

}

/// A handler that needs no response body answers with this to send `204 No Content`.
public struct NoContent: Sendable {
    /// Creates the empty answer.
    public init() {}
}

/// The route table functions register their endpoints on.
///
/// It wraps Hummingbird's router, records every endpoint (so the OpenAPI document can be
/// checked against what is really served) and answers 405 with an `Allow` header when a path
/// exists but the method does not.
public final class FunctionRoutes {
    /// The underlying router, with the runtime's middleware already installed.
    public let router: Router<FunctionContext>
    /// Every endpoint registered so far, in registration order.
    public private(set) var endpoints: [Endpoint] = []

    /// Creates a route table over a router.
    /// - Parameter router: The router endpoints are added to.
    public init(router: Router<FunctionContext>) {
        self.router = router
    }

    /// Registers a handler that builds its own response.
    /// - Parameters:
    ///   - method: The HTTP method.
    ///   - path: The path, with `{name}` parameters.
    ///   - handler: The handler.
    public func on(
        _ method: HTTPRequest.Method, _ path: String,
        handler: @escaping @Sendable (FunctionRequest) async throws -> Response
    ) {
        endpoints.append(Endpoint(method, path))
        router.on(RouterPath(path), method: method) { request, context in
            try await handler(FunctionRequest(request: request, context: context))
        }
    }

    /// Registers a handler whose result is encoded as JSON.
    /// - Parameters:
    ///   - method: The HTTP method.
    ///   - path: The path, with `{name}` parameters.
    ///   - status: The status of a successful answer.
    ///   - headers: Extra headers of a successful answer (`Cache-Control: no-store` for secrets).
    ///   - handler: The handler.
    public func on<Output: Encodable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:],
        handler: @escaping @Sendable (FunctionRequest) async throws -> Output
    ) {
        on(method, path) { call in
            try JSONBody.response(status: status, headers: headers, body: try await handler(call))
        }
    }

    /// Registers a handler that takes a JSON body and whose result is encoded as JSON.
    ///
    /// A body that is missing, not JSON, or of the wrong shape is answered with 422 before the
    /// handler runs.
    /// - Parameters:
    ///   - method: The HTTP method.
    ///   - path: The path, with `{name}` parameters.
    ///   - status: The status of a successful answer.
    ///   - headers: Extra headers of a successful answer.
    ///   - body: The type the body decodes to.
    ///   - handler: The handler.
    public func on<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:],
        body: Input.Type, handler: @escaping @Sendable (Input, FunctionRequest) async throws -> Output
    ) {
        on(method, path, status: status, headers: headers) { call in
            try await handler(try await call.decodeBody(Input.self), call)
        }
    }

    /// Registers a handler that answers `204 No Content`.
    /// - Parameters:
    ///   - method: The HTTP method.
    ///   - path: The path, with `{name}` parameters.
    ///   - handler: The handler.
    public func on(
        _ method: HTTPRequest.Method, _ path: String,
        handler: @escaping @Sendable (FunctionRequest) async throws -> NoContent
    ) {
        on(method, path) { call -> Response in
            _ = try await handler(call)
            return Response(status: .noContent)
        }
    }

    /// Adds a 405 responder for every common method a registered path does not serve.
    /// Called once, after every function has registered its endpoints.
    public func answerUnregisteredMethods() {
        let candidates: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace, .connect]
        var methodsByPath: [String: [HTTPRequest.Method]] = [:]
        for endpoint in endpoints {
            methodsByPath[endpoint.path, default: []].append(endpoint.method)
        }
        for (path, methods) in methodsByPath {
            var allowed = methods
            if methods.contains(.get) && !methods.contains(.head) { allowed.append(.head) }
            let error = FunctionError.methodNotAllowed(allowed: allowed)
            for method in candidates where !allowed.contains(method) {
                router.on(RouterPath(path), method: method) { _, _ -> Response in throw error }
            }
        }
        // Methods outside that list (QUERY, PROPFIND, anything) find no route at all: answer them
        // 405 too when the path is known.
        let table = methodsByPath.map { path, methods in
            (
                segments: path.split(separator: "/").map { $0.hasPrefix("{") ? nil : String($0) },
                allowed: methods.contains(.get) && !methods.contains(.head) ? methods + [.head] : methods
            )
        }
        router.add(middleware: UnknownMethodMiddleware(paths: table))
    }
}

/// What a handler receives: the request, its context, and typed accessors for its inputs.
public struct FunctionRequest: Sendable {
    /// The raw request.
    public let request: Request
    /// The request context.
    public let context: FunctionContext

    /// Creates a handler input.
    /// - Parameters:
    ///   - request: The raw request.
    ///   - context: The request context.
    public init(request: Request, context: FunctionContext) {
        self.request = request
        self.context = context
    }

    /// The request's logger, tagged with its trace.
    public var logger: Logger { context.logger }
    /// The request headers.
    public var headers: HTTPFields { request.headers }
    /// Who is calling, for per-client limits (see ``ClientAddressMiddleware``).
    public var clientAddress: String { context.clientAddress }
    /// The query parameters, with typed and validated accessors.
    public var query: QueryParameters { QueryParameters(query: request.uri.query) }

    /// Reads a UUID path parameter.
    /// - Parameter name: The parameter's name in the path template.
    /// - Returns: The identifier.
    /// - Throws: ``ValidationError`` (422) when the segment is not a UUID.
    public func pathUUID(_ name: String) throws -> UUID {
        let raw = context.parameters.get(name) ?? ""
        guard let id = UUID(uuidString: raw) else {
            throw ValidationError(loc: ["path", name], msg: "Input should be a valid UUID", type: "uuid_parsing")
        }
        return id
    }

    /// Whether a `Content-Type` names JSON: `application/json` or a `+json` type, any parameters.
    /// - Parameter contentType: The header's value.
    /// - Returns: `true` for JSON.
    public static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let type = contentType.split(separator: ";", maxSplits: 1)[0].trimmingCharacters(in: .whitespaces).lowercased()
        return type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json"))
    }

    /// Reads and decodes the JSON body, up to the configured size limit.
    /// - Parameter type: The type to decode.
    /// - Returns: The decoded value.
    /// - Throws: ``ValidationError`` (422) for a missing, non-JSON or ill-shaped body; 413 when too
    ///   large; 415 when the body is not declared `application/json` (a form or `text/plain`
    ///   post, which any web page can send cross-site without a preflight).
    public func decodeBody<T: Decodable>(_ type: T.Type) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else {
            throw ValidationError(loc: ["body"], msg: "Field required", type: "missing")
        }
        guard Self.isJSON(headers[.contentType]) else {
            throw FunctionError(
                .unsupportedMediaType, "The body must be JSON, sent with Content-Type: application/json")
        }
        do {
            return try JSONCoding.makeDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw ValidationError.fromDecoding(error)
        }
    }
}

/// Turns the router's 404 for a known path with an unknown method into 405 with `Allow`.
struct UnknownMethodMiddleware: RouterMiddleware {
    /// Each registered path's segments (`nil` for a parameter) and its methods.
    let paths: [(segments: [String?], allowed: [HTTPRequest.Method])]

    func handle(
        _ request: Request, context: FunctionContext,
        next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let segments = request.uri.path.split(separator: "/")
            let allowed = paths.filter { path in
                path.segments.count == segments.count
                    && zip(path.segments, segments).allSatisfy { pattern, segment in
                        pattern.map { $0 == segment } ?? true
                    }
            }.flatMap(\.allowed)
            guard !allowed.isEmpty, !allowed.contains(request.method) else { throw error }
            throw FunctionError.methodNotAllowed(allowed: Array(Set(allowed)))
        }
    }
}

/// Typed access to query parameters; every failure is a 422 located under `query`.
public struct QueryParameters: Sendable {
    private let values: [(name: String, value: String)]

    /// Reads a query string as HTML forms write it (`application/x-www-form-urlencoded`): `+` is a
    /// space and `%2B` a plus, so `?q=red+sunset` searches for "red sunset".
    /// - Parameter query: The query string, without `?`.
    public init(query: String?) {
        func decoded(_ text: Substring) -> String {
            let spaced = text.replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        values = (query ?? "").split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decoded(parts[0]), parts.count > 1 ? decoded(parts[1]) : "")
        }
    }

    /// The names given, in order (repeats included).
    public var names: [String] { values.map(\.name) }

    /// Every value of a parameter, in order (`tags=a&tags=b`).
    /// - Parameter name: The parameter name.
    /// - Returns: The decoded texts; empty when absent.
    public func strings(_ name: String) -> [String] {
        values.filter { $0.name == name }.map(\.value)
    }

    /// The value of a parameter, if present (the first, when it is given more than once).
    /// - Parameter name: The parameter name.
    /// - Returns: The decoded text, or `nil`.
    public func string(_ name: String) -> String? {
        values.first { $0.name == name }?.value
    }

    /// Reads an optional integer within bounds.
    /// - Parameters:
    ///   - name: The parameter name.
    ///   - defaultValue: The value when the parameter is absent.
    ///   - range: The accepted values; out-of-range values are refused, not clamped.
    /// - Returns: The value.
    /// - Throws: ``ValidationError`` when the text is not an integer or is out of range.
    public func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = string(name) else { return defaultValue }
        guard let value = Int(text) else {
            throw ValidationError(
                loc: ["query", name], msg: "Input should be a valid integer", type: "int_parsing")
        }
        if value < range.lowerBound {
            throw ValidationError(
                loc: ["query", name], msg: "Input should be greater than or equal to \(range.lowerBound)",
                type: "greater_than_equal")
        }
        if value > range.upperBound {
            throw ValidationError(
                loc: ["query", name], msg: "Input should be less than or equal to \(range.upperBound)",
                type: "less_than_equal")
        }
        return value
    }

    /// Reads an optional UUID.
    /// - Parameter name: The parameter name.
    /// - Returns: The identifier, or `nil` when absent.
    /// - Throws: ``ValidationError`` when present but not a UUID.
    public func uuid(_ name: String) throws -> UUID? {
        guard let text = string(name) else { return nil }
        guard let id = UUID(uuidString: text) else {
            throw ValidationError(loc: ["query", name], msg: "Input should be a valid UUID", type: "uuid_parsing")
        }
        return id
    }

    /// Reads a required UUID.
    /// - Parameter name: The parameter name.
    /// - Returns: The identifier.
    /// - Throws: ``ValidationError`` when absent or not a UUID.
    public func requiredUUID(_ name: String) throws -> UUID {
        guard let id = try uuid(name) else {
            throw ValidationError(loc: ["query", name], msg: "Field required", type: "missing")
        }
        return id
    }
}
