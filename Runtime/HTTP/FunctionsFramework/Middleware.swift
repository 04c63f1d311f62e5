import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Turns every error a handler throws into the API's JSON error shape.
///
/// ``FunctionError`` and ``ValidationError`` render themselves; Hummingbird's own errors (unknown
/// route, body too large) keep their status with a `{"detail": ...}` body; a `DecodingError`
/// becomes a 422; anything else is logged and answered with a generic 500.
public struct ErrorMiddleware: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    /// Runs the rest of the chain and maps any error it throws.
    /// - Parameters:
    ///   - request: The incoming request.
    ///   - context: The request context.
    ///   - next: The rest of the chain.
    /// - Returns: The response, or the error rendered as JSON.
    public func handle(
        _ request: Request, context: FunctionContext,
        next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try Self.response(for: error, request: request, context: context)
        }
    }

    /// Maps an error to the response the client sees.
    /// - Parameters:
    ///   - error: The error a handler threw.
    ///   - request: The request being answered.
    ///   - context: The request context, whose logger records unexpected errors.
    /// - Returns: A JSON error response.
    /// - Throws: Only if encoding the error body fails.
    public static func response(for error: any Error, request: Request, context: FunctionContext) throws -> Response {
        switch error {
        case let error as FunctionError:
            if let logDetail = error.logDetail {
                context.logger.warning(
                    "\(error.detail)", metadata: ["error": .string(logDetail), "path": "\(request.uri.path)"])
            }
            return try error.response(from: request, context: context)
        case let error as ValidationError:
            return try error.response(from: request, context: context)
        case let error as any FunctionErrorConvertible:
            return try error.functionError.response(from: request, context: context)
        case let error as HTTPParserError:
            // The body could not be parsed (a bad chunk size, say): the connection cannot be
            // trusted to carry another request.
            return try FunctionError(
                .badRequest, ConnectionGuardHandler.malformedRequestDetail(error), headers: [.connection: "close"]
            ).response(from: request, context: context)
        case is NIOTooManyBytesError:
            return try FunctionError(
                .contentTooLarge, "Request body is larger than the limit of \(context.maxUploadSize) bytes"
            ).response(from: request, context: context)
        case let error as DecodingError:
            return try ValidationError.fromDecoding(error).response(from: request, context: context)
        case let error as HTTPError:
            let detail = error.body ?? error.status.reasonPhrase
            var headers = error.headers
            headers[.contentType] = nil
            headers[.contentLength] = nil
            return try FunctionError(error.status, detail, headers: headers).response(from: request, context: context)
        case let error as any HTTPResponseError where error.status.code < 500:
            return try FunctionError(error.status, error.status.reasonPhrase).response(from: request, context: context)
        default:
            context.logger.error(
                "Unhandled error", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return try FunctionError(.internalServerError, "Internal server error")
                .response(from: request, context: context)
        }
    }
}

/// Adds the headers every answer carries: `X-Content-Type-Options: nosniff`, so that browsers
/// never guess another type for a download or a JSON error than the one declared.
public struct ResponseHeadersMiddleware: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    /// Runs the rest of the chain and adds the headers to its answer.
    /// - Parameters:
    ///   - request: The incoming request.
    ///   - context: The request context.
    ///   - next: The rest of the chain.
    /// - Returns: The response, with the headers.
    public func handle(
        _ request: Request, context: FunctionContext,
        next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}

/// Applies the configured request-body limit: a declared `Content-Length` above it is refused
/// at once with 413, and handlers that read the body stop at the same limit. Endpoints that
/// declare a larger limit (uploads) get theirs instead.
public struct BodyLimitMiddleware: RouterMiddleware {
    /// The largest body accepted, in bytes.
    public let limit: Int
    /// Larger limits for particular endpoints (matched on method and exact path).
    public let endpointLimits: [Endpoint: Int]

    /// Creates the middleware.
    /// - Parameters:
    ///   - limit: The largest body accepted, in bytes.
    ///   - endpointLimits: Larger limits for particular endpoints.
    public init(limit: Int, endpointLimits: [Endpoint: Int] = [:]) {
        self.limit = limit
        self.endpointLimits = endpointLimits
    }

    /// Checks the declared length and passes the limit on in the context.
    /// - Parameters:
    ///   - request: The incoming request.
    ///   - context: The request context.
    ///   - next: The rest of the chain.
    /// - Returns: The response.
    /// - Throws: ``FunctionError`` 413 when the declared body is too large.
    public func handle(
        _ request: Request, context: FunctionContext,
        next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        let limit = endpointLimits[Endpoint(request.method, request.uri.path)] ?? self.limit
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw FunctionError(.contentTooLarge, "Request body is larger than the limit of \(limit) bytes")
        }
        var context = context
        context.maxUploadSize = limit
        return try await next(request, context)
    }
}

