import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A raw TCP connection to a loopback port, for clients no HTTP library would be: half-sent
/// requests, trickled bytes.
final class RawConnection {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RunningFunction.StartError("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw RunningFunction.StartError("connect: \(errno)")
        }
    }

    /// Sends text; `false` when the server has closed the connection.
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            == bytes.count
    }

    /// Reads until the server closes the connection or `timeout` passes.
    /// - Returns: Whether the server closed it, and what it sent before.
    func waitForClose(timeout: Duration) -> (closed: Bool, received: String) {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(
                left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            guard poll(&poller, 1, max(milliseconds, 1)) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (true, String(decoding: received, as: UTF8.self)) }
            received += buffer[0..<count]
        }
        return (false, String(decoding: received, as: UTF8.self))
    }

    deinit { close(descriptor) }
}

@Suite("End to end: connection floods and slow clients", .serialized)
struct ConnectionLimitTests {
    @Test("connections above MAX_CONNECTIONS are closed at once; the held ones time out; the server serves again")
    func connectionCap() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction(
            "emulator", in: folder, environment: ["MAX_CONNECTIONS": "8", "HTTP_HEADER_TIMEOUT_SECONDS": "4"])
        try await emulator.waitUntilListening()
        let held = try (0..<8).map { _ in try RawConnection(port: emulator.port) }
        for connection in held { #expect(connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n")) }
        // The header timeout (4 s) is far off: whatever closes these now is the connection limit.
        for _ in 0..<20 {
            let extra = try RawConnection(port: emulator.port)
            extra.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let (closed, received) = extra.waitForClose(timeout: .seconds(2))
            #expect(closed && received.isEmpty, "refused without an answer")
        }
        #expect(emulator.process.isRunning)
        for connection in held {
            let (closed, received) = connection.waitForClose(timeout: .seconds(15))
            #expect(closed && received.isEmpty, "a request head that never completes is cut off")
        }
        #expect(try await emulator.request(.GET, "/healthz").status == 200)
        #expect(try await emulator.terminate() == 0)
    }

    @Test("a trickled head, a trickled body and an idle keep-alive connection are each closed by the server")
    func slowClients() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction(
            "emulator", in: folder,
            environment: [
                "HTTP_HEADER_TIMEOUT_SECONDS": "1", "HTTP_BODY_TIMEOUT_SECONDS": "2", "HTTP_IDLE_TIMEOUT_SECONDS": "1",
            ])
        try await emulator.waitUntilListening()

        // One byte every 200 ms: each byte arrives well within any read timeout, the head never ends.
        func trickle(_ connection: RawConnection, _ text: String) async throws -> Bool {
            for character in text {
                guard connection.send(String(character)) else { return true }
                try await Task.sleep(for: .milliseconds(200))
            }
            return connection.waitForClose(timeout: .seconds(1)).closed
        }
        let head = try RawConnection(port: emulator.port)
        #expect(try await trickle(head, "GET /healthz HTTP/1.1\r\nX-Slow: " + String(repeating: "a", count: 100)))

        let body = try RawConnection(port: emulator.port)
        #expect(
            body.send(
                "POST /api/v1/teams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            ))
        #expect(try await trickle(body, String(repeating: " ", count: 100)))

        let idle = try RawConnection(port: emulator.port)
        #expect(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        let (closed, received) = idle.waitForClose(timeout: .seconds(10))
        #expect(received.hasPrefix("HTTP/1.1 200"), "answered first")
        #expect(closed, "then closed when idle")

        #expect(try await emulator.request(.GET, "/healthz").status == 200)
        #expect(try await emulator.terminate() == 0)
    }

