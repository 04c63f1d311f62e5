import FunctionsFramework
import HTTPTypes
import ImageAPICore

extension DomainError: FunctionErrorConvertible {
    /// The status each kind of refusal answers with.
    public var status: HTTPResponse.Status {
        switch kind {
        case .notFound: .notFound
        case .conflict: .conflict
        case .forbidden: .forbidden
        case .unauthenticated: .unauthorized
        case .rateLimited: .tooManyRequests
        case .unavailable, .unavailableFor: .serviceUnavailable
        }
    }

    /// The same refusal as the framework's error: status, `detail`, fields and the headers its
    /// kind needs (a `WWW-Authenticate` challenge on 401, `Retry-After` on 429 and on a 503 that knows when).
    public var functionError: FunctionError {
        switch kind {
        case .unauthenticated:
            let challenge = FunctionError.unauthorized(detail)
            return FunctionError(status, detail, headers: challenge.headers, fields: fields)
        case .rateLimited(let seconds), .unavailableFor(let seconds):
            return FunctionError(status, detail, headers: [.retryAfter: String(seconds)], fields: fields)
        default:
            return FunctionError(status, detail, fields: fields)
        }
    }
}
