import AsyncHTTPClient
import Hummingbird
import HummingbirdTesting
import Locking
import NIOCore
import NIOPosix
import OutboundHTTP
import Testing

/// A local server whose `/hold` answers slowly (keeping its connection) and whose `/commit`
/// answers at once, recording what arrived in order.
private final class HoldingServer: Sendable {
    let events = Locked<[String]>([])
    let arrivals: AsyncStream<String>
    private let arrived: AsyncStream<String>.Continuation

    init() { (arrivals, arrived) = AsyncStream.makeStream(of: String.self) }

    func serving<T: Sendable>(_ body: @Sendable (_ base: String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/hold") { _, _ -> Response in
            self.events.withLock { $0.append("hold") }
            self.arrived.yield("hold")
            // The slow answer under test: its connection stays busy meanwhile (four times the
            // connection deadline of the call that waits for it).
            try await Task.sleep(for: .seconds(2))
            self.events.withLock { $0.append("hold answered") }
            return Response(status: .ok)
        }
        router.get("/warm") { _, _ -> Response in Response(status: .ok) }
        router.post("/commit") { _, _ -> Response in
            self.events.withLock { $0.append("commit") }
            return Response(status: .ok)
        }
        return try await Application(router: router).test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }
}

/// An HTTP client with one connection per host and the given connection deadline (also the
/// longest a request waits for a connection), shut down after `body`.
private func withOneConnection<T>(
    connectionDeadline: TimeAmount, _ body: (HTTPClient) async throws -> T
) async throws -> T {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1
    configuration.timeout.connect = connectionDeadline
    let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

@Suite("Service caller")
struct ServiceCallerTests {
    @Test(
        "a call that finds every connection busy past the connection deadline waits for one and is sent once, though not idempotent"
    )
    func busyConnectionsAreWaitedFor() async throws {
        let server = HoldingServer()
        try await server.serving { base in
            try await withOneConnection(connectionDeadline: .milliseconds(500)) { client in
                let caller = ServiceCaller(api: "Test", client: client)
                // The one connection is made first, so that nothing below waits on a connect.
                #expect(try await caller.send(.GET, "\(base)/warm", operation: "warm", idempotent: true).status == .ok)
                async let held = caller.send(.POST, "\(base)/hold", operation: "hold", idempotent: false)
                for await name in server.arrivals where name == "hold" { break }
                let commit = try await caller.send(
                    .POST, "\(base)/commit", operation: "commit", idempotent: false, timeout: .seconds(20))
                #expect(commit.status == .ok)
                #expect(try await held.status == .ok)
                #expect(server.events.withLock { $0 } == ["hold", "hold answered", "commit"])
            }
        }
    }

    @Test("errors before the request is written count as never sent; a deadline passed while answering does not")
    func neverSentErrors() async throws {
        // A port nothing listens on: the connection is refused.
        let closed = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(closed.localAddress?.port)
        try await closed.close()
        let server = HoldingServer()
        try await server.serving { base in
            try await withOneConnection(connectionDeadline: .seconds(10)) { client in
                let refused = await #expect(throws: (any Error).self) {
                    try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/"), timeout: .seconds(5))
                }
                #expect(refused.map(ServiceCaller.neverSent) == true, "\(String(describing: refused))")
                // Over a connection already made, so that the deadline passes after the request is written.
                let warm = try await client.execute(HTTPClientRequest(url: "\(base)/warm"), timeout: .seconds(30))
                #expect(warm.status == .ok)
                var hold = HTTPClientRequest(url: "\(base)/hold")
                hold.method = .POST
                let late = await #expect(throws: (any Error).self) {
                    try await client.execute(hold, timeout: .milliseconds(500))
                }
                #expect(late.map(ServiceCaller.neverSent) == false, "\(String(describing: late))")
            }
        }
    }
}
