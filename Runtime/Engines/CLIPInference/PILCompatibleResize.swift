/// Resizes 8-bit RGB pixels exactly as Pillow's `Image.resize` does with its bicubic or bilinear
/// filter, so that preprocessing matches the reference CLIP image processor to the bit: the
/// kernel widens with the downscale factor (antialiasing), coefficients are normalised and
/// rounded to 22-bit fixed point, and the horizontal pass runs first, rounding to 8 bits before
/// the vertical pass.
enum PILCompatibleResize {
    private static let precisionBits = 32 - 8 - 2

    /// One output pixel's source span and fixed-point weights.
    private struct Taps {
        let first: [Int]
        let count: [Int]
        let weights: [Int]
        let width: Int
    }

    static func filter(_ x: Double, resample: Int) -> Double {
        let x = abs(x)
        if resample == 2 { return x < 1 ? 1 - x : 0 }
        let a = -0.5
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    private static func taps(inputSize: Int, outputSize: Int, resample: Int) -> Taps {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = (resample == 2 ? 1.0 : 2.0) * filterScale
        let width = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outputSize)
        var count = [Int](repeating: 0, count: outputSize)
        var weights = [Int](repeating: 0, count: outputSize * width)
        var kernel = [Double](repeating: 0, count: width)
        for output in 0..<outputSize {
            let center = (Double(output) + 0.5) * scale
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), inputSize)
            let taps = high - low
            var total = 0.0
            for tap in 0..<taps {
                let weight = filter((Double(tap + low) - center + 0.5) / filterScale, resample: resample)
                kernel[tap] = weight
                total += weight
            }
            for tap in 0..<taps {
                let normalised = total != 0 ? kernel[tap] / total : kernel[tap]
                let fixed = normalised * Double(1 << precisionBits)
                weights[output * width + tap] = normalised < 0 ? Int(-0.5 + fixed) : Int(0.5 + fixed)
            }
            first[output] = low
            count[output] = taps
        }
        return Taps(first: first, count: count, weights: weights, width: width)
    }

    private static func clip8(_ value: Int) -> UInt8 {
        UInt8(clamping: value >> precisionBits)
    }

    /// Resizes interleaved RGB pixels.
    /// - Parameters:
    ///   - pixels: `width * height * 3` bytes, row by row.
    ///   - resample: 2 (bilinear) or 3 (bicubic), as Pillow numbers them.
    /// - Returns: `newWidth * newHeight * 3` bytes.
    static func resize(
        _ pixels: [UInt8], width: Int, height: Int, toWidth newWidth: Int, height newHeight: Int, resample: Int
    ) -> [UInt8] {
        var current = pixels
        var currentWidth = width
        let rounding = 1 << (precisionBits - 1)
        if newWidth != width {
            let taps = taps(inputSize: width, outputSize: newWidth, resample: resample)
            var output = [UInt8](repeating: 0, count: newWidth * height * 3)
            current.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { target in
                    for row in 0..<height {
                        let rowStart = row * width * 3
                        for column in 0..<newWidth {
                            var sums = (rounding, rounding, rounding)
                            let base = column * taps.width
                            for tap in 0..<taps.count[column] {
                                let weight = taps.weights[base + tap]
                                let pixel = rowStart + (taps.first[column] + tap) * 3
                                sums.0 += Int(source[pixel]) * weight
                                sums.1 += Int(source[pixel + 1]) * weight
                                sums.2 += Int(source[pixel + 2]) * weight
                            }
                            let out = (row * newWidth + column) * 3
                            target[out] = clip8(sums.0)
                            target[out + 1] = clip8(sums.1)
                            target[out + 2] = clip8(sums.2)
                        }
                    }
                }
            }
            current = output
            currentWidth = newWidth
        }
        if newHeight != height {
            let taps = taps(inputSize: height, outputSize: newHeight, resample: resample)
            var output = [UInt8](repeating: 0, count: currentWidth * newHeight * 3)
            let stride = currentWidth * 3
            current.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { target in
                    for row in 0..<newHeight {
                        let base = row * taps.width
                        for channelOffset in 0..<stride {
                            var sum = rounding
                            for tap in 0..<taps.count[row] {
                                sum +=
                                    Int(source[(taps.first[row] + tap) * stride + channelOffset])
                                    * taps.weights[base + tap]
                            }
                            target[row * stride + channelOffset] = clip8(sum)
                        }
                    }
                }
            }
            current = output
        }
        return current
    }
}