    @Test("requests the HTTP parser refuses (a bad chunk size, a bad header line, no method) answer one JSON 400")
    func parserRejections() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction("emulator", in: folder, environment: [:])
        try await emulator.waitUntilListening()
        let requests = [
            "POST /api/v1/teams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
            "GARBAGE\r\n\r\n",
        ]
        for request in requests {
            let connection = try RawConnection(port: emulator.port)
            #expect(connection.send(request))
            let (closed, received) = connection.waitForClose(timeout: .seconds(10))
            #expect(closed)
            #expect(received.hasPrefix("HTTP/1.1 400 Bad Request"), "\(received)")
            #expect(received.components(separatedBy: "HTTP/1.1 ").count == 2, "exactly one answer: \(received)")
            let body = try #require(received.components(separatedBy: "\r\n\r\n").last)
            let detail = try #require(try json(body)["detail"] as? String)
            // A stable sentence, never the parser's own words ("swift-http-parser error", "strict mode").
            #expect(detail.hasPrefix("Malformed HTTP request"))
            #expect(!detail.contains("parser") && !detail.contains("strict") && !detail.contains("paused"), "\(detail)")
        }
        #expect(try await emulator.request(.GET, "/api/v1/teams").status == 200)
        #expect(try await emulator.terminate() == 0)
        #expect(!emulator.output.contains(#""severity":"ERROR""#), "no request is a server error")
    }

    @Test("a request answered before its body arrived closes its connection: declared bodies never sent hold no slot")
    func earlyAnswersClose() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The body timeout (300 s) is far off: whatever closes these is the early answer.
        let emulator = try RunningFunction("emulator", in: folder, environment: ["MAX_CONNECTIONS": "8"])
        try await emulator.waitUntilListening()
        let requests = [
            "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            "POST /api/v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            "DELETE /api/v1/teams HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc",
        ]
        let connections = try (0..<8).map { index in
            let connection = try RawConnection(port: emulator.port)
            #expect(connection.send(requests[index % requests.count]))
            return connection
        }
        for (index, connection) in connections.enumerated() {
            let (closed, received) = connection.waitForClose(timeout: .seconds(10))
            #expect(closed, "closed after the answer, not after the body timeout")
            let status = ["404", "401", "405"][index % requests.count]
            #expect(received.hasPrefix("HTTP/1.1 \(status)"), "\(received)")
            #expect(received.lowercased().contains("connection: close"), "\(received)")
        }
        // A CONNECT's answer has no body or length in HTTP/1.1: the connection ends with it rather
        // than at the idle timeout (30 s).
        for target in ["/api/v1/teams", "example.com:443"] {
            let connect = try RawConnection(port: emulator.port)
            #expect(connect.send("CONNECT \(target) HTTP/1.1\r\nHost: x\r\n\r\n"))
            let (closed, received) = connect.waitForClose(timeout: .seconds(5))
            #expect(closed, "\(target)")
            #expect(received.hasPrefix("HTTP/1.1 40"), "\(received)")
        }
        // Every slot is free again; the Server header names the product, not the functions inside.
        let health = try await emulator.request(.GET, "/healthz")
        #expect(health.status == 200)
        #expect(health.headers["Server"] == ["image-api"])
        #expect(try await emulator.terminate() == 0)
    }

    @Test(
        "a body still coming after an early answer is drained while it flows, so the client finishes and reads the answer"
    )
    func drainWhileTheBodyFlows() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction("emulator", in: folder, environment: [:])
        try await emulator.waitUntilListening()
        let connection = try RawConnection(port: emulator.port)
        // The head with the body's first 200 bytes, then 200 bytes every 500 ms: 5 s in all, past
        // the 2 s a body that stops coming is given.
        let chunk = String(repeating: "x", count: 200)
        #expect(connection.send("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + chunk))
        for _ in 1..<10 {
            try await Task.sleep(for: .milliseconds(500))
            #expect(connection.send(chunk), "the server did not cut a body still coming")
        }
        let (closed, received) = connection.waitForClose(timeout: .seconds(5))
        #expect(closed && received.hasPrefix("HTTP/1.1 404"), "\(received)")
        #expect(try await emulator.terminate() == 0)
    }

    @Test("a body sent slower than the minimum rate is cut off long before the body timeout; a steady one is served")
    func minimumBodyRate() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction(
            "emulator", in: folder,
            environment: ["HTTP_BODY_MIN_BYTES_PER_SECOND": "100", "HTTP_BODY_RATE_WINDOW_SECONDS": "1"])
        try await emulator.waitUntilListening()
        let head = "POST /api/v1/teams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

        // 20 bytes a second, for a body that would take a minute.
        let slow = try RawConnection(port: emulator.port)
        #expect(slow.send(head + "Content-Length: 1200\r\n\r\n{"))
        let started = ContinuousClock.now
        var cut = false
        for _ in 0..<60 {
            guard slow.send(" ") else {
                cut = true
                break
            }
            if slow.waitForClose(timeout: .milliseconds(50)).closed {
                cut = true
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(cut, "closed for sending too slowly")
        #expect(ContinuousClock.now - started < .seconds(10), "within a few rate windows, not the 300 s body timeout")

        // About 600 bytes a second: several windows long, and served.
        let body = #"{"name": "Steady"}"# + String(repeating: " ", count: 1182)
        let steady = try RawConnection(port: emulator.port)
        #expect(steady.send(head + "Content-Length: \(body.utf8.count)\r\n\r\n"))
        let bytes = Array(body)
        for start in stride(from: 0, to: bytes.count, by: 200) {
            #expect(steady.send(String(bytes[start..<min(start + 200, bytes.count)])))
            try await Task.sleep(for: .milliseconds(300))
        }
        let (_, received) = steady.waitForClose(timeout: .seconds(3))
        #expect(received.hasPrefix("HTTP/1.1 201"), "\(received)")
        #expect(try await emulator.terminate() == 0)
    }

    @Test("one team's stalled uploads take at most half the queue and are cut off; another team's upload is served")
    func fairUploadSlots() async throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let emulator = try RunningFunction(
            "emulator", in: folder,
            environment: [
                "MAX_CONCURRENT_UPLOADS": "1", "UPLOAD_QUEUE_LIMIT": "4", "HTTP_BODY_RATE_WINDOW_SECONDS": "1",
                "HTTP_BODY_MIN_BYTES_PER_SECOND": "1000",
            ])
        try await emulator.waitUntilListening()
        let flooder = try await teamKey(on: emulator, team: "Flood", email: "flood@example.com")
        let neighbour = try await teamKey(on: emulator, team: "Neighbour", email: "neighbour@example.com")

        // Four uploads that send their head and a little, then nothing: one place and two waits
        // are the flooding team's share; the fourth is refused at once.
        let stalled = try (0..<4).map { _ in
            let connection = try RawConnection(port: emulator.port)
            #expect(
                connection.send(
                    "POST /api/v1/images HTTP/1.1\r\nHost: x\r\nX-API-Key: \(flooder)\r\n"
                        + "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"))
            return connection
        }
        let answers = stalled.map { $0.waitForClose(timeout: .seconds(10)).received }
        #expect(answers.filter { $0.hasPrefix("HTTP/1.1 503") }.count == 1, "\(answers)")

        let upload = try await ImagePipelineEndToEndTests().upload("sunset-small.jpg", to: emulator, key: neighbour)
        #expect(upload.status == 201, "\(upload.body)")
        #expect(try await emulator.terminate() == 0)
    }

    /// A new team, a member and the member's key, on an emulator in development mode.
    func teamKey(on emulator: RunningFunction, team: String, email: String) async throws -> String {
        let teamID = try #require(
            try json(try await emulator.request(.POST, "/api/v1/teams", json: #"{"name": "\#(team)"}"#).body)["id"]
                as? String)
        let user = try await emulator.request(
            .POST, "/api/v1/users", json: #"{"email": "\#(email)", "name": "Member", "team_id": "\#(teamID)"}"#)
        let userID = try #require(try json(user.body)["id"] as? String)
        let issued = try await emulator.request(
            .POST, "/api/v1/auth/api-keys?user_id=\(userID)&team_id=\(teamID)", json: #"{"name": "flood"}"#)
        return try #require(try json(issued.body)["key"] as? String)
    }
}
