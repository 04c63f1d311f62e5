import CLIPKernels
import COpenBLAS
import Foundation
import Locking

/// Work split between a fixed number of threads (the matrix library itself runs single-threaded
/// inside each, so results do not depend on how it would have split the work). The threads come
/// from one ``WorkerPool`` per thread count, shared by the process.
struct Parallel {
    /// Threads to use, at least 1.
    let workers: Int
    private let pool: WorkerPool?

    init(workers: Int) {
        self.workers = max(1, workers)
        self.pool = self.workers > 1 ? WorkerPool.shared(workers: self.workers) : nil
    }

    /// Runs `body` for every index, spread over the workers: each takes the next index as it
    /// finishes one.
    func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard let pool, count > 1 else {
            for index in 0..<count { body(index) }
            return
        }
        pool.run(parts: count, body)
    }

    /// Splits `0..<total` into contiguous chunks (bounds rounded to `alignment`, at least
    /// `minimum` long, about `chunksPerWorker` per worker) that the workers take one at a time, so
    /// that a worker slowed by other work on its core delays the step by at most one chunk.
    func split(
        _ total: Int, alignment: Int = 1, minimum: Int = 1, chunksPerWorker: Int = 4, _ body: (Range<Int>) -> Void
    ) {
        let alignment = max(alignment, 1)
        let wanted = max(minimum, total / max(workers * chunksPerWorker, 1))
        let step = (wanted + alignment - 1) / alignment * alignment
        let chunks = (total + step - 1) / step
        guard let pool, chunks > 1 else {
            body(0..<total)
            return
        }
        pool.run(parts: chunks) { chunk in
            body((chunk * step)..<min(total, (chunk + 1) * step))
        }
    }
}

/// The helper threads of ``Parallel`` (``clipk_pool``): created once per thread count and kept
/// for the life of the process.
final class WorkerPool: @unchecked Sendable {
    private let pool: OpaquePointer

    private init(workers: Int) {
        pool = clipk_pool_create(Int32(workers))
    }

    deinit { clipk_pool_destroy(pool) }

    private static let pools = Locked<[Int: WorkerPool]>([:])

    /// The process's pool of `workers` workers.
    static func shared(workers: Int) -> WorkerPool {
        pools.withLock { pools in
            if let pool = pools[workers] { return pool }
            let pool = WorkerPool(workers: workers)
            pools[workers] = pool
            return pool
        }
    }

    /// Runs `body(part)` for every part in `0..<parts` on the pool's threads (this one included)
    /// and returns when every part has finished. Every caller gives each part disjoint output
    /// ranges and reads the buffers only afterwards.
    func run(parts: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var work = body
            withUnsafeMutablePointer(to: &work) { context in
                clipk_pool_run(
                    pool, Int32(parts),
                    { context, worker in
                        context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(worker))
                    }, context)
            }
        }
    }
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
        // Rows in the AVX-512 kernel's layout, made once here (block by block, between the workers
        // when there is enough to share) for every worker to read.
        var prepared: UnsafePointer<Float>?
        if let first = products.first?.0, case .packed = first.storage {
            let inputs = Int32(first.inputs)
            let blocks = Int(clipk_row_blocks(Int32(rows)))
            if blocks > 0, let buffer = clipk_prepared_rows_buffer(Int32(rows), inputs) {
                let fill = { (block: Int) in clipk_prepare_row_block(input, Int32(rows), inputs, Int32(block), buffer) }
                if blocks >= 4 {
                    parallel.forEach(blocks, fill)
                } else {
                    for block in 0..<blocks { fill(block) }
                }
                prepared = UnsafePointer(buffer)
            }
        }
        // Chunks of whole panel pairs (32 columns), at least two pairs, so that each call keeps the
        // kernel's widest block.
        parallel.split(products.count * width, alignment: 32, minimum: 64) { range in
            for (index, (weights, output)) in products.enumerated() {
                let start = max(range.lowerBound - index * width, 0)
                let end = min(range.upperBound - index * width, weights.outputs)
                guard start < end else { continue }
                multiply(
                    input, prepared: prepared, rows: rows, weights: weights, columns: start..<end, into: output,
                    accumulate: accumulate)
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
        _ input: UnsafePointer<Float>, prepared: UnsafePointer<Float>?, rows: Int, weights: LinearWeights,
        columns: Range<Int>, into output: UnsafeMutablePointer<Float>, accumulate: Bool
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
            clipk_gemm_prepared(
                input, prepared, Int32(rows), Int32(inputs), packed, Int32(columns.lowerBound),
                Int32(columns.upperBound), output, Int32(outputs))
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
