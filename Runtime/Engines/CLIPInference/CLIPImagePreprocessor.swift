import Foundation
import VipsShim

/// Turns image bytes into the image tower's input, as `preprocessor_config.json` says: libvips
/// decodes (EXIF orientation applied, converted to 8-bit sRGB, alpha dropped as a conversion to
/// RGB does), then the shorter side is resized with Pillow-exact bicubic resampling, the centre
/// is cropped, and values are rescaled and normalised per channel into planar (CHW) Float32.
public struct CLIPImagePreprocessor: Sendable {
    /// The steps and their settings.
    public let settings: CLIPPreprocessing
    /// The side of the square the tower takes.
    public let imageSize: Int

    /// Checks that the steps end in the tower's input size.
    /// - Throws: ``CLIPModelError`` naming `preprocessor_config.json` when they do not.
    public init(settings: CLIPPreprocessing, imageSize: Int) throws {
        let output: (height: Int, width: Int)? =
            settings.crop
            ?? {
                if case .exact(let height, let width) = settings.resize { return (height, width) }
                return nil
            }()
        guard let output, output.height == imageSize, output.width == imageSize else {
            throw CLIPModelError(
                file: "preprocessor_config.json",
                "the crop (or resize) must produce \(imageSize)×\(imageSize) pixels, the model's image_size")
        }
        self.settings = settings
        self.imageSize = imageSize
    }

    /// Decodes image bytes and prepares them.
    /// - Parameters:
    ///   - data: An encoded image in any format libvips reads.
    ///   - maxPixels: The largest image accepted (checked from the header).
    /// - Returns: `3 * imageSize * imageSize` values, channel by channel.
    /// - Throws: ``CLIPImageError`` when the image cannot be decoded.
    public func pixelValues(imageData data: Data, maxPixels: Int = 100_000_000) throws -> [Float] {
        guard Self.vipsStarted else { throw CLIPImageError(reason: "libvips could not start") }
        var width: Int32 = 0
        var height: Int32 = 0
        var output: UnsafeMutablePointer<UInt8>?
        let status = data.withUnsafeBytes { bytes in
            vshim_decode_rgb(
                bytes.baseAddress, bytes.count, Int32(clamping: maxPixels), &width, &height, &output)
        }
        guard status == 0, let output else {
            var reason = "unknown libvips error"
            if let text = vshim_take_error() {
                reason = String(cString: text).split(whereSeparator: \.isNewline).joined(separator: "; ")
                vshim_free(text)
            }
            throw CLIPImageError(reason: reason)
        }
        defer { vshim_free(output) }
        let rgb = [UInt8](UnsafeBufferPointer(start: output, count: Int(width) * Int(height) * 3))
        return pixelValues(rgb: rgb, width: Int(width), height: Int(height))
    }

    private static let vipsStarted: Bool = vshim_start() == 0

    /// Prepares decoded pixels.
    /// - Parameters:
    ///   - rgb: `width * height * 3` bytes, row by row.
    ///   - width: Width in pixels.
    ///   - height: Height in pixels.
    /// - Returns: `3 * imageSize * imageSize` values, channel by channel.
    public func pixelValues(rgb: [UInt8], width: Int, height: Int) -> [Float] {
        var pixels = rgb
        var (currentWidth, currentHeight) = (width, height)
        if let resize = settings.resize {
            let (newWidth, newHeight) = Self.resizedSize(width: width, height: height, resize: resize)
            if newWidth != width || newHeight != height {
                pixels = PILCompatibleResize.resize(
                    pixels, width: width, height: height, toWidth: newWidth, height: newHeight,
                    resample: settings.resample)
                (currentWidth, currentHeight) = (newWidth, newHeight)
            }
        }
        if let crop = settings.crop {
            pixels = Self.centreCrop(pixels, width: currentWidth, height: currentHeight, to: crop)
            (currentWidth, currentHeight) = (crop.width, crop.height)
        }
        let planeSize = currentWidth * currentHeight
        var values = [Float](repeating: 0, count: 3 * planeSize)
        for index in 0..<planeSize {
            for channel in 0..<3 {
                var value = Float(pixels[index * 3 + channel])
                if let factor = settings.rescaleFactor { value = Float(Double(pixels[index * 3 + channel]) * factor) }
                if let (mean, std) = settings.normalization { value = (value - mean[channel]) / std[channel] }
                values[channel * planeSize + index] = value
            }
        }
        return values
    }

    /// The size after resizing: the shorter side to the configured length, the longer one scaled
    /// and truncated, as the reference processor computes it.
    static func resizedSize(width: Int, height: Int, resize: CLIPPreprocessing.Resize) -> (width: Int, height: Int) {
        switch resize {
        case .exact(let height, let width):
            return (width, height)
        case .shortestEdge(let edge):
            let (short, long) = width <= height ? (width, height) : (height, width)
            let newLong = Int(Double(edge * long) / Double(short))
            return width <= height ? (edge, newLong) : (newLong, edge)
        }
    }

    /// The centred crop; an image smaller than the crop is padded with zeros first.
    static func centreCrop(_ pixels: [UInt8], width: Int, height: Int, to crop: (height: Int, width: Int)) -> [UInt8] {
        let top = Int((Double(height - crop.height) / 2).rounded(.down))
        let left = Int((Double(width - crop.width) / 2).rounded(.down))
        let paddedHeight = max(crop.height, height)
        let paddedWidth = max(crop.width, width)
        let topPad = Int((Double(paddedHeight - height) / 2).rounded(.up))
        let leftPad = Int((Double(paddedWidth - width) / 2).rounded(.up))
        let rowStart = max(0, top + topPad)
        let columnStart = max(0, left + leftPad)
        var output = [UInt8](repeating: 0, count: crop.width * crop.height * 3)
        for row in 0..<crop.height {
            let paddedRow = rowStart + row
            let sourceRow = paddedRow - topPad
            guard paddedRow < paddedHeight, sourceRow >= 0, sourceRow < height else { continue }
            for column in 0..<crop.width {
                let sourceColumn = columnStart + column - leftPad
                guard columnStart + column < paddedWidth, sourceColumn >= 0, sourceColumn < width else { continue }
                for channel in 0..<3 {
                    output[(row * crop.width + column) * 3 + channel] =
                        pixels[(sourceRow * width + sourceColumn) * 3 + channel]
                }
            }
        }
        return output
    }
}

/// An image the CLIP preprocessing could not decode.
public struct CLIPImageError: Error, CustomStringConvertible {
    /// libvips's explanation.
    public let reason: String
    /// The explanation.
    public var description: String { "the image cannot be decoded: \(reason)" }
}
