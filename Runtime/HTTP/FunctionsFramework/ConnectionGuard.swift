import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization

/// Limits on connections that protect a server from floods and slow clients.
public struct ConnectionLimits: Sendable, Equatable {
    /// `MAX_CONNECTIONS`: open connections served at once (default 512). A connection above the
    /// limit is closed as soon as it is accepted, so a flood cannot use up file descriptors.
    public var maxConnections: Int
    /// `HTTP_HEADER_TIMEOUT_SECONDS`: how long a new connection may take to send a complete
    /// request head (default 10). A client that trickles its headers is cut off.
    public var headerTimeout: Duration
    /// `HTTP_BODY_TIMEOUT_SECONDS`: how long a request body may take to arrive once its head has
    /// (default 300; an upload at the default size limit needs about 170 kB/s).
    public var bodyTimeout: Duration
    /// `HTTP_IDLE_TIMEOUT_SECONDS`: how long a kept-alive connection may wait for its next request
    /// (default 30).
    public var idleTimeout: Duration
    /// `HTTP_BODY_MIN_BYTES_PER_SECOND`: the slowest a client may send a body while the server
    /// waits for it, averaged over ``bodyRateWindow`` (default 1024). Time the server spends not
    /// reading (an upload waiting for a slot) does not count against the client.
    public var bodyMinimumRate: Int
    /// `HTTP_BODY_RATE_WINDOW_SECONDS`: the span over which a body's transfer rate is measured
    /// (default 10).
    public var bodyRateWindow: Duration
    /// After answering a request whose body was still coming (a 401, a 404, a 503), the server
    /// reads and discards the rest of it, so that the client, still sending, reads the answer
    /// rather than a reset; it closes the connection once the body ends, once no byte has come
    /// for this long (2 s), or after ``longestDrain``, as nginx's lingering close does. When not
    /// a byte of the body had come, the connection closes with the answer.
    public var drainAfterEarlyAnswer: Duration
    /// The longest the server drains a body it has answered (30 s).
    public static let longestDrain: Duration = .seconds(30)

    /// Creates limits.
    /// - Parameters:
    ///   - maxConnections: Open connections served at once.
    ///   - headerTimeout: The time allowed for a request head on a new connection.
    ///   - bodyTimeout: The time allowed for a request body.
    ///   - idleTimeout: The time a kept-alive connection may wait for its next request.
    ///   - bodyMinimumRate: The slowest body transfer allowed, in bytes per second.
    ///   - bodyRateWindow: The span over which the rate is measured.
    ///   - drainAfterEarlyAnswer: How long a body answered before it was read is still read.
    public init(
        maxConnections: Int = 512, headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(300),
        idleTimeout: Duration = .seconds(30), bodyMinimumRate: Int = 1024, bodyRateWindow: Duration = .seconds(10),
        drainAfterEarlyAnswer: Duration = .seconds(2)
    ) {
        self.maxConnections = maxConnections
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.bodyMinimumRate = bodyMinimumRate
        self.bodyRateWindow = bodyRateWindow
        self.drainAfterEarlyAnswer = drainAfterEarlyAnswer
    }

    /// Reads the limits.
    /// - Parameter variables: The process's configuration variables.
    /// - Throws: ``ConfigurationError`` for a value out of range.
    public init(_ variables: EnvironmentVariables) throws {
        self.init(
            maxConnections: try variables.integer("MAX_CONNECTIONS", default: 512, in: 1...1_000_000),
            headerTimeout: .seconds(try variables.integer("HTTP_HEADER_TIMEOUT_SECONDS", default: 10, in: 1...3600)),
            bodyTimeout: .seconds(try variables.integer("HTTP_BODY_TIMEOUT_SECONDS", default: 300, in: 1...86_400)),
            idleTimeout: .seconds(try variables.integer("HTTP_IDLE_TIMEOUT_SECONDS", default: 30, in: 1...3600)),
            bodyMinimumRate: try variables.integer("HTTP_BODY_MIN_BYTES_PER_SECOND", default: 1024, in: 0...(1 << 30)),
            bodyRateWindow: .seconds(try variables.integer("HTTP_BODY_RATE_WINDOW_SECONDS", default: 10, in: 1...3600)))
    }
}

/// Counts a server's open connections.
public final class ConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    /// Creates a counter at zero.
    public init() {}

    /// Connections open now.
    public var open: Int { count.load(ordering: .relaxed) }
    /// Connections closed at once because the limit was reached, since start.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// Counts a new connection, unless that would pass `limit`.
    /// - Parameter limit: The most connections open at once.
    /// - Returns: Whether the connection may be served.
    func admit(limit: Int) -> Bool {
        let now = count.wrappingAdd(1, ordering: .relaxed).newValue
        if now > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            refusedCount.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Counts a closed connection.
    func release() {
        count.wrappingSubtract(1, ordering: .relaxed)
    }
}

