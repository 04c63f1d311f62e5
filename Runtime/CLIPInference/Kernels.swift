import COpenBLAS
import Foundation

/// The dense operations of the transformer: matrix products through `cblas_sgemm`, the rest in
/// vectorised Swift loops.
enum Kernels {
    /// `output[rows × outputs] (+)= input[rows × inputs] · weight[outputs × inputs]ᵀ (+ bias)`.
    /// With `accumulate`, the product is added to what `output` holds (a residual connection).
    static func linear(
        _ input: UnsafePointer<Float>, rows: Int, inputs: Int, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, outputs: Int, into output: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outputs), Int32(inputs), 1, input,
            Int32(inputs), weight, Int32(inputs), accumulate ? 1 : 0, output, Int32(outputs))
        guard let bias else { return }
        for row in 0..<rows {
            let line = output + row * outputs
            for column in 0..<outputs { line[column] += bias[column] }
        }
    }

    /// Layer normalisation of every row: `(x - mean) / sqrt(variance + ε) · scale + shift`.
    static func layerNorm(
        _ input: UnsafePointer<Float>, rows: Int, width: Int, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
        epsilon: Float, into output: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<rows {
            let source = input + row * width
            let target = output + row * width
            var sum: Float = 0
            for column in 0..<width { sum += source[column] }
            let mean = sum / Float(width)
            var squares: Float = 0
            for column in 0..<width {
                let centred = source[column] - mean
                squares += centred * centred
            }
            let inverse = 1 / (squares / Float(width) + epsilon).squareRoot()
            for column in 0..<width {
                target[column] = (source[column] - mean) * inverse * scale[column] + shift[column]
            }
        }
    }

    /// Softmax of `count` values in place.
    static func softmax(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for index in 0..<count { maximum = max(maximum, values[index]) }
        for index in 0..<count { values[index] -= maximum }
        exponentiate(values, count: count)
        var sum: Float = 0
        for index in 0..<count { sum += values[index] }
        let inverse = 1 / sum
        for index in 0..<count { values[index] *= inverse }
    }

    /// Applies a tower's activation in place.
    static func activate(_ values: UnsafeMutablePointer<Float>, count: Int, _ activation: CLIPActivation) {
        switch activation {
        case .quickGELU:
            // x · sigmoid(1.702 x) = x / (1 + exp(-1.702 x))
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { scratch.deallocate() }
            for index in 0..<count { scratch[index] = -1.702 * values[index] }
            exponentiate(scratch, count: count)
            for index in 0..<count { values[index] /= 1 + scratch[index] }
        case .gelu:
            for index in 0..<count {
                let x = values[index]
                values[index] = 0.5 * x * (1 + erff(x * 0.707_106_77))
            }
        case .geluTanh:
            for index in 0..<count {
                let x = values[index]
                values[index] = 0.5 * x * (1 + tanhf(0.797_884_56 * (x + 0.044_715 * x * x * x)))
            }
        }
    }

    /// `exp` of every value in place, eight lanes at a time: `2ⁿ · p(r)` with `x = n ln 2 + r`,
    /// `|r| ≤ ln 2 / 2`, and a degree-7 Taylor polynomial (relative error below 2 · 10⁻⁷).
    static func exponentiate(_ values: UnsafeMutablePointer<Float>, count: Int) {
        var index = 0
        let raw = UnsafeMutableRawPointer(values)
        while index + 8 <= count {
            let x = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: exp8(x), toByteOffset: index * 4, as: SIMD8<Float>.self)
            index += 8
        }
        if index < count {
            var lanes = SIMD8<Float>(repeating: 0)
            for lane in 0..<(count - index) { lanes[lane] = values[index + lane] }
            let result = exp8(lanes)
            for lane in 0..<(count - index) { values[index + lane] = result[lane] }
        }
    }

    @inline(__always)
    static func exp8(_ input: SIMD8<Float>) -> SIMD8<Float> {
        let x = pointwiseMax(pointwiseMin(input, SIMD8(repeating: 88.0)), SIMD8(repeating: -87.0))
        // Round x / ln 2 to the nearest integer with the 1.5 · 2²³ trick (no rounding instruction needed).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6
        var p = SIMD8<Float>(repeating: 1 / 5040)
        p = p * r + 1 / 720
        p = p * r + 1 / 120
        p = p * r + 1 / 24
        p = p * r + 1 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let exponent = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let scale = unsafeBitCast((exponent &+ 127) &<< 23, to: SIMD8<Float>.self)
        return p * scale
    }
}
