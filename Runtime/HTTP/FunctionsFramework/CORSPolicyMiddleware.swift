import HTTPTypes
import Hummingbird

/// Answers browsers per `CORS_ORIGINS`: a listed origin (or any, with `*`) gets
/// `Access-Control-Allow-Origin`, and preflight `OPTIONS` requests are answered here with 204.
/// Requests from other origins get no CORS headers, so browsers refuse them.
public struct CORSPolicyMiddleware: RouterMiddleware {
    /// The allowed origins; `*` allows every origin.
    public let allowedOrigins: Set<String>
    private static let allowedHeaders = "Accept, Authorization, Content-Type, Origin, X-API-Key"
    private static let allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

    /// Creates the middleware.
    /// - Parameter allowedOrigins: Origins such as `https://app.example.com`, or `*`.
    public init(allowedOrigins: [String]) {
        self.allowedOrigins = Set(allowedOrigins)
    }

    /// Adds CORS headers, or answers a preflight request.
    /// - Parameters:
    ///   - request: The incoming request.
    ///   - context: The request context.
    ///   - next: The rest of the chain.
    /// - Returns: The response with CORS headers when the origin is allowed.
    public func handle(
        _ request: Request, context: FunctionContext,
        next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        guard let origin = request.headers[.origin] else {
            return try await next(request, context)
        }
        let allowed = allowedOrigins.contains("*") || allowedOrigins.contains(origin)
        let isPreflight =
            request.method == .options && request.headers[.accessControlRequestMethod] != nil
        if isPreflight {
            var headers: HTTPFields = [.vary: "Origin"]
            if allowed {
                headers[.accessControlAllowOrigin] = allowedOrigins.contains("*") ? "*" : origin
                headers[.accessControlAllowMethods] = Self.allowedMethods
                headers[.accessControlAllowHeaders] = Self.allowedHeaders
                headers[.accessControlMaxAge] = "600"
            }
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        if allowed {
            response.headers[.accessControlAllowOrigin] = allowedOrigins.contains("*") ? "*" : origin
            response.headers[.vary] = "Origin"
        }
        return response
    }
}
