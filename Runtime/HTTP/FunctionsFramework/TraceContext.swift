import HTTPTypes
import Hummingbird
import Logging

/// The trace a request belongs to, read from `traceparent` (W3C) or `X-Cloud-Trace-Context`.
public struct TraceContext: Sendable, Equatable {
    /// The 32-hex-digit trace id.
    public let traceID: String
    /// The span id, as the header gave it (hex for W3C, decimal for Cloud Trace), if any.
    public let spanID: String?
    /// Whether the caller sampled the trace.
    public let sampled: Bool

    /// Reads the trace from request headers; `traceparent` wins when both are valid.
    /// - Parameter headers: The request headers.
    /// - Returns: `nil` when neither header holds a valid trace.
    public init?(headers: HTTPFields) {
        if let value = headers[HTTPField.Name("traceparent")!], let parsed = Self.parseTraceparent(value) {
            self = parsed
        } else if let value = headers[HTTPField.Name("X-Cloud-Trace-Context")!],
            let parsed = Self.parseCloudTraceContext(value)
        {
            self = parsed
        } else {
            return nil
        }
    }

    /// Creates a trace context from its parts.
    /// - Parameters:
    ///   - traceID: The trace id.
    ///   - spanID: The span id.
    ///   - sampled: Whether the trace is sampled.
    public init(traceID: String, spanID: String?, sampled: Bool) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// Parses `00-<32 hex trace>-<16 hex span>-<2 hex flags>`.
    /// - Parameter value: The header value.
    /// - Returns: The trace, or `nil` when the value is malformed or all-zero.
    public static func parseTraceparent(_ value: String) -> TraceContext? {
        let parts = value.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].count == 2, parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
            parts[1].allSatisfy(\.isHexDigit), parts[2].allSatisfy(\.isHexDigit),
            let flags = UInt8(parts[3], radix: 16),
            parts[1].contains(where: { $0 != "0" })
        else { return nil }
        return TraceContext(traceID: parts[1].lowercased(), spanID: String(parts[2]), sampled: flags & 1 == 1)
    }

    /// Parses `TRACE_ID/SPAN_ID;o=OPTIONS`, where the span and options are optional.
    /// - Parameter value: The header value.
    /// - Returns: The trace, or `nil` when the trace id is not 32 hex digits.
    public static func parseCloudTraceContext(_ value: String) -> TraceContext? {
        let withoutOptions = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        let ids = withoutOptions[0].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let trace = ids[0].trimmingCharacters(in: .whitespaces)
        guard trace.count == 32, trace.allSatisfy(\.isHexDigit) else { return nil }
        let span = ids.count > 1 && !ids[1].isEmpty ? String(ids[1]) : nil
        let sampled = withoutOptions.count > 1 && withoutOptions[1].trimmingCharacters(in: .whitespaces) == "o=1"
        return TraceContext(traceID: trace.lowercased(), spanID: span, sampled: sampled)
    }

    /// The log fields Cloud Logging uses to link an entry to its trace.
    /// - Parameter projectID: The project that qualifies the trace id; without one the bare id is written.
    /// - Returns: `logging.googleapis.com/trace`, `…/spanId` and `…/trace_sampled` metadata.
    public func logMetadata(projectID: String?) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "logging.googleapis.com/trace": .string(
                projectID.map { "projects/\($0)/traces/\(traceID)" } ?? traceID),
            "logging.googleapis.com/trace_sampled": .stringConvertible(sampled),
        ]
        if let spanID {
            metadata["logging.googleapis.com/spanId"] = .string(spanID)
        }
        return metadata
    }
}
