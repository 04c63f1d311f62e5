import Foundation
import Locking
import Logging

/// A `LogHandler` writing one JSON object per line in the structured format Cloud Logging reads:
/// `severity`, `message`, `time`, the logger label, and every metadata field at the top level
/// (so `logging.googleapis.com/trace` and `httpRequest` are recognised).
///
/// See <https://cloud.google.com/logging/docs/structured-logging>.
public struct CloudLoggingLogHandler: LogHandler {
    /// Where finished lines go. The default writes to standard output.
    public typealias Sink = @Sendable (String) -> Void

    /// The lowest level written.
    public var logLevel: Logger.Level
    /// Metadata added to every entry of this logger.
    public var metadata: Logger.Metadata
    /// The logger's label, written as `logger`.
    public let label: String
    private let sink: Sink

    /// Creates a handler.
    /// - Parameters:
    ///   - label: The logger label.
    ///   - level: The lowest level written.
    ///   - sink: Where lines go.
    public init(label: String, level: Logger.Level, sink: @escaping Sink = CloudLoggingLogHandler.standardOutput) {
        self.label = label
        self.logLevel = level
        self.metadata = [:]
        self.sink = sink
    }

    /// Makes every logger of the process a Cloud Logging handler. Call once, from `main`.
    /// - Parameter level: The lowest level written.
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in CloudLoggingLogHandler(label: label, level: level) }
    }

    private static let outputLock = Locked(())

    /// Writes a line to standard output, whole, even when several tasks log at once.
    /// - Parameter line: The JSON line without its newline.
    public static let standardOutput: Sink = { line in
        outputLock.withLock { _ in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    /// Reads or writes one metadata field.
    /// - Parameter key: The field name.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one entry; an attached error is written as `error`.
    /// - Parameter event: The entry.
    public func log(event: LogEvent) {
        var fields = metadata.merging(event.metadata ?? [:]) { $1 }
        if let error = event.error { fields["error"] = .string(String(describing: error)) }
        sink(
            Self.format(
                level: event.level, message: event.message.description, label: label, metadata: fields, time: Date()))
    }

    /// Formats one entry as a JSON line.
    /// - Parameters:
    ///   - level: The level, written as Cloud Logging's `severity`.
    ///   - message: The message.
    ///   - label: The logger label.
    ///   - metadata: The fields to add.
    ///   - time: When the entry was made.
    /// - Returns: The JSON text, without a newline.
    public static func format(
        level: Logger.Level, message: String, label: String, metadata: Logger.Metadata, time: Date
    ) -> String {
        var object: [String: JSONValue] = metadata.mapValues(JSONValue.init)
        object["severity"] = .string(severity(level))
        object["message"] = .string(message)
        object["time"] = .string(JSONCoding.timestamp(time))
        object["logger"] = .string(label)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        guard let data = try? encoder.encode(object) else {
            return #"{"severity":"ERROR","message":"unencodable log"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Cloud Logging's name for a level.
    /// - Parameter level: The swift-log level.
    /// - Returns: `DEBUG`, `INFO`, `NOTICE`, `WARNING`, `ERROR` or `CRITICAL`.
    public static func severity(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }
}

extension JSONValue {
    /// A log metadata value as JSON: integers and booleans stay numbers and booleans.
    init(_ value: Logger.MetadataValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .stringConvertible(let value as Int): self = .number(value)
        case .stringConvertible(let value as Bool): self = .bool(value)
        case .stringConvertible(let value): self = .string(value.description)
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .dictionary(let fields): self = .object(fields.mapValues(JSONValue.init))
        }
    }
}
