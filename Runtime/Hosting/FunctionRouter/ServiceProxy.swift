import AsyncHTTPClient
import Foundation
import FunctionsFramework
import HTTPTypes
import Hummingbird
import Locking
import NIOCore
import NIOHTTP1
import OutboundHTTP

/// Forwards each request whose path the URL map routes to the service behind it, streaming both
/// bodies, and answers the service's response as it comes (a redirect included: it is the
/// client's to follow). Requests no rule matches go on down the chain (the router's own
/// `/healthz`, or a JSON 404).
public struct ServiceProxy: RouterMiddleware {
    /// The URL map.
    public let map: ServiceURLMap
    /// Each service's base URLs (`http://127.0.0.1:8081`), by service name: one per replica.
    public let upstreams: [String: [String]]
    private let client: HTTPClient
    /// Requests forwarded so far, by service: which replica is next.
    private let turns: ReplicaTurns

    /// Headers of one connection, never forwarded (RFC 9110, section 7.6.1), and `Host`, which
    /// the outbound request sets from the service's URL.
    static let connectionHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host",
    ]

    /// The client the router forwards with: it never follows redirects, and a service that is
    /// down fails the request at once instead of being retried until the deadline.
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Creates the proxy.
    /// - Parameters:
    ///   - map: The URL map.
    ///   - upstreams: Each mapped service's base URLs, one per replica; replicas take the
    ///     service's requests in turn.
    ///   - client: The HTTP client to forward with.
    public init(map: ServiceURLMap, upstreams: [String: [String]], client: HTTPClient = ServiceProxy.client) {
        self.map = map
        self.upstreams = upstreams.mapValues { bases in bases.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } }
        self.client = client
        self.turns = ReplicaTurns(services: Array(upstreams.keys))
    }

    /// Forwards a mapped request, or passes an unmapped one on.
    /// - Parameters:
    ///   - request: The incoming request.
    ///   - context: The request context.
    ///   - next: The rest of the chain.
    /// - Returns: The service's response.
    /// - Throws: ``FunctionError`` 503 with `Retry-After` when no connection to the service could
    /// be made (nothing was sent: a process starting again, as a load balancer answers while no
    /// instance is up), 502 when the service took the request and gave no answer.
    public func handle(
        _ request: Request, context: FunctionContext, next: (Request, FunctionContext) async throws -> Response
    ) async throws -> Response {
        guard let service = map.service(for: request.uri.path), let bases = upstreams[service], !bases.isEmpty else {
            return try await next(request, context)
        }
        let base = bases[turns.next(service) % bases.count]
        var outbound = HTTPClientRequest(url: base + request.uri.description)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.connectionHeaders.contains(field.name.canonicalName) {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        let client = context.peerAddress ?? "unknown"
        let forwardedFor = request.headers[values: HTTPField.Name("X-Forwarded-For")!] + [client]
        outbound.headers.replaceOrAdd(name: "X-Forwarded-For", value: forwardedFor.joined(separator: ", "))
        outbound.headers.replaceOrAdd(name: "X-Forwarded-Proto", value: "http")
        if let host = request.head.authority {
            outbound.headers.replaceOrAdd(name: "X-Forwarded-Host", value: host)
        }
        let length = request.headers[.contentLength].flatMap(Int.init)
        if length.map({ $0 > 0 }) ?? request.headers.contains(.transferEncoding) {
            outbound.body = .stream(request.body, length: length.map { .known(Int64($0)) } ?? .unknown)
        }
        let response: HTTPClientResponse
        do {
            response = try await self.client.execute(outbound, timeout: .minutes(10), logger: context.logger)
        } catch let error where ServiceCaller.neverSent(error) {
            throw FunctionError(
                .serviceUnavailable, "The \(service) service is not taking requests at the moment; retry",
                headers: [.retryAfter: "1"], logDetail: "\(base): \(error)")
        } catch {
            throw FunctionError(
                .badGateway, "The \(service) service did not answer", logDetail: "\(base): \(error)")
        }
        var headers = HTTPFields()
        for (name, value) in response.headers where !Self.connectionHeaders.contains(name.lowercased()) {
            if let name = HTTPField.Name(name) { headers.append(HTTPField(name: name, value: value)) }
        }
        let contentLength = response.headers.first(name: "content-length").flatMap(Int.init)
        headers[.contentLength] = nil
        let body = response.body
        return Response(
            status: HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headers: headers,
            body: ResponseBody(contentLength: contentLength) { writer in
                for try await chunk in body { try await writer.write(chunk) }
                try await writer.finish(nil)
            })
    }
}

/// A counter per service, so that its replicas take requests in turn.
final class ReplicaTurns: Sendable {
    private let counters: Locked<[String: Int]>

    init(services: [String]) {
        counters = Locked(Dictionary(uniqueKeysWithValues: services.map { ($0, 0) }))
    }

    /// The service's turn number, counting up from 0.
    func next(_ service: String) -> Int {
        counters.withLock { counters in
            defer { counters[service, default: 0] &+= 1 }
            return counters[service, default: 0]
        }
    }
}
