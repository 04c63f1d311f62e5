import CLIPKernels
import COpenBLAS
import Dispatch
import Foundation

/// Work split between a fixed number of threads (the matrix library itself runs single-threaded
/// inside each, so results do not depend on how it would have split the work).
struct Parallel {
    /// Threads to use, at least 1.
    let workers: Int

    /// Runs `body` for every index, spread over the workers (statically: worker `w` takes
    /// `w, w + workers, …`).
    func forEach(_ count: Int, _ body: (Int) -> Void) {
        if workers <= 1 || count <= 1 {
            for index in 0..<count { body(index) }
            return
        }
        let used = min(workers, count)
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: used) { worker in
                var index = worker
                while index < count {
                    work.value(index)
                    index += used
                }
            }
        }
    }

    /// Splits `0..<total` into one contiguous range per worker (bounds rounded to `alignment`).
    func split(_ total: Int, alignment: Int = 1, _ body: (Range<Int>) -> Void) {
        let used = max(1, min(workers, total / max(alignment, 1)))
        if used == 1 {
            body(0..<total)
            return
        }
        let step = (total / used + alignment - 1) / alignment * alignment
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: used) { worker in
                let range = min(total, worker * step)..<(worker == used - 1 ? total : min(total, (worker + 1) * step))
                if !range.isEmpty { work.value(range) }
            }
        }
    }
}

/// Hands a closure over raw buffers to the worker threads: every caller gives each worker
/// disjoint output ranges and waits for all of them before touching the buffers again.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// One linear layer's weight (`outputs × inputs`) and optional bias, in the layout the product
/// kernel reads.
struct LinearWeights {
    /// Where the weight lives.
    enum Storage {
        /// Packed into 16-column panels (``clipk_pack``), read by the packed kernel.
        case packed(UnsafePointer<Float>)
        /// The checkpoint's own row-major layout, read by BLAS.
        case rowMajor(UnsafePointer<Float>)
    }

    let outputs: Int
    let inputs: Int
    let storage: Storage
    let bias: UnsafePointer<Float>?

    /// Whether this CPU runs the packed kernel.
    static let packs = clipk_supported() != 0

    /// Reads a weight (and bias) from the checkpoint; with `pack`, packs it for the packed kernel
    /// and drops the mapped pages of the original, otherwise reads it in place.
    init(
        _ file: SafeTensorsFile, weight: String, shape: [Int], bias: String?, outputs: Int, inputs: Int,
        arena: WeightArena, pack: Bool
    ) throws {
        self.outputs = outputs
        self.inputs = inputs
        self.bias = try bias.map { try file.floats($0, shape: [outputs], arena: arena) }
        if pack {
            let scratch = WeightArena()
            let original = try file.floats(weight, shape: shape, arena: scratch)
            let packed = arena.allocate(clipk_packed_count(Int32(outputs), Int32(inputs)))
            clipk_pack(original, Int32(outputs), Int32(inputs), packed)
            file.releasePages(of: weight)
            self.storage = .packed(UnsafePointer(packed))
        } else {
            self.storage = .rowMajor(try file.floats(weight, shape: shape, arena: arena))
        }
    }
}

/// The dense operations of the transformer: matrix products through `cblas_sgemm`, the rest in
/// vectorised Swift loops.
enum Kernels {
    /// `output[rows × outputs] (+)= input[rows × inputs] · weightᵀ (+ bias)`, the output columns
    /// split between the workers: the packed kernel where the CPU runs it, otherwise a
    /// single-threaded `cblas_sgemm` per worker over its own rows of the weight. With
    /// `accumulate`, the product is added to what `output` holds (a residual connection).
    static func linear(
        _ input: UnsafePointer<Float>, rows: Int, weights: LinearWeights, into output: UnsafeMutablePointer<Float>,
        accumulate: Bool = false, activation: CLIPActivation? = nil, parallel: Parallel
    ) {
        linear(
            input, rows: rows, products: [(weights, output)], accumulate: accumulate, activation: activation,
            parallel: parallel)
    }

    /// Several products of the same input (the attention's query, key and value projections) in
    /// one parallel region, each split by columns between the workers. With `activation`, each
    /// worker applies it to its own columns right after its product.
    static func linear(
        _ input: UnsafePointer<Float>, rows: Int, products: [(LinearWeights, UnsafeMutablePointer<Float>)],
        accumulate: Bool = false, activation: CLIPActivation? = nil, parallel: Parallel
    ) {
        let width = products.map(\.0.outputs).max() ?? 0
        parallel.split(products.count * width, alignment: 16) { range in
            for (index, (weights, output)) in products.enumerated() {
                let start = max(range.lowerBound - index * width, 0)
                let end = min(range.upperBound - index * width, weights.outputs)
                guard start < end else { continue }
                multiply(
                    input, rows: rows, weights: weights, columns: start..<end, into: output, accumulate: accumulate)
                if let activation {
                    for row in 0..<rows {
                        activate(output + row * weights.outputs + start, count: end - start, activation)
                    }
                }
            }
        }
    }

    /// One worker's columns of one product.
    private static func multiply(
        _ input: UnsafePointer<Float>, rows: Int, weights: LinearWeights, columns: Range<Int>,
        into output: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let outputs = weights.outputs
        let inputs = weights.inputs
        // The bias (or zero) goes in first so that the product adds to it: no separate pass.
        for row in 0..<rows {
            let line = output + row * outputs
            if let bias = weights.bias {
                if accumulate {
                    for column in columns { line[column] += bias[column] }
                } else {
                    (line + columns.lowerBound).update(from: bias + columns.lowerBound, count: columns.count)
                }
            } else if !accumulate {
                (line + columns.lowerBound).update(repeating: 0, count: columns.count)
            }
        }
        switch weights.storage {
        case .packed(let packed):
            clipk_gemm(
                input, Int32(rows), Int32(inputs), packed, Int32(columns.lowerBound), Int32(columns.upperBound),
                output, Int32(outputs))
        case .rowMajor(let weight):
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(columns.count), Int32(inputs), 1,
                input, Int32(inputs), weight + columns.lowerBound * inputs, Int32(inputs), 1,
                output + columns.lowerBound, Int32(outputs))
        }
    }

    /// Layer normalisation of every row: `(x - mean) / sqrt(variance + ε) · scale + shift`.
    static func layerNorm(
        _ input: UnsafePointer<Float>, rows: Int, width: Int, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
        epsilon: Float, into output: UnsafeMutablePointer<Float>
    ) {
        clipk_layer_norm(input, Int32(rows), Int32(width), scale, shift, epsilon, output)
    }

    /// Softmax of `count` values in place.
    static func softmax(_ values: UnsafeMutablePointer<Float>, count: Int) {
        clipk_softmax(values, count)
    }

    /// Applies a tower's activation in place.
    static func activate(_ values: UnsafeMutablePointer<Float>, count: Int, _ activation: CLIPActivation) {
        switch activation {
        case .quickGELU:
            clipk_quick_gelu(values, count)
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
}
