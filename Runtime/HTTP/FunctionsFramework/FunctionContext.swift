import Foundation
import Hummingbird
import Logging

/// The per-request context every function handler receives.
///
/// It carries the request's logger (already tagged with the request id and the Cloud Trace
/// fields) and the body-size limit the server was configured with.
public struct FunctionContext: RequestContext {
    /// Hummingbird's storage for the logger, route parameters and endpoint path.
    public var coreContext: CoreRequestContextStorage

    /// The largest request body a handler may read, in bytes. Set from `MAX_REQUEST_BODY_BYTES`
    /// by ``BodyLimitMiddleware``; reading more answers 413.
    public var maxUploadSize: Int

    /// The IP address of the connection's peer, when the request came over a socket.
    public let peerAddress: String?

    /// Who is calling, for per-client limits: the peer address, or the address the trusted
    /// proxies put in `X-Forwarded-For` (set by ``ClientAddressMiddleware``).
    public var clientAddress: String

    /// Creates a context for a request arriving on a channel.
    /// - Parameter source: The channel and logger the server provides.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.maxUploadSize = ServerConfiguration.defaultMaxRequestBodyBytes
        self.peerAddress = source.channel.remoteAddress?.ipAddress
        self.clientAddress = peerAddress ?? "local"
    }

    /// The decoder used for JSON request bodies (ISO-8601 dates).
    public var requestDecoder: JSONDecoder { JSONCoding.makeDecoder() }

    /// The encoder used for JSON responses (ISO-8601 UTC dates with milliseconds).
    public var responseEncoder: JSONEncoder { JSONCoding.makeEncoder() }
}
