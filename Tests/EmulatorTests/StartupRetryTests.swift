import AsyncHTTPClient
import Foundation
import FunctionHosting
import ImageAPICore
import LocalPush
import Locking
import Logging
import OutboundHTTP
import Testing

@Suite("Start-up work retried while a dependency is not ready")
struct StartupRetryTests {
    struct NotYet: Error {}
    struct Refused: Error {}

    @Test("failures are retried until the work succeeds; a final error is thrown at once; the limit ends the retries")
    func retries() async throws {
        let retry = StartupRetry(limit: .seconds(30), initialWait: .milliseconds(1))
        let logger = Logger(label: "startup-retry-test")
        let attempts = Locked(0)
        let value = try await retry.run("Registering", logger: logger) { () async throws -> Int in
            let attempt = attempts.withLock { count -> Int in
                count += 1
                return count
            }
            if attempt < 4 { throw NotYet() }
            return attempt
        }
        #expect(value == 4)

        attempts.withLock { $0 = 0 }
        await #expect(throws: Refused.self) {
            try await retry.run("Registering", logger: logger, isFinal: { $0 is Refused }) { () async throws -> Int in
                attempts.withLock { $0 += 1 }
                throw Refused()
            }
        }
        #expect(attempts.withLock { $0 } == 1, "a final error is not retried")

        let short = StartupRetry(limit: .milliseconds(50), initialWait: .milliseconds(10))
        attempts.withLock { $0 = 0 }
        await #expect(throws: NotYet.self) {
            try await short.run("Registering", logger: logger) { () async throws -> Int in
                attempts.withLock { $0 += 1 }
                throw NotYet()
            }
        }
        #expect((2...6).contains(attempts.withLock { $0 }), "retried until the limit, then given up")
    }
}

@Suite("Outages told from failures")
struct AdapterOutageTests {
    @Test(
        "no answer, 429 and 5xx from a service, an unreachable push endpoint and the domain's unavailable errors are outages; other errors are not"
    )
    func classification() {
        let outages = OutageClassifier.adapters
        func call(_ status: UInt?) -> ServiceCallError {
            ServiceCallError(api: "Qdrant", operation: "PUT points", status: status, detail: "")
        }
        #expect(outages.isOutage(call(nil)) && outages.isOutage(call(429)) && outages.isOutage(call(503)))
        #expect(!outages.isOutage(call(400)) && !outages.isOutage(call(404)))
        #expect(outages.isOutage(HTTPClientError.connectTimeout))
        #expect(outages.isOutage(DomainError(.unavailable, "down")))
        #expect(outages.isOutage(DomainError(.unavailableFor(retryAfterSeconds: 1), "down")))
        #expect(!outages.isOutage(DomainError.forbidden("no")))
        #expect(
            !outages.isOutage(PushError("HTTP 500: Processing failed (attempt 1 of 3)")),
            "an answered push is no outage")
        #expect(!outages.isOutage(CocoaError(.fileNoSuchFile)))
    }

    @Test(
        "a local push answered 503 or 429 (the handler's dependency is down) is an outage; 500 (a failed attempt) is not"
    )
    func answeredPushes() async throws {
        struct Answering: PushTransport {
            let status: Int
            var isReady: Bool { true }
            func push(headers: [(String, String)], body: Data) async throws -> (status: Int, body: String) {
                (status, #"{"detail":"answer"}"#)
            }
        }
        let queued = QueuedMessage(
            message: OutboxMessage(topic: "image-uploads", messageID: "m", data: Data("{}".utf8)), publishedAt: Date(),
            attempts: 1)
        for (status, outage) in [(503, true), (429, true), (500, false), (400, false)] {
            do {
                try await LocalPushPublisher(transport: Answering(status: status)).publish(queued)
                Issue.record("HTTP \(status) was taken as delivered")
            } catch {
                #expect(OutageClassifier.adapters.isOutage(error) == outage, "HTTP \(status): \(error)")
            }
        }
        try await LocalPushPublisher(transport: Answering(status: 204)).publish(queued)
    }
}
