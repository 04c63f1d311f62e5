import Foundation
import ImageAPICore

/// The built-in embedder: a deterministic descriptor of an image's colours, layout and edges,
/// computed from a 32 × 32 libvips rendering. It needs no model files.
///
/// It is **not semantic**: it finds images that look alike (same palette, similar composition,
/// similar textures), not images about the same thing, and it cannot embed text.
///
/// The vector is three blocks, each L2-normalised and weighted, then normalised as a whole:
/// - colour: a 4 × 4 × 4 RGB histogram (64 values, square-rooted so cosine compares
///   distributions as the Hellinger kernel does);
/// - layout: the mean luminance and two opponent colour channels in each cell of a 4 × 4 grid
///   (48 values, centred on mid-grey);
/// - edges: a magnitude-weighted histogram of gradient orientations (8 bins) in each quadrant
///   (32 values, square-rooted).
public struct VisualFeaturesEmbedder: Embedder {
    /// The model identifier stored with each vector.
    public let modelID = "visual-features-v1"
    /// 64 colour + 48 layout + 32 edge values.
    public let dimensions = 144
    /// Text cannot be embedded.
    public let supportsText = false

    static let side = 32
    static let weights: (colour: Float, layout: Float, edges: Float) = (1.0, 1.0, 0.7)

    private let codec: VipsImageCodec

    /// Creates the embedder.
    public init(codec: VipsImageCodec = VipsImageCodec()) {
        self.codec = codec
    }

    /// The descriptor of an image.
    public func embed(image data: Data) async throws -> [Float] {
        Self.descriptor(ofSRGB: try await codec.renderSRGB(data, width: Self.side, height: Self.side))
    }

    /// Always throws: this embedder compares images only.
    public func embed(text: String) async throws -> [Float] {
        throw EmbedderError.textUnsupported(model: modelID)
    }

    /// The descriptor of a `side` × `side` sRGB rendering.
    static func descriptor(ofSRGB pixels: [UInt8]) -> [Float] {
        let count = side * side
        precondition(pixels.count == count * 3)
        var red = [Float](repeating: 0, count: count)
        var green = red
        var blue = red
        for index in 0..<count {
            red[index] = Float(pixels[index * 3]) / 255
            green[index] = Float(pixels[index * 3 + 1]) / 255
            blue[index] = Float(pixels[index * 3 + 2]) / 255
        }
        var vector = normalised(colourHistogram(pixels), weight: weights.colour)
        vector += normalised(layout(red, green, blue), weight: weights.layout)
        vector += normalised(edgeHistogram(red, green, blue), weight: weights.edges)
        return normalised(vector, weight: 1)
    }

    static func colourHistogram(_ pixels: [UInt8]) -> [Float] {
        var histogram = [Float](repeating: 0, count: 64)
        for index in stride(from: 0, to: pixels.count, by: 3) {
            let bin = Int(pixels[index] >> 6) * 16 + Int(pixels[index + 1] >> 6) * 4 + Int(pixels[index + 2] >> 6)
            histogram[bin] += 1
        }
        return histogram.map { ($0 / Float(pixels.count / 3)).squareRoot() }
    }

    static func layout(_ red: [Float], _ green: [Float], _ blue: [Float]) -> [Float] {
        let cell = side / 4
        var features: [Float] = []
        features.reserveCapacity(48)
        for cellRow in 0..<4 {
            for cellColumn in 0..<4 {
                var sums: (Float, Float, Float) = (0, 0, 0)
                for y in cellRow * cell..<(cellRow + 1) * cell {
                    for x in cellColumn * cell..<(cellColumn + 1) * cell {
                        let index = y * side + x
                        sums.0 += red[index]
                        sums.1 += green[index]
                        sums.2 += blue[index]
                    }
                }
                let area = Float(cell * cell)
                let (r, g, b) = (sums.0 / area, sums.1 / area, sums.2 / area)
                features.append((r + g + b) / 3 - 0.5)
                features.append((r - g) / 2)
                features.append((r + g) / 4 - b / 2)
            }
        }
        return features
    }

    static func edgeHistogram(_ red: [Float], _ green: [Float], _ blue: [Float]) -> [Float] {
        let luminance = (0..<red.count).map { 0.299 * red[$0] + 0.587 * green[$0] + 0.114 * blue[$0] }
        var histogram = [Float](repeating: 0, count: 32)
        let half = side / 2
        for y in 1..<side - 1 {
            for x in 1..<side - 1 {
                func at(_ dx: Int, _ dy: Int) -> Float { luminance[(y + dy) * side + x + dx] }
                let gx = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
                let gy = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
                let magnitude = (gx * gx + gy * gy).squareRoot()
                guard magnitude > 0.05 else { continue }
                // Orientation modulo 180°: an edge and its reverse are the same edge.
                var angle = atan2(gy, gx)
                if angle < 0 { angle += .pi }
                let bin = min(7, Int(angle / .pi * 8))
                let quadrant = (y < half ? 0 : 2) + (x < half ? 0 : 1)
                histogram[quadrant * 8 + bin] += magnitude
            }
        }
        let total = max(histogram.reduce(0, +), 1e-6)
        return histogram.map { ($0 / total).squareRoot() }
    }

    static func normalised(_ values: [Float], weight: Float) -> [Float] {
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0 else { return values }
        return values.map { $0 / norm * weight }
    }
}
