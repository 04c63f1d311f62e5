import Foundation
import ImageAPICore
import VipsShim

/// The libvips implementation of the image codec: header inspection, EXIF, full-decode checks
/// and thumbnails.
public struct VipsImageCodec: ImageCodec {
    /// The thumbnail's JPEG quality.
    public var thumbnailQuality: Int = 82
    /// The memory full decodes may hold at once, shared by every copy of the codec it is given to.
    public let memoryBudget: DecodeMemoryBudget

    /// Creates the codec.
    /// - Parameter memoryBudget: The budget for concurrent full decodes (one per process).
    public init(memoryBudget: DecodeMemoryBudget = VipsImageCodec.sharedBudget) {
        self.memoryBudget = memoryBudget
    }

    /// The budget codecs share unless given their own: 512 MiB (one 100-megapixel decode at a time).
    public static let sharedBudget = DecodeMemoryBudget(capacity: 512 << 20)

    /// The decode-memory estimate of an image held in memory, from its header alone.
    func estimate(_ data: Data) async throws -> Int {
        try await Vips.run {
            let image = data.withUnsafeBytes { vshim_open_buffer($0.baseAddress, $0.count, Int32(VSHIM_FAIL_ON_NONE)) }
            guard let image else { throw ImageDecodingError.undecodable(Vips.takeError()) }
            defer { vshim_release(image) }
            return DecodeMemoryBudget.estimate(width: Int(vshim_width(image)), height: Int(vshim_height(image)))
        }
    }

    /// A JPEG spends at least one bit on the DC coefficient of every 8x8 luma block, even when
    /// progressive scans code the rest of a block in runs: data shorter than this for its
    /// declared size is truncated, and is refused without decoding it.
    /// - Parameters:
    ///   - width: The declared width.
    ///   - height: The declared height.
    /// - Returns: The fewest bytes an intact JPEG of that size can have (half the true minimum,
    ///   to leave room for any encoder).
    public static func minimumJPEGLength(width: Int, height: Int) -> Int {
        let blocks = ((width + 7) / 8) * ((height + 7) / 8)
        return blocks / 16
    }

    /// Reads the header, applies the pixel limit and the JPEG length check, then decodes every
    /// pixel (sequentially, within the memory budget).
    public func inspect(fileAt path: String, maxPixels: Int) async throws -> ImageInspection {
        let header = try await Vips.run { () throws -> (Int, Int, String) in
            guard let image = vshim_open_file(path, Int32(VSHIM_FAIL_ON_TRUNCATED)) else {
                throw ImageDecodingError.undecodable(Vips.takeError())
            }
            defer { vshim_release(image) }
            return (
                Int(vshim_width(image)), Int(vshim_height(image)), Vips.take(vshim_field(image, "vips-loader")) ?? ""
            )
        }
        let (width, height, loader) = header
        // The header alone gives the size: refuse decompression bombs before decoding.
        guard width > 0, height > 0 else { throw ImageDecodingError.undecodable("image has no pixels") }
        guard width.multipliedReportingOverflow(by: height).partialValue <= maxPixels else {
            throw ImageDecodingError.tooManyPixels(width: width, height: height, limit: maxPixels)
        }
        if loader.hasPrefix("jpegload") {
            let length = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            let minimum = Self.minimumJPEGLength(width: width, height: height)
            guard length >= minimum else {
                throw ImageDecodingError.undecodable(
                    "JPEG of \(length) bytes declares \(width)x\(height) pixels, which needs at least \(minimum)")
            }
        }
        return try await memoryBudget.withReservation(DecodeMemoryBudget.estimate(width: width, height: height)) {
            try await Vips.run {
                // Every pixel decoded, and any damage the decoder reports (a warning about
                // corrupt data included) refuses the upload.
                guard let image = vshim_open_file(path, Int32(VSHIM_FAIL_ON_WARNING)) else {
                    throw ImageDecodingError.undecodable(Vips.takeError())
                }
                defer { vshim_release(image) }
                let orientation = Int(vshim_orientation(image))
                let fields = Set((Vips.take(vshim_field_names(image)) ?? "").split(separator: "\n").map(String.init))
                let exif = EXIFFields.extract(from: fields) { name in Vips.take(vshim_field(image, name)) }
                guard vshim_decode_all(image) == 0 else {
                    throw ImageDecodingError.undecodable(Vips.takeError())
                }
                return ImageInspection(
                    width: width, height: height, orientation: orientation == 0 ? nil : orientation, exif: exif)
            }
        }
    }

    /// Makes a JPEG thumbnail, orientation applied, within the memory budget.
    public func thumbnail(of data: Data, size: Int) async throws -> Data {
        let quality = thumbnailQuality
        return try await memoryBudget.withReservation(try await estimate(data)) {
            try await thumbnailNow(of: data, size: size, quality: quality)
        }
    }

    private func thumbnailNow(of data: Data, size: Int, quality: Int) async throws -> Data {
        try await Vips.run {
            var output: UnsafeMutableRawPointer?
            var length = 0
            let status = data.withUnsafeBytes { bytes in
                vshim_thumbnail_jpeg(bytes.baseAddress, bytes.count, Int32(size), Int32(quality), &output, &length)
            }
            guard status == 0, let output else { throw ImageDecodingError.undecodable(Vips.takeError()) }
            defer { vshim_free(output) }
            return Data(bytes: output, count: length)
        }
    }

