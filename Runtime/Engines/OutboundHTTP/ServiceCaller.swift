import AsyncHTTPClient
import Foundation
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix

/// A refusal or failure of a call to a remote service, naming the service, the call and its status.
public struct ServiceCallError: Error, CustomStringConvertible {
    /// The service (`Cloud Storage`, `Pub/Sub`, `Qdrant at http://…`).
    public let api: String
    /// What was asked (`PUT object teams/…/original`).
    public let operation: String
    /// The HTTP status, when an answer came.
    public let status: UInt?
    /// The start of the answer's body, or the transport error.
    public let detail: String

    /// Describes a failed call.
    public init(api: String, operation: String, status: UInt?, detail: String) {
        self.api = api
        self.operation = operation
        self.status = status
        self.detail = detail
    }

    /// `<api> <operation>: HTTP <status> <detail>`.
    public var description: String { "\(api) \(operation): \(status.map { "HTTP \($0) " } ?? "")\(detail)" }
}

/// Calls one remote REST service: its headers and `Authorization` on each call, a timeout, and
/// retries of idempotent calls with jittered backoff on 429, 5xx and connection errors. A call
/// that never left (no connection could be made, or none came free in time) is sent again
/// whether idempotent or not.
public struct ServiceCaller: Sendable {
    /// The HTTP client callers share unless given another: a connection that cannot be made fails
    /// its request at once (AsyncHTTPClient would otherwise keep trying until the request's
    /// deadline), so that ``send(_:_:headers:body:operation:idempotent:timeout:)`` retries it with
    /// backoff and a service that is down is reported within about a second.
    ///
    /// Up to 64 HTTP/1 connections per host (AsyncHTTPClient's default is 8): an emulator or a
    /// self-hosted service speaks HTTP/1, and a request held by the server (a Firestore emulator's
    /// read waiting on a transaction's lock) keeps its connection, so with few connections the
    /// commit that would release the lock waits behind the reads it holds up.
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.timeout.connect = .seconds(5)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Whether an error says the request was never written: no connection was made, or none came
    /// free before the connection deadline. Sending such a request again cannot apply it twice.
    /// - Parameter error: An error of `HTTPClient.execute`.
    /// - Returns: `true` when nothing was sent.
    public static func neverSent(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .getConnectionFromPoolTimeout || error == .connectTimeout
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        // Refused or unreachable: the socket never connected (one address, or every one of a name).
        if let error = error as? IOError { return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH].contains(error.errnoCode) }
        return error is NIOConnectionError
    }

    /// The service's name, for errors.
    public let api: String
    /// The service's name in metrics: one per kind of service, whatever its address.
    public let dependency: String
    private let client: HTTPClient
    private let headers: HTTPHeaders
    private let authorization: @Sendable () async throws -> String?

    /// Creates a caller.
    /// - Parameters:
    ///   - api: The service's name, for errors.
    ///   - dependency: The service's name in metrics (`api` when not given).
    ///   - client: The HTTP client.
    ///   - headers: Headers sent with every call (a service's own key header).
    ///   - authorization: The `Authorization` header's value for each call (`Bearer` and a token
    ///     from Google's credentials); `nil` sends none (an emulator).
    public init(
        api: String, dependency: String? = nil, client: HTTPClient = ServiceCaller.client,
        headers: HTTPHeaders = [:], authorization: @escaping @Sendable () async throws -> String? = { nil }
    ) {
        self.api = api
        self.dependency = dependency ?? api
        self.client = client
        self.headers = headers
        self.authorization = authorization
    }

    /// Sends one call; an idempotent one is sent again (up to 4 times in all, after 0.1, 0.2 and
    /// 0.4 s, each with up to as much again of random jitter) when the answer is 429 or 5xx or
    /// the connection fails. A call that was never written (``neverSent(_:)``) is sent again as
    /// an idempotent one is, whatever `idempotent` says; one that found every connection busy
    /// waits on for one until `timeout` has passed since the first try.
    /// - Parameters:
    ///   - method: The HTTP method.
    ///   - url: The URL.
    ///   - headers: Headers besides `Authorization` and the caller's own.
    ///   - body: The body, if any.
    ///   - operation: What is asked, for errors.
    ///   - idempotent: Whether sending it twice is harmless.
    ///   - timeout: The whole call's deadline.
    /// - Returns: The last answer, whatever its status.
    /// - Throws: ``ServiceCallError`` when no answer came.
    public func send(
        _ method: HTTPMethod, _ url: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
        operation: String, idempotent: Bool, timeout: TimeAmount = .seconds(30)
    ) async throws -> HTTPClientResponse {
        try await send(
            method, url, headers: headers, streaming: { body.map { .bytes($0) } }, operation: operation,
            idempotent: idempotent, timeout: timeout)
    }

    /// Sends one call whose body is made afresh for each attempt (a stream read from a file, so
    /// that the body is never held in memory whole), retried as ``send(_:_:headers:body:operation:idempotent:timeout:)``.
    /// - Parameters:
    ///   - method: The HTTP method.
    ///   - url: The URL.
    ///   - headers: Headers besides `Authorization` and the caller's own.
    ///   - streaming: Makes the body for one attempt; `nil` for none.
    ///   - operation: What is asked, for errors.
    ///   - idempotent: Whether sending it twice is harmless.
    ///   - timeout: The whole call's deadline.
    /// - Returns: The last answer, whatever its status.
    /// - Throws: ``ServiceCallError`` when no answer came.
    public func send(
        _ method: HTTPMethod, _ url: String, headers: HTTPHeaders = [:],
        streaming: @Sendable () -> HTTPClientRequest.Body?, operation: String, idempotent: Bool,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = self.headers
        request.headers.add(contentsOf: headers)
        if let token = try await authorization() { request.headers.replaceOrAdd(name: "Authorization", value: token) }
        let attempts = idempotent ? 4 : 1
        let deadline = ContinuousClock.now + .nanoseconds(timeout.nanoseconds)
        var attempt = 0
        while true {
            attempt += 1
            request.body = streaming()
            let base = 0.1 * Double(1 << min(attempt - 1, 3))
            let pause = Duration.seconds(base + Double.random(in: 0..<base))
            let began = ContinuousClock.now
            do {
                let response = try await client.execute(request, timeout: timeout)
                record(since: began, status: String(response.status.code))
                let retriable = response.status == .tooManyRequests || response.status.code >= 500
                guard retriable, attempt < attempts else { return response }
                _ = try? await response.body.collect(upTo: 1 << 20)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                record(since: began, status: "error")
                let again: Bool
                if let error = error as? HTTPClientError, error == .getConnectionFromPoolTimeout {
                    // Every connection was busy: the service is up, and the call waits on for one.
                    again = ContinuousClock.now + pause < deadline
                } else {
                    again = attempt < (Self.neverSent(error) ? 4 : attempts)
                }
                guard again else {
                    throw ServiceCallError(api: api, operation: operation, status: nil, detail: "\(error)")
                }
            }
            try await Task.sleep(for: pause)
        }
    }

    /// Records one attempt as `outbound_request_duration_seconds` by `dependency` (the service's
    /// name) and `http_response_status_code` (`error` when no answer came).
    private func record(since start: ContinuousClock.Instant, status: String) {
        Timer(
            label: "outbound_request_duration_seconds",
            dimensions: [("dependency", dependency), ("http_response_status_code", status)]
        ).recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1)))
    }

    /// The error for an answer that was not the one hoped for, with the start of its body.
    /// - Parameters:
    ///   - response: The answer.
    ///   - operation: What was asked.
    /// - Returns: The error to throw.
    public func failure(_ response: HTTPClientResponse, _ operation: String) async -> ServiceCallError {
        let body = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
        return ServiceCallError(
            api: api, operation: operation, status: response.status.code, detail: String(body.prefix(300)))
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters (so `/` becomes `%2F`, as
    /// names in URL paths need).
    /// - Parameter text: The text.
    /// - Returns: The encoded text.
    public static func escaped(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    /// RFC 3986's unreserved characters: ASCII letters and digits, `-`, `.`, `_` and `~` (not
    /// `CharacterSet.alphanumerics`, which takes in every script's letters).
    public static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Percent-encodes a path, each segment as ``escaped(_:)`` does, keeping the `/` between them.
    /// - Parameter path: The path (an object name).
    /// - Returns: The encoded path.
    public static func escapedPath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { escaped(String($0)) }
            .joined(separator: "/")
    }
}
