import Foundation

/// What decoding an upload's header found.
public struct ImageInspection: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// The EXIF orientation, when present.
    public var orientation: Int?
    /// Useful EXIF fields as text.
    public var exif: [String: String]

    /// Creates an inspection result.
    public init(width: Int, height: Int, orientation: Int?, exif: [String: String]) {
        self.width = width
        self.height = height
        self.orientation = orientation
        self.exif = exif
    }
}

/// Why an image could not be used.
public enum ImageDecodingError: Error, Equatable, CustomStringConvertible {
    /// The image is larger than the pixel limit.
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// The data is truncated or corrupt; the decoder's own words (which may name files and
    /// library internals) are kept for the log, never shown to clients.
    case undecodable(String)

    /// A client-facing explanation.
    public var description: String {
        switch self {
        case .tooManyPixels(let width, let height, let limit):
            "image is \(width)x\(height) pixels, more than the limit of \(limit) pixels"
        case .undecodable:
            "image could not be decoded: the data is truncated, corrupt or not what its header declares"
        }
    }

    /// The explanation for the log, with the decoder's message.
    public var detail: String {
        switch self {
        case .tooManyPixels: description
        case .undecodable(let reason): "image could not be decoded: \(reason)"
        }
    }
}

/// Decodes and renders images.
public protocol ImageCodec: Sendable {
    /// Reads the header of an image file, refuses it when it has more than `maxPixels` pixels,
    /// then decodes every pixel to find truncation or corruption.
    func inspect(fileAt path: String, maxPixels: Int) async throws -> ImageInspection
    /// The image, orientation applied, reduced to `side` × `side` grey levels (as PIL's
    /// `convert("L")` weighs red, green and blue), row by row.
    func greyLevels(of data: Data, side: Int) async throws -> [UInt8]
    /// A JPEG thumbnail whose longer side is `size` pixels, orientation applied.
    func thumbnail(of data: Data, size: Int) async throws -> Data
}
