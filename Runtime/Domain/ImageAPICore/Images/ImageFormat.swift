import Foundation

/// An accepted image format, recognised from the file's first bytes (its magic number), never
/// from the file name or the content type the client claims.
public enum ImageFormat: String, Sendable, CaseIterable, Codable {
    case jpeg, png, webp, gif, tiff, heic, avif

    /// How many leading bytes ``init(sniffing:)`` looks at.
    public static let sniffLength = 32

    /// The media type served for the format.
    public var mediaType: String {
        switch self {
        case .jpeg: "image/jpeg"
        case .png: "image/png"
        case .webp: "image/webp"
        case .gif: "image/gif"
        case .tiff: "image/tiff"
        case .heic: "image/heic"
        case .avif: "image/avif"
        }
    }

    /// Recognises a format from the first bytes of a file.
    /// - Parameter prefix: At least the first ``sniffLength`` bytes (fewer for a shorter file).
    /// - Returns: The format, or `nil` when the bytes are not an accepted image format.
    public init?(sniffing prefix: some Collection<UInt8>) {
        let bytes = Array(prefix.prefix(Self.sniffLength))
        func starts(_ signature: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + signature.count && Array(bytes[offset..<offset + signature.count]) == signature
        }
        func ascii(_ text: String, at offset: Int = 0) -> Bool { starts(Array(text.utf8), at: offset) }

        if starts([0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if ascii("GIF87a") || ascii("GIF89a") {
            self = .gif
        } else if ascii("RIFF") && ascii("WEBP", at: 8) {
            self = .webp
        } else if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) {
            self = .tiff
        } else if ascii("ftyp", at: 4), let brand = Self.isoBrandFormat(bytes) {
            self = brand
        } else {
            return nil
        }
    }

    /// The sizes of the BMP info headers that exist (core, v1 to v5).

    /// HEIF files are ISO base media files: `ftyp` then a major brand and compatible brands.
    private static func isoBrandFormat(_ bytes: [UInt8]) -> ImageFormat? {
        guard bytes.count >= 12 else { return nil }
        let boxSize = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        var brands: [String] = []
        var offset = 8
        while offset + 4 <= min(bytes.count, max(boxSize, 12)) {
            if offset != 12 {  // bytes 12-15 are the minor version, not a brand
                brands.append(String(decoding: bytes[offset..<offset + 4], as: UTF8.self))
            }
            offset += 4
        }
        if brands.contains(where: { $0 == "avif" || $0 == "avis" }) { return .avif }
        let heifBrands: Set<String> = ["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]
        return brands.contains(where: heifBrands.contains) ? .heic : nil
    }
}