/// Tags the request's logger with the Cloud Trace fields and a request id, and writes one
/// structured log line per request with Cloud Logging's `httpRequest` fields.
public struct RequestLoggingMiddleware: RouterMiddleware {
    /// The Google Cloud project used to qualify trace ids, when known.
    public let projectID: String?

    /// Creates the middleware.
    /// - Parameter projectID: The project that qualifies trace ids (`GOOGLE_CLOUD_PROJECT`).
    public init(projectID: String?) {
        self.projectID = projectID
    }

    /// Logs the request once it has been answered.
    /// - Parameters:
    ///   - request: The incoming request.
    ///   - context: The request context.
    ///   - next: The rest of the chain.
    /// - Returns: The response.
    public func handle(
        _ request: Request, context: FunctionContext,
        next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        if let trace = TraceContext(headers: request.headers) {
            for (key, value) in trace.logMetadata(projectID: projectID) {
                context.logger[metadataKey: key] = value
            }
        }
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // Probes and scrapes come every few seconds: at debug, unless they fail.
        let routine = Self.routinePaths.contains(request.uri.path) && response.status.code < 400
        let level: Logger.Level = response.status.code >= 500 ? .error : routine ? .debug : .info
        context.logger.log(
            level: level, "\(request.method.rawValue) \(request.uri.path) \(response.status.code)",
            metadata: [
                "httpRequest": [
                    "requestMethod": .string(request.method.rawValue),
                    "requestUrl": .string(Self.redacted(path: request.uri.path, query: request.uri.query)),
                    "status": .stringConvertible(Int(response.status.code)),
                    "latency": .string(String(format: "%.6fs", seconds)),
                    "userAgent": .string(request.headers[.userAgent] ?? ""),
                ]
            ])
        return response
    }

    /// Health checks and metric scrapes: logged at debug when they succeed.
    public static let routinePaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    /// Query parameters whose values are credentials (compared without case): never logged.
    public static let credentialParameters: Set<String> = [
        "token", "key", "api_key", "apikey", "access_token", "id_token", "secret", "password", "signature", "sig",
        "x-goog-signature", "x-goog-credential", "code",
    ]

    /// A request's path and query as logged: the values of credential parameters replaced by
    /// `REDACTED`, so that a push token in `?token=` cannot be read back from the logs.
    /// - Parameters:
    ///   - path: The request's path.
    ///   - query: The request's query string, without `?`.
    /// - Returns: The path and query, safe to log.
    public static func redacted(path: String, query: String?) -> String {
        guard let query, !query.isEmpty else { return path }
        let parameters = query.split(separator: "&", omittingEmptySubsequences: false).map { parameter in
            let name = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let decoded = String(name).removingPercentEncoding ?? String(name)
            return credentialParameters.contains(decoded.lowercased()) ? "\(name)=REDACTED" : String(parameter)
        }
        return path + "?" + parameters.joined(separator: "&")
    }
}

/// Finds who is calling behind proxies. Each trusted proxy in front of the server appends the
/// address it was called from to `X-Forwarded-For`, so the client is the entry `trustedProxies`
/// places from the end; entries before it are whatever the client sent, and never trusted.
/// With no trusted proxy, or a header shorter than the chain, the connection's peer is the client.
public struct ClientAddressMiddleware: RouterMiddleware {
    /// Proxies in front of the server that append to `X-Forwarded-For` (`TRUSTED_PROXIES`).
    public let trustedProxies: Int

    /// Creates the middleware.
    /// - Parameter trustedProxies: Proxies that append to `X-Forwarded-For`.
    public init(trustedProxies: Int) {
        self.trustedProxies = trustedProxies
    }

    /// Sets the context's client address.
    /// - Parameters:
    ///   - request: The incoming request.
    ///   - context: The request context.
    ///   - next: The rest of the chain.
    /// - Returns: The response.
    public func handle(
        _ request: Request, context: FunctionContext,
        next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        if let client = Self.client(
            forwardedFor: request.headers[values: Self.forwardedFor], trustedProxies: trustedProxies)
        {
            context.clientAddress = client
        }
        return try await next(request, context)
    }

    /// The client among `X-Forwarded-For` values (every header line, in order), or `nil` when the
    /// chain is shorter than the trusted proxies.
    /// - Parameters:
    ///   - values: The header's values.
    ///   - trustedProxies: Proxies that append to the header.
    /// - Returns: The client's address.
    public static func client(forwardedFor values: [String], trustedProxies: Int) -> String? {
        guard trustedProxies > 0 else { return nil }
        let entries = values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        guard entries.count >= trustedProxies else { return nil }
        let client = entries[entries.count - trustedProxies]
        return client.isEmpty ? nil : client
    }

    private static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
}
