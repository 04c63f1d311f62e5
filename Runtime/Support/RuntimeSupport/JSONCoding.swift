import Foundation

/// The JSON conventions of every function: UTC ISO-8601 timestamps with milliseconds
/// (`2026-11-25T02:18:21.123Z`) and no escaped slashes.
public enum JSONCoding {
    private static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let wholeSecondsStyle = Date.ISO8601FormatStyle()

    /// Formats a date as the API writes it, rounded to the nearest millisecond (Foundation's
    /// own formatter truncates, so an instant stored as `.123` and read back as `.12299999…`
    /// would come out one millisecond early).
    /// - Parameter date: The instant to format.
    /// - Returns: The UTC ISO-8601 text with millisecond precision.
    public static func timestamp(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        let seconds = (milliseconds / 1000).rounded(.down)
        let fraction = Int(milliseconds - seconds * 1000)
        let whole = Date(timeIntervalSince1970: seconds).formatted(wholeSecondsStyle)
        return whole.dropLast() + "." + String(1000 + fraction).dropFirst() + "Z"
    }

    /// Parses an ISO-8601 timestamp, with or without fractional seconds.
    /// - Parameter text: The text to parse.
    /// - Returns: The instant, or `nil` when the text is not an ISO-8601 timestamp.
    public static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? timestampStyle.parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }

    /// Makes the encoder used for every response body.
    /// - Returns: A JSON encoder writing timestamps as ``timestamp(_:)`` does.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        return encoder
    }

    /// Makes the decoder used for every request body.
    /// - Returns: A JSON decoder reading timestamps as ``parseTimestamp(_:)`` does.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "Expected an ISO-8601 timestamp, got '\(text)'")
            }
            return date
        }
        return decoder
    }
}
