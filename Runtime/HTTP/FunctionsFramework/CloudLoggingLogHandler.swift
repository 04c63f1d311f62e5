import Foundation
import Locking
import Logging

/// How log entries are written: JSON lines for Cloud Logging, or text lines for people.
public enum LogFormat: String, Sendable, CaseIterable {
    /// One JSON object per line (``CloudLoggingLogHandler/format(level:message:label:metadata:time:)``).
    case json
    /// One readable line per entry (``CloudLoggingLogHandler/textLine(level:message:metadata:time:)``).
    case text
}

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
    /// How entries are written.
    public let format: LogFormat
    private let sink: Sink

    /// Creates a handler.
    /// - Parameters:
    ///   - label: The logger label.
    ///   - level: The lowest level written.
    ///   - sink: Where lines go.
    ///   - format: JSON lines (the default) or text lines.
    public init(
        label: String, level: Logger.Level, format: LogFormat = .json,
        sink: @escaping Sink = CloudLoggingLogHandler.standardOutput
    ) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.metadata = [:]
        self.sink = sink
    }

    /// Makes every logger of the process a Cloud Logging handler. Call once, from `main`.
    /// - Parameters:
    ///   - level: The lowest level written.
    ///   - format: JSON lines or text lines (`LOG_FORMAT`).
    public static func bootstrap(level: Logger.Level, format: LogFormat = .json) {
        LoggingSystem.bootstrap { label in CloudLoggingLogHandler(label: label, level: level, format: format) }
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
        switch format {
        case .json:
            sink(
                Self.format(
                    level: event.level, message: event.message.description, label: label, metadata: fields,
                    time: Date()))
        case .text:
            sink(Self.textLine(level: event.level, message: event.message.description, metadata: fields, time: Date()))
        }
    }

    /// Formats one entry as a line for people: the time, the level, the message, then the fields
    /// that matter as `key=value` (trace ids and the request record, which repeat the message, left
    /// out).
    /// - Parameters:
    ///   - level: The level.
    ///   - message: The message.
    ///   - metadata: The fields.
    ///   - time: When the entry was made.
    /// - Returns: The line, without a newline.
    public static func textLine(level: Logger.Level, message: String, metadata: Logger.Metadata, time: Date) -> String {
        let fields = metadata.filter { key, _ in !key.hasPrefix("logging.googleapis.com/") && key != "httpRequest" }
            .sorted { $0.key < $1.key }
            .map { key, value in "\(key)=\(quoted(value.description))" }
        let levelName = severity(level)
        let padded = levelName + String(repeating: " ", count: max(0, 8 - levelName.count))
        return ([JSONCoding.timestamp(time), padded + message] + fields).joined(separator: " ")
    }

    /// A value as is, or in double quotes when it holds a space, a quote or `=`.
    private static func quoted(_ text: String) -> String {
        guard text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) else { return text }
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return "\"" + escaped + "\""
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
