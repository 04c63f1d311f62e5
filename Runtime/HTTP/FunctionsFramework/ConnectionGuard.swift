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

    /// Creates limits.
    /// - Parameters:
    ///   - maxConnections: Open connections served at once.
    ///   - headerTimeout: The time allowed for a request head on a new connection.
    ///   - bodyTimeout: The time allowed for a request body.
    ///   - idleTimeout: The time a kept-alive connection may wait for its next request.
    public init(
        maxConnections: Int = 512, headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(300),
        idleTimeout: Duration = .seconds(30)
    ) {
        self.maxConnections = maxConnections
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
    }

    /// Reads the limits.
    /// - Parameter variables: The process's configuration variables.
    /// - Throws: ``ConfigurationError`` for a value out of range.
    public init(_ variables: EnvironmentVariables) throws {
        self.init(
            maxConnections: try variables.integer("MAX_CONNECTIONS", default: 512, in: 1...1_000_000),
            headerTimeout: .seconds(try variables.integer("HTTP_HEADER_TIMEOUT_SECONDS", default: 10, in: 1...3600)),
            bodyTimeout: .seconds(try variables.integer("HTTP_BODY_TIMEOUT_SECONDS", default: 300, in: 1...86_400)),
            idleTimeout: .seconds(try variables.integer("HTTP_IDLE_TIMEOUT_SECONDS", default: 30, in: 1...3600)))
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
/// complete within the body timeout. The time a handler takes to answer is not limited.
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
        if admitted {
            admitted = false
            counter.release()
        }
    }

    /// Tracks where the request is: a head stops the header timer and starts the body timer; the
    /// end of the body stops that.
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            readingBody = true
            arm(context: context, after: limits.bodyTimeout, reason: "request body not complete")
        case .body:
            break
        case .end:
            readingBody = false
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
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
            let body = ByteBuffer(string: #"{"detail":"Malformed HTTP request: \#(Self.describe(error))"}"#)
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

    /// The parser's reason, as plain words safe inside a JSON string.
    static func describe(_ error: HTTPParserError) -> String {
        String(describing: error).filter { $0.isLetter || $0.isNumber || $0 == " " || $0 == "_" }
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