    /// Reduces an image to `side` × `side` grey levels, orientation applied, as Pillow's
    /// `convert("L").resize((side, side), LANCZOS)` does, within the memory budget.
    public func greyLevels(of data: Data, side: Int) async throws -> [UInt8] {
        try await memoryBudget.withReservation(try await estimate(data)) {
            try await Vips.run {
                var grey = [UInt8](repeating: 0, count: side * side)
                let status = data.withUnsafeBytes { bytes in
                    grey.withUnsafeMutableBufferPointer { out in
                        vshim_grey_square(bytes.baseAddress, bytes.count, Int32(side), out.baseAddress)
                    }
                }
                guard status == 0 else { throw ImageDecodingError.undecodable(Vips.takeError()) }
                return grey
            }
        }
    }

    /// Renders an image as `width` × `height` 8-bit sRGB pixels, row by row, 3 bytes each, within
    /// the memory budget.
    public func renderSRGB(_ data: Data, width: Int, height: Int) async throws -> [UInt8] {
        try await memoryBudget.withReservation(try await estimate(data)) {
            try await renderNow(data, width: width, height: height)
        }
    }

    private func renderNow(_ data: Data, width: Int, height: Int) async throws -> [UInt8] {
        try await Vips.run {
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            let status = data.withUnsafeBytes { bytes in
                pixels.withUnsafeMutableBufferPointer { out in
                    vshim_render_srgb(bytes.baseAddress, bytes.count, Int32(width), Int32(height), out.baseAddress)
                }
            }
            guard status == 0 else { throw ImageDecodingError.undecodable(Vips.takeError()) }
            return pixels
        }
    }
}

/// Picks the useful EXIF fields out of libvips's header fields and tidies their values.
///
/// libvips writes an EXIF value as `raw (formatted, type, n components, n bytes)`; the
/// formatted part is what is kept.
enum EXIFFields {
    /// Output name and libvips field names, first present wins.
    static let wanted: [(String, [String])] = [
        ("camera_make", ["exif-ifd0-Make"]),
        ("camera_model", ["exif-ifd0-Model"]),
        ("lens_make", ["exif-ifd2-LensMake"]),
        ("lens_model", ["exif-ifd2-LensModel"]),
        ("taken_at", ["exif-ifd2-DateTimeOriginal", "exif-ifd2-DateTimeDigitized", "exif-ifd0-DateTime"]),
        ("software", ["exif-ifd0-Software"]),
        ("exposure_time", ["exif-ifd2-ExposureTime"]),
        ("f_number", ["exif-ifd2-FNumber"]),
        ("iso", ["exif-ifd2-ISOSpeedRatings", "exif-ifd2-PhotographicSensitivity"]),
        ("focal_length", ["exif-ifd2-FocalLength"]),
    ]

    static func extract(from fields: Set<String>, read: (String) -> String?) -> [String: String] {
        var result: [String: String] = [:]
        for (output, names) in wanted {
            for name in names where fields.contains(name) {
                if let value = read(name).flatMap(formattedValue), !value.isEmpty {
                    result[output] = output == "taken_at" ? isoDate(value) : value
                    break
                }
            }
        }
        let gps: [(String, String, String?)] = [
            ("gps_latitude", "exif-ifd3-GPSLatitude", "exif-ifd3-GPSLatitudeRef"),
            ("gps_longitude", "exif-ifd3-GPSLongitude", "exif-ifd3-GPSLongitudeRef"),
            ("gps_altitude", "exif-ifd3-GPSAltitude", nil),
        ]
        for (output, name, referenceName) in gps where fields.contains(name) {
            guard let text = read(name).flatMap(formattedValue) else { continue }
            let reference = referenceName.flatMap { fields.contains($0) ? read($0).flatMap(formattedValue) : nil }
            if let degrees = decimalDegrees(text, reference: reference) {
                result[output] = String(format: "%.6f", degrees)
            }
        }
        return result
    }

    /// `Canon (Canon, ASCII, 6 components, 6 bytes)` → `Canon`.
    static func formattedValue(_ raw: String) -> String? {
        guard raw.hasSuffix(")"), let open = raw.firstIndex(of: "(") else {
            return raw.trimmingCharacters(in: .whitespaces)
        }
        let inner = raw[raw.index(after: open)..<raw.index(before: raw.endIndex)]
        let parts = inner.components(separatedBy: ", ")
        guard parts.count >= 4 else { return String(inner) }
        return parts.dropLast(3).joined(separator: ", ").trimmingCharacters(in: .whitespaces)
    }

    /// `2024:05:01 12:30:00` → `2024-05-01T12:30:00` (EXIF times carry no zone).
    static func isoDate(_ value: String) -> String {
        let parts = value.split(separator: " ")
        guard parts.count == 2 else { return value }
        return parts[0].replacingOccurrences(of: ":", with: "-") + "T" + parts[1]
    }

    /// `52, 31, 12.34` with reference `S` → -52.520094. A single number is taken as is.
    static func decimalDegrees(_ value: String, reference: String?) -> Double? {
        let numbers = value.split(whereSeparator: { $0 == "," || $0 == " " }).compactMap { Double($0) }
        guard !numbers.isEmpty else { return nil }
        let scales = [1.0, 60.0, 3600.0]
        let degrees = zip(numbers.prefix(3), scales).reduce(0) { $0 + $1.0 / $1.1 }
        let negative = reference.map { $0.hasPrefix("S") || $0.hasPrefix("W") } ?? false
        return negative ? -degrees : degrees
    }
}
