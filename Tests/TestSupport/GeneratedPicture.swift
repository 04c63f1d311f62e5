import Foundation

/// A picture drawn from a seed: a grey background and rectangles of other greys, placed in the
/// unit square, so that the same picture renders at any size (a resized copy) and different
/// seeds draw unrelated pictures. Written as an 8-bit grey PNG (stored, uncompressed deflate).
public struct GeneratedPicture: Sendable {
    struct Rectangle {
        var x0, y0, x1, y1: Double
        var level: UInt8
    }

    private let background: UInt8
    private let rectangles: [Rectangle]

    /// Draws the picture of `seed`.
    public init(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        background = UInt8.random(in: 0...255, using: &generator)
        rectangles = (0..<12).map { _ in
            let x = Double.random(in: 0..<0.8, using: &generator)
            let y = Double.random(in: 0..<0.8, using: &generator)
            return Rectangle(
                x0: x, y0: y, x1: x + Double.random(in: 0.1...0.5, using: &generator),
                y1: y + Double.random(in: 0.1...0.5, using: &generator),
                level: UInt8.random(in: 0...255, using: &generator))
        }
    }

    /// The grey levels at `width` × `height`, row by row.
    public func pixels(width: Int, height: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: background, count: width * height)
        for rectangle in rectangles {
            let columns = Int(rectangle.x0 * Double(width))..<min(width, Int(rectangle.x1 * Double(width)))
            let rows = Int(rectangle.y0 * Double(height))..<min(height, Int(rectangle.y1 * Double(height)))
            for row in rows {
                for column in columns { pixels[row * width + column] = rectangle.level }
            }
        }
        return pixels
    }

    /// The picture at `width` × `height` as a PNG file.
    public func png(width: Int, height: Int) -> Data {
        let pixels = pixels(width: width, height: height)
        var raw = Data()
        for row in 0..<height {
            raw.append(0)  // filter: none
            raw.append(contentsOf: pixels[(row * width)..<((row + 1) * width)])
        }
        var file = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = Data()
        header.append(bigEndian: UInt32(width))
        header.append(bigEndian: UInt32(height))
        header.append(contentsOf: [8, 0, 0, 0, 0])  // 8-bit grey, deflate, no filter choice, no interlace
        file.append(chunk: "IHDR", header)
        file.append(chunk: "IDAT", Self.zlibStored(raw))
        file.append(chunk: "IEND", Data())
        return file
    }

    /// A zlib stream of stored (uncompressed) deflate blocks.
    static func zlibStored(_ data: Data) -> Data {
        var out = Data([0x78, 0x01])
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            out.append(offset + length == data.count ? 1 : 0)
            out.append(littleEndian: UInt16(length))
            out.append(littleEndian: ~UInt16(length))
            out.append(data[(data.startIndex + offset)..<(data.startIndex + offset + length)])
            offset += length
        } while offset < data.count
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        out.append(bigEndian: b << 16 | a)
        return out
    }
}

extension Data {
    fileprivate mutating func append(bigEndian value: UInt32) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
    fileprivate mutating func append(littleEndian value: UInt16) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
    fileprivate mutating func append(chunk type: String, _ body: Data) {
        append(bigEndian: UInt32(body.count))
        let typed = Data(type.utf8) + body
        append(typed)
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in typed {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        append(bigEndian: ~crc)
    }
}