/// One per connection, after the HTTP codec: closes a connection above the limit as soon as it
/// opens, and closes connections whose client is too slow: a request head not complete within
/// the header timeout (the idle timeout between requests of a kept-alive connection), a body not
/// complete within the body timeout, or sent slower than the minimum rate while the server waits
/// for it. A request answered before its body arrived (a 401, a 404, a 413) is answered with
/// `Connection: close`, and the connection is closed with the answer when no byte of the body has
/// come, else once the body ends or a short drain passes, so a client that declares a body and
/// never sends it holds no connection. The answer to a CONNECT, which HTTP/1.1 frames without a
/// body or length, ends its connection too. The time a handler takes to answer is not limited.
public final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Request parts, passed on unchanged.
    public typealias InboundIn = HTTPRequestPart
    /// Request parts.
    public typealias InboundOut = HTTPRequestPart
    /// Response parts, passed on unchanged.
    public typealias OutboundIn = HTTPResponsePart
    /// Response parts.
    public typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionLimits
    private let counter: ConnectionCounter
    private let logger: Logger
    private var admitted = false
    private var deadline: Scheduled<Void>?
    private var readingBody = false
    private var parserError: HTTPParserError?
    private var answeredSinceParserError = false
    private var droppingBareAnswer = false
    /// The answer went out before the request's body ended: close when it ends or the drain passes.
    private var answeredBeforeBody = false
    /// When the drain of an answered body began.
    private var drainStarted: ContinuousClock.Instant?
    /// The request is a CONNECT, whose answer HTTP/1.1 frames without a body or length: the
    /// connection ends with the answer, so the client is not left waiting for the idle timeout.
    private var answeringConnect = false
    /// The rate check of the body being read: bytes that came in and time spent waiting for them
    /// in the current window, and when the wait now open began (the server asked for more).
    private var rateCheck: RepeatedTask?
    private var bodyBytesInWindow = 0
    /// Whether any byte of the current request's body has arrived.
    private var bodyStarted = false
    private var waitedInWindow: Duration = .zero
    private var waitingSince: ContinuousClock.Instant?

    /// Creates the handler for one connection.
    /// - Parameters:
    ///   - limits: The limits.
    ///   - counter: The server's connection count.
    ///   - logger: Where refusals are reported (at debug level: a flood must not flood the log).
    public init(limits: ConnectionLimits, counter: ConnectionCounter, logger: Logger) {
        self.limits = limits
        self.counter = counter
        self.logger = logger
    }

    /// Admits or closes the connection and starts the header timer.
    public func handlerAdded(context: ChannelHandlerContext) {
        guard counter.admit(limit: limits.maxConnections) else {
            logger.debug("Connection refused: at MAX_CONNECTIONS", metadata: ["limit": "\(limits.maxConnections)"])
            context.close(promise: nil)
            return
        }
        admitted = true
        arm(context: context, after: limits.headerTimeout, reason: "request head not complete")
    }

    /// Releases the connection's place.
    public func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        stopRateCheck()
        if admitted {
            admitted = false
            counter.release()
        }
    }

    /// Tracks where the request is: a head stops the header timer and starts the body timer; the
    /// end of the body stops that.
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            readingBody = true
            answeredBeforeBody = false
            bodyStarted = false
            answeringConnect = head.method == .connect
            arm(context: context, after: limits.bodyTimeout, reason: "request body not complete")
            startRateCheck(context: context)
        case .body(let bytes):
            bodyBytesInWindow += bytes.readableBytes
            bodyStarted = true
            if answeredBeforeBody, let started = drainStarted,
                ContinuousClock.now - started < ConnectionLimits.longestDrain
            {
                // Still coming: the drain goes on until it stops for the idle time, or runs too long.
                arm(context: context, after: limits.drainAfterEarlyAnswer, reason: "answered body stopped coming")
            }
        case .end:
            readingBody = false
            stopRateCheck()
            deadline?.cancel()
            deadline = nil
            if answeredBeforeBody {
                context.fireChannelRead(data)
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
    }

    /// The wait for the client's bytes ends when a read completes.
    public func channelReadComplete(context: ChannelHandlerContext) {
        if let since = waitingSince {
            waitedInWindow += ContinuousClock.now - since
            waitingSince = nil
        }
        context.fireChannelReadComplete()
    }

    /// The server asks for more bytes: while a body is being read, the wait for the client begins.
    public func read(context: ChannelHandlerContext) {
        if readingBody, waitingSince == nil { waitingSince = ContinuousClock.now }
        context.read()
    }

    /// Notes a request the HTTP parser could not read, so that its 400 can say why in JSON.
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError {
            parserError = error
            answeredSinceParserError = false
        }
        context.fireErrorCaught(error)
    }

    /// When an answer ends, the connection waits for the next request: the idle timer runs. The
    /// server's bare 400 for a request the parser refused gets the JSON body every error has, or
    /// is dropped when the handler has already answered that request (a body that broke off).
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if droppingBareAnswer, case .end = part {
            droppingBareAnswer = false
            promise?.succeed()
            return
        }
        if answeringConnect, parserError == nil {
            switch part {
            case .head(var head):
                head.headerFields[.connection] = "close"
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            case .body:
                context.write(data, promise: promise)
            case .end:
                answeringConnect = false
                let channel = context.channel
                context.writeAndFlush(data).whenComplete { result in
                    channel.close(promise: nil)
                    promise?.completeWith(result)
                }
            }
            return
        }
        if case .head(var head) = part, parserError == nil, readingBody {
            // Answered before the body arrived: the client must not send another request here.
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
            return
        }
        if case .end = part, readingBody, parserError == nil {
            answeredBeforeBody = true
            stopRateCheck()
            guard bodyStarted else {
                // Not a byte of the body came: nothing is in flight to drain, so the connection
                // ends with the answer (a flood of declared bodies holds no place for long).
                let channel = context.channel
                context.writeAndFlush(data).whenComplete { result in
                    channel.close(promise: nil)
                    promise?.completeWith(result)
                }
                return
            }
            drainStarted = ContinuousClock.now
            arm(context: context, after: limits.drainAfterEarlyAnswer, reason: "answered before the body was read")
            context.write(data, promise: promise)
            return
        }
        if case .head(var head) = part, let error = parserError {
            let bare = head.status == .badRequest && head.headerFields[.contentLength] == "0"
            guard bare else {
                answeredSinceParserError = true
                context.write(data, promise: promise)
                return
            }
            parserError = nil
            if answeredSinceParserError {
                droppingBareAnswer = true
                promise?.succeed()
                return
            }
            logger.debug("Request refused by the HTTP parser", metadata: ["error": "\(error)"])
            let body = ByteBuffer(string: #"{"detail":"\#(Self.malformedRequestDetail(error))"}"#)
            head.headerFields[.contentType] = "application/json"
            head.headerFields[.contentLength] = String(body.readableBytes)
            head.headerFields[.xContentTypeOptions] = "nosniff"
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: promise)
            return
        }
        if case .end = part, !readingBody {
            arm(context: context, after: limits.idleTimeout, reason: "idle")
        }
        context.write(data, promise: promise)
    }

    /// The answer's detail for a request the parser refused: a stable sentence, with the part of
    /// the request that was wrong where the parser says it plainly (never the parser's own words).
    /// - Parameter error: The parser's error.
    /// - Returns: The detail, safe inside a JSON string.
    public static func malformedRequestDetail(_ error: HTTPParserError) -> String {
        let part: String? =
            switch error {
            case .headerOverflow: "the request head is too large"
            case .invalidChunkSize: "a chunk size is not valid"
            case .invalidContentLength, .unexpectedContentLength: "the Content-Length header is not valid"
            case .invalidMethod: "the method is not valid"
            case .invalidURL: "the request target is not valid"
            case .invalidVersion: "the HTTP version is not valid"
            case .invalidHeaderToken, .invalidCharactersUsed, .lfExpected: "a header line is not valid"
            default: nil
            }
        return part.map { "Malformed HTTP request: \($0)" } ?? "Malformed HTTP request"
    }

    /// Every window, while a body is read: a client that sent less than the minimum rate for the
    /// time the server waited on it (at least half the window) is cut off.
    private func startRateCheck(context: ChannelHandlerContext) {
        stopRateCheck()
        guard limits.bodyMinimumRate > 0 else { return }
        bodyBytesInWindow = 0
        waitedInWindow = .zero
        let window = limits.bodyRateWindow
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        rateCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: TimeAmount(window), delay: TimeAmount(window))
        {
            _ in
            handler.value.checkRate(channel: channel)
        }
    }

    private func checkRate(channel: any Channel) {
        var waited = waitedInWindow
        if let since = waitingSince {
            let now = ContinuousClock.now
            waited += now - since
            waitingSince = now
        }
        let seconds = Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18
        let received = bodyBytesInWindow
        bodyBytesInWindow = 0
        waitedInWindow = .zero
        guard waited * 2 >= limits.bodyRateWindow, Double(received) < Double(limits.bodyMinimumRate) * seconds else {
            return
        }
        logger.debug(
            "Connection closed: body slower than the minimum rate",
            metadata: ["bytes": "\(received)", "waited_seconds": "\(seconds)"])
        stopRateCheck()
        channel.close(promise: nil)
    }

    private func stopRateCheck() {
        rateCheck?.cancel()
        rateCheck = nil
        waitingSince = nil
    }

    private func arm(context: ChannelHandlerContext, after duration: Duration, reason: String) {
        deadline?.cancel()
        let channel = context.channel
        let logger = self.logger
        deadline = context.eventLoop.scheduleTask(in: TimeAmount(duration)) {
            logger.debug("Connection closed by timeout", metadata: ["reason": .string(reason)])
            channel.close(promise: nil)
        }
    }
}
