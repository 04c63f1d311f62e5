import AsyncHTTPClient
import ImageAPICore
import NIOCore
import NIOPosix
import OutboundHTTP

extension OutageClassifier {
    /// The outages of the adapters this package wires, beside the domain's own `unavailable`
    /// errors: a call to a Google API or another REST service that got no answer, 429 or a 5xx,
    /// and a push whose endpoint could not be reached at all. A push that was answered with an
    /// error (the handler failed an attempt) is no outage.
    public static let adapters = OutageClassifier { error in
        if let call = error as? ServiceCallError {
            guard let status = call.status else { return true }
            return status == 429 || status >= 500
        }
        return error is HTTPClientError || error is NIOConnectionError || error is ChannelError || error is IOError
    }
}
