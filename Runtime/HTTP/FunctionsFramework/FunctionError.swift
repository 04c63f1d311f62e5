import Foundation
import HTTPTypes
import Hummingbird

/// An error that knows its HTTP status and answers with the JSON body `{"detail": "..."}`.
///
/// Handlers throw these for every client-visible failure; anything else becomes a 500 with a
/// generic detail so internals never leak.
public struct FunctionError: HTTPResponseError, Sendable, Equatable {
    /// The HTTP status of the response.
    public let status: HTTPResponse.Status
    /// The human-readable reason placed in the `detail` field.
    public let detail: String
    /// Extra response headers, such as `WWW-Authenticate` or `Allow`.
    public let headers: HTTPFields
    /// Extra members of the JSON body beside `detail`, such as the id of a conflicting resource.
    public let fields: [String: String]
    /// What went wrong in words for the operator (an address, a library's error): logged with
    /// the request, never sent to the caller, who gets the stable ``detail``.
    public let logDetail: String?

    /// Creates an error.
    /// - Parameters:
    ///   - status: The HTTP status to answer with.
    ///   - detail: The reason shown to the client.
    ///   - headers: Extra headers for the response.
    ///   - fields: Extra members of the JSON body.
    ///   - logDetail: What went wrong, for the log only.
    public init(
        _ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:], fields: [String: String] = [:],
        logDetail: String? = nil
    ) {
        self.status = status
        self.detail = detail
        self.headers = headers
        self.fields = fields
        self.logDetail = logDetail
    }

    /// 400: the request is malformed in a way that is not a field validation failure.
    public static func badRequest(_ detail: String) -> Self { .init(.badRequest, detail) }
    /// 403: the caller is authenticated but may not do this.
    public static func forbidden(_ detail: String) -> Self { .init(.forbidden, detail) }
    /// 404: the resource does not exist, or belongs to another team.
    public static func notFound(_ detail: String) -> Self { .init(.notFound, detail) }
    /// 409: the request conflicts with the current state.
    public static func conflict(_ detail: String) -> Self { .init(.conflict, detail) }
    /// 503: a dependency the function needs is unavailable.
    public static func unavailable(_ detail: String) -> Self { .init(.serviceUnavailable, detail) }

    /// 401 with a `WWW-Authenticate` challenge.
    /// - Parameter detail: Why the credentials were refused.
    /// - Returns: The error.
    public static func unauthorized(_ detail: String) -> Self {
        .init(.unauthorized, detail, headers: [.wwwAuthenticate: #"Bearer realm="image-api""#])
    }

    /// 405 listing the methods the path does accept in an `Allow` header.
    /// - Parameter allowed: The methods registered for the path.
    /// - Returns: The error.
    public static func methodNotAllowed(allowed: [HTTPRequest.Method]) -> Self {
        let list = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        return .init(.methodNotAllowed, "Method Not Allowed", headers: [.allow: list])
    }

    /// Renders the error as a JSON response.
    /// - Parameters:
    ///   - request: The request being answered.
    ///   - context: The request context.
    /// - Returns: The response with status, headers and `{"detail": ...}` body.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try JSONBody.response(status: status, headers: headers, body: fields.merging(["detail": detail]) { $1 })
    }
}

/// An error of another layer that answers as a ``FunctionError``: a domain's refusals, mapped
/// to statuses by the layer that serves the domain over HTTP.
public protocol FunctionErrorConvertible: Error {
    /// The answer the error gives.
    var functionError: FunctionError { get }
}

/// A 422 answer listing every invalid field, in the shape FastAPI clients already parse:
/// `{"detail": [{"loc": ["body", "name"], "msg": "...", "type": "..."}]}`.
public struct ValidationError: HTTPResponseError, Sendable, Equatable {
    /// One invalid input.
    public struct Issue: Codable, Sendable, Equatable {
        /// Where the input was: `["body", "email"]`, `["query", "limit"]`, `["path", "team_id"]`.
        public let loc: [String]
        /// What is wrong, for a person.
        public let msg: String
        /// A stable machine-readable kind, such as `missing` or `string_too_long`.
        public let type: String

