import Foundation

/// One Firestore value in the REST API's JSON form (`{"stringValue": "…"}`, `{"integerValue":
/// "5"}`, …): the typed-value codec every Firestore document goes through.
///
/// Integers travel as decimal strings (64-bit, as the API has them), timestamps as RFC 3339 UTC
/// with microseconds (Firestore keeps no more: ``timestamp(_:)`` values are rounded to the
/// microsecond when encoded, so a value reads back as it was written), bytes as base64.
public enum FirestoreValue: Sendable, Equatable, Codable {
    /// `nullValue`.
    case null
    /// `booleanValue`.
    case boolean(Bool)
    /// `integerValue`: a 64-bit integer.
    case integer(Int64)
    /// `doubleValue`.
    case double(Double)
    /// `timestampValue`, to the microsecond.
    case timestamp(Date)
    /// `stringValue`.
    case string(String)
    /// `bytesValue`.
    case bytes(Data)
    /// `arrayValue` (Firestore allows no array directly inside another).
    case array([FirestoreValue])
    /// `mapValue`.
    case map([String: FirestoreValue])

    private enum Key: String, CodingKey {
        case nullValue, booleanValue, integerValue, doubleValue, timestampValue, stringValue, bytesValue
        case arrayValue, mapValue, referenceValue, geoPointValue
    }

    private struct ArrayValue: Codable {
        var values: [FirestoreValue]?
    }

    struct MapValue: Codable {
        var fields: [String: FirestoreValue]?
    }

    /// Reads a value from its JSON form.
    /// - Throws: `DecodingError` for a malformed value or one of the kinds this codec does not
    ///   use (references, geo points).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        guard let key = container.allKeys.first, container.allKeys.count == 1 else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "a Firestore value has exactly one kind"))
        }
        switch key {
        case .nullValue: self = .null
        case .booleanValue: self = .boolean(try container.decode(Bool.self, forKey: key))
        case .integerValue:
            let text = try container.decode(String.self, forKey: key)
            guard let number = Int64(text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: container, debugDescription: "not an integer: \(text)")
            }
            self = .integer(number)
        case .doubleValue:
            // NaN and the infinities come as strings.
            if let number = try? container.decode(Double.self, forKey: key) {
                self = .double(number)
            } else {
                let text = try container.decode(String.self, forKey: key)
                switch text {
                case "NaN": self = .double(.nan)
                case "Infinity": self = .double(.infinity)
                case "-Infinity": self = .double(-.infinity)
                default:
                    throw DecodingError.dataCorruptedError(
                        forKey: key, in: container, debugDescription: "not a double: \(text)")
                }
            }
        case .timestampValue:
            let text = try container.decode(String.self, forKey: key)
            guard let date = Self.date(text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: container, debugDescription: "not an RFC 3339 timestamp: \(text)")
            }
            self = .timestamp(date)
        case .stringValue: self = .string(try container.decode(String.self, forKey: key))
        case .bytesValue:
            let text = try container.decode(String.self, forKey: key)
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not base64")
            }
            self = .bytes(data)
        case .arrayValue: self = .array(try container.decode(ArrayValue.self, forKey: key).values ?? [])
        case .mapValue: self = .map(try container.decode(MapValue.self, forKey: key).fields ?? [:])
        case .referenceValue, .geoPointValue:
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container, debugDescription: "\(key.rawValue) is not used by this codec")
        }
    }

    /// Writes the value's JSON form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .null: try container.encodeNil(forKey: .nullValue)
        case .boolean(let value): try container.encode(value, forKey: .booleanValue)
        case .integer(let value): try container.encode(String(value), forKey: .integerValue)
        case .double(let value):
            if value.isNaN {
                try container.encode("NaN", forKey: .doubleValue)
            } else if value.isInfinite {
                try container.encode(value > 0 ? "Infinity" : "-Infinity", forKey: .doubleValue)
            } else {
                try container.encode(value, forKey: .doubleValue)
            }
        case .timestamp(let value): try container.encode(Self.text(value), forKey: .timestampValue)
        case .string(let value): try container.encode(value, forKey: .stringValue)
        case .bytes(let value): try container.encode(value.base64EncodedString(), forKey: .bytesValue)
        case .array(let values): try container.encode(ArrayValue(values: values), forKey: .arrayValue)
        case .map(let fields): try container.encode(MapValue(fields: fields), forKey: .mapValue)
        }
    }

    /// A date rounded to the microsecond, as Firestore stores it.
    public static func microseconds(_ date: Date) -> Date {
        let whole = date.timeIntervalSince1970.rounded(.down)
        let micros = ((date.timeIntervalSince1970 - whole) * 1_000_000).rounded()
        return Date(timeIntervalSince1970: whole + micros / 1_000_000)
    }

    /// RFC 3339 in UTC with six fractional digits: `2026-12-01T00:00:00.123456Z`.
    static func text(_ date: Date) -> String {
        var seconds = date.timeIntervalSince1970.rounded(.down)
        var micros = Int(((date.timeIntervalSince1970 - seconds) * 1_000_000).rounded())
        if micros == 1_000_000 {
            seconds += 1
            micros = 0
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: seconds))
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts.year!, parts.month!, parts.day!, parts.hour!,
            parts.minute!, parts.second!, micros)
    }

    /// Reads RFC 3339 with 0 to 9 fractional digits and a `Z` or numeric offset.
    static func date(_ text: String) -> Date? {
        let pattern = #"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"#
        guard let match = text.range(of: pattern, options: .regularExpression), match == text.startIndex..<text.endIndex
        else { return nil }
        let scalars = Array(text)
        func number(_ range: Range<Int>) -> Int { Int(String(scalars[range])) ?? 0 }
        var components = DateComponents()
        components.year = number(0..<4)
        components.month = number(5..<7)
        components.day = number(8..<10)
        components.hour = number(11..<13)
        components.minute = number(14..<16)
        components.second = number(17..<19)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let base = calendar.date(from: components) else { return nil }
        var index = 19
        var fraction = 0.0
        if index < scalars.count, scalars[index] == "." {
            let digits = scalars[(index + 1)...].prefix { $0.isNumber }
            fraction = Double("0." + String(digits)) ?? 0
            index += 1 + digits.count
        }
        var offset = 0
        if scalars[index] != "Z" {
            let sign = scalars[index] == "-" ? -1 : 1
            offset = sign * (number((index + 1)..<(index + 3)) * 3600 + number((index + 4)..<(index + 6)) * 60)
        }
        return Date(timeIntervalSince1970: base.timeIntervalSince1970 + fraction - Double(offset))
    }
}
