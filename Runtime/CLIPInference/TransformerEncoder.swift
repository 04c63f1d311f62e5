import COpenBLAS

/// One pre-norm transformer layer's weights, as Hugging Face's CLIP encoder names them.
struct EncoderLayerWeights {
    let norm1Scale: UnsafePointer<Float>
    let norm1Shift: UnsafePointer<Float>
    let query: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)
    let key: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)
    let value: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)
    let output: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)
    let norm2Scale: UnsafePointer<Float>
    let norm2Shift: UnsafePointer<Float>
    let expand: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)
    let contract: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)

    init(_ weights: SafeTensorsFile, prefix: String, shape: CLIPTowerShape, arena: WeightArena) throws {
        let width = shape.hiddenSize
        let inner = shape.intermediateSize
        func tensor(_ name: String, _ dimensions: [Int]) throws -> UnsafePointer<Float> {
            try weights.floats("\(prefix).\(name)", shape: dimensions, arena: arena)
        }
        func projection(
            _ name: String, _ outputs: Int, _ inputs: Int
        ) throws -> (
            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>
        ) {
            (try tensor("\(name).weight", [outputs, inputs]), try tensor("\(name).bias", [outputs]))
        }
        norm1Scale = try tensor("layer_norm1.weight", [width])
        norm1Shift = try tensor("layer_norm1.bias", [width])
        query = try projection("self_attn.q_proj", width, width)
        key = try projection("self_attn.k_proj", width, width)
        value = try projection("self_attn.v_proj", width, width)
        output = try projection("self_attn.out_proj", width, width)
        norm2Scale = try tensor("layer_norm2.weight", [width])
        norm2Shift = try tensor("layer_norm2.bias", [width])
        expand = try projection("mlp.fc1", inner, width)
        contract = try projection("mlp.fc2", width, inner)
    }
}

/// A stack of pre-norm transformer layers over several independent sequences packed row by row.
struct TransformerEncoder {
    let shape: CLIPTowerShape
    let layers: [EncoderLayerWeights]

    init(_ weights: SafeTensorsFile, prefix: String, shape: CLIPTowerShape, arena: WeightArena) throws {
        self.shape = shape
        self.layers = try (0..<shape.layers).map {
            try EncoderLayerWeights(weights, prefix: "\(prefix).layers.\($0)", shape: shape, arena: arena)
        }
    }

    /// Runs every layer over `hidden` (`rows × hiddenSize`) in place.
    /// - Parameters:
    ///   - hidden: The token vectors of every sequence, one after another.
    ///   - sequences: Each sequence's first row and length; attention stays within a sequence.
    ///   - causal: Whether a token attends only to itself and earlier tokens (the text tower).
    ///   - parallel: How the work is split between threads.
    func run(
        _ hidden: UnsafeMutablePointer<Float>, sequences: [(start: Int, length: Int)], causal: Bool, parallel: Parallel
    ) {
        let rows = sequences.reduce(0) { $0 + $1.length }
        let width = shape.hiddenSize
        let headSize = shape.headSize
        let heads = shape.attentionHeads
        let longest = sequences.map(\.length).max() ?? 0
        let normed = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let queries = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let keys = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let values = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let attended = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let inner = UnsafeMutablePointer<Float>.allocate(capacity: rows * shape.intermediateSize)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: sequences.count * heads * longest * longest)
        defer {
            for buffer in [normed, queries, keys, values, attended, inner, scores] { buffer.deallocate() }
        }
        let scale = 1 / Float(headSize).squareRoot()
        let epsilon = shape.layerNormEpsilon
        func normalise(_ scaleWeights: UnsafePointer<Float>, _ shift: UnsafePointer<Float>) {
            parallel.split(rows) { range in
                Kernels.layerNorm(
                    hidden + range.lowerBound * width, rows: range.count, width: width, scale: scaleWeights,
                    shift: shift, epsilon: epsilon, into: normed + range.lowerBound * width)
            }
        }
        for layer in layers {
            normalise(layer.norm1Scale, layer.norm1Shift)
            for (projection, output) in [(layer.query, queries), (layer.key, keys), (layer.value, values)] {
                Kernels.linear(
                    normed, rows: rows, inputs: width, weight: projection.weight, bias: projection.bias,
                    outputs: width, into: output, parallel: parallel)
            }
            parallel.forEach(sequences.count * heads) { pair in
                let sequence = sequences[pair / heads]
                let head = pair % heads
                let length = Int32(sequence.length)
                let offset = sequence.start * width + head * headSize
                let block = scores + pair * longest * longest
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, length, length, Int32(headSize), scale,
                    queries + offset, Int32(width), keys + offset, Int32(width), 0, block, length)
                for row in 0..<sequence.length {
                    let line = block + row * sequence.length
                    let visible = causal ? row + 1 : sequence.length
                    Kernels.softmax(line, count: visible)
                    for column in visible..<sequence.length { line[column] = 0 }
                }
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, length, Int32(headSize), length, 1, block, length,
                    values + offset, Int32(width), 0, attended + offset, Int32(width))
            }
            Kernels.linear(
                attended, rows: rows, inputs: width, weight: layer.output.weight, bias: layer.output.bias,
                outputs: width, into: hidden, accumulate: true, parallel: parallel)
            normalise(layer.norm2Scale, layer.norm2Shift)
            Kernels.linear(
                normed, rows: rows, inputs: width, weight: layer.expand.weight, bias: layer.expand.bias,
                outputs: shape.intermediateSize, into: inner, parallel: parallel)
            let innerCount = rows * shape.intermediateSize
            parallel.split(innerCount, alignment: 64) { range in
                Kernels.activate(inner + range.lowerBound, count: range.count, shape.activation)
            }
            Kernels.linear(
                inner, rows: rows, inputs: shape.intermediateSize, weight: layer.contract.weight,
                bias: layer.contract.bias, outputs: width, into: hidden, accumulate: true, parallel: parallel)
        }
    }
}