        /// Creates an issue.
        /// - Parameters:
        ///   - loc: Where the input was.
        ///   - msg: What is wrong.
        ///   - type: The machine-readable kind.
        public init(loc: [String], msg: String, type: String) {
            self.loc = loc
            self.msg = msg
            self.type = type
        }
    }

    /// Every invalid input found.
    public let issues: [Issue]

    /// Always 422 Unprocessable Content.
    public var status: HTTPResponse.Status { .unprocessableContent }

    /// Creates an error from the issues found.
    /// - Parameter issues: At least one issue.
    public init(_ issues: [Issue]) {
        self.issues = issues
    }

    /// Creates an error for a single invalid input.
    /// - Parameters:
    ///   - loc: Where the input was.
    ///   - msg: What is wrong.
    ///   - type: The machine-readable kind.
    public init(loc: [String], msg: String, type: String) {
        self.issues = [Issue(loc: loc, msg: msg, type: type)]
    }

    /// Renders the 422 response.
    /// - Parameters:
    ///   - request: The request being answered.
    ///   - context: The request context.
    /// - Returns: The JSON response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try JSONBody.response(status: status, body: ["detail": issues])
    }

    /// Translates a `DecodingError` from a JSON body into field-level issues.
    /// - Parameter error: The decoder's error.
    /// - Returns: The equivalent validation error, located under `body`.
    public static func fromDecoding(_ error: DecodingError) -> ValidationError {
        func location(_ path: [any CodingKey], _ extra: (any CodingKey)? = nil) -> [String] {
            ["body"] + (path + (extra.map { [$0] } ?? [])).map { $0.intValue.map(String.init) ?? $0.stringValue }
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .init(loc: location(context.codingPath, key), msg: "Field required", type: "missing")
        case .valueNotFound(let type, let context):
            return .init(
                loc: location(context.codingPath), msg: "Input should be a valid \(describe(type))", type: "missing")
        case .typeMismatch(let type, let context):
            return .init(
                loc: location(context.codingPath), msg: "Input should be a valid \(describe(type))",
                type: "\(describe(type))_type")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return .init(loc: ["body"], msg: "Body is not valid JSON", type: "json_invalid")
            }
            // Foundation's own wording ("Attempted to decode UUID from invalid UUID string.",
            // "Parsed JSON number <…> does not fit in Int.") is replaced by the sentence every other
            // invalid field gets; the messages this project writes itself are kept.
            let message = context.debugDescription
            if message.contains("UUID") {
                return .init(
                    loc: location(context.codingPath), msg: "Input should be a valid UUID", type: "uuid_parsing")
            }
            if message.contains("does not fit") || message.contains("not representable") {
                return .init(
                    loc: location(context.codingPath), msg: "Input should be a valid number", type: "number_type")
            }
            return .init(loc: location(context.codingPath), msg: message, type: "value_error")
        @unknown default:
            return .init(loc: ["body"], msg: "Invalid body", type: "value_error")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Substring.Type: "string"
        case is Bool.Type: "boolean"
        case is Int.Type, is Int64.Type, is Int32.Type: "integer"
        case is Double.Type, is Float.Type: "number"
        case is [Any].Type: "list"
        default: "object"
        }
    }
}

/// Helpers for writing JSON response bodies with the API's conventions.
public enum JSONBody {
    /// Encodes a value as a JSON response.
    /// - Parameters:
    ///   - status: The response status.
    ///   - headers: Extra headers.
    ///   - body: The value to encode.
    /// - Returns: A response with `Content-Type: application/json`.
    /// - Throws: `EncodingError` when the value cannot be encoded.
    public static func response(
        status: HTTPResponse.Status, headers: HTTPFields = [:], body: some Encodable
    ) throws -> Response {
        let data = try JSONCoding.makeEncoder().encode(body)
        var headers = headers
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(data.count)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
