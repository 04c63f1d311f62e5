import Foundation

/// A 64-bit perceptual hash of an image: the DCT hash (`phash`) of the `imagehash` library.
///
/// The image, orientation applied, is reduced to 32×32 grey levels; the 8×8 lowest frequencies
/// of their two-dimensional DCT (type II) are compared with their median, one bit each, the
/// lowest frequency first and most significant. Copies of one picture (resized, recompressed,
/// slightly cropped) land a few bits apart; unrelated pictures about 32.
///
/// Written as 16 lower-case hex digits, as `str(imagehash.phash(image))` writes it.
public struct PerceptualHash: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The side of the grey square the hash is computed from.
    public static let side = 32
    /// The side of the block of low frequencies kept.
    static let kept = 8

    /// The 64 bits, the first frequency (0, 0) the most significant.
    public let bits: UInt64

    /// Wraps 64 bits.
    public init(bits: UInt64) {
        self.bits = bits
    }

    /// Reads 16 hex digits (either case); `nil` for anything else.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 16, hex.allSatisfy(\.isHexDigit), let bits = UInt64(hex, radix: 16) else { return nil }
        self.bits = bits
    }

    /// 16 lower-case hex digits.
    public var hex: String {
        let digits = String(bits, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The hex digits.
    public var description: String { hex }

    /// How many bits differ: the Hamming distance.
    public func distance(to other: PerceptualHash) -> Int {
        (bits ^ other.bits).nonzeroBitCount
    }

    /// The hash of `side` × `side` grey levels, row by row.
    /// - Parameter grey: 1,024 grey levels (0-255), the top row first.
    /// - Returns: `nil` when there are not exactly 1,024 of them.
    public static func of(grey: [UInt8]) -> PerceptualHash? {
        guard grey.count == side * side else { return nil }
        // Only the 8×8 lowest frequencies are needed: D = C · X · Cᵀ with C the first 8 rows of
        // the 32-point DCT-II (scipy's unnormalised form differs by a constant, which the
        // comparison with the median ignores).
        var rows = [Double](repeating: 0, count: kept * side)  // C · X: 8 × 32
        for frequency in 0..<kept {
            for column in 0..<side {
                var sum = 0.0
                for row in 0..<side {
                    sum += cosines[frequency * side + row] * Double(grey[row * side + column])
                }
                rows[frequency * side + column] = sum
            }
        }
        var low = [Double](repeating: 0, count: kept * kept)  // (C · X) · Cᵀ: 8 × 8
        for vertical in 0..<kept {
            for horizontal in 0..<kept {
                var sum = 0.0
                for column in 0..<side {
                    sum += rows[vertical * side + column] * cosines[horizontal * side + column]
                }
                low[vertical * kept + horizontal] = sum
            }
        }
        let sorted = low.sorted()
        let median = (sorted[31] + sorted[32]) / 2
        var bits: UInt64 = 0
        for value in low {
            bits = bits << 1 | (value > median ? 1 : 0)
        }
        return PerceptualHash(bits: bits)
    }

    /// `cos(π k (2n + 1) / 64)` for the 8 lowest frequencies k and the 32 samples n.
    private static let cosines: [Double] = (0..<kept).flatMap { frequency in
        (0..<side).map { sample in
            cos(Double.pi * Double(frequency) * Double(2 * sample + 1) / Double(2 * side))
        }
    }

    /// The grey level PIL's `convert("L")` gives a pixel: ITU-R 601 weights in 16-bit fixed point.
    public static func grey(red: UInt8, green: UInt8, blue: UInt8) -> UInt8 {
        let weighted: UInt32 = UInt32(red) * 19595 + UInt32(green) * 38470 + UInt32(blue) * 7471
        return UInt8((weighted + 0x8000) >> 16)
    }

    /// Decodes 16 hex digits.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let hash = PerceptualHash(hex: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "a perceptual hash is 16 hex digits, not \(text.prefix(40))")
        }
        self = hash
    }

    /// Encodes 16 lower-case hex digits.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}
