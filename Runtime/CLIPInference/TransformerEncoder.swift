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
    func run(_ hidden: UnsafeMutablePointer<Float>, sequences: [(start: Int, length: Int)], causal: Bool) {
        let rows = sequences.reduce(0) { $0 + $1.length }
        let width = shape.hiddenSize
        let headSize = shape.headSize
        let longest = sequences.map(\.length).max() ?? 0
        let normed = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let queries = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let keys = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let values = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let attended = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let inner = UnsafeMutablePointer<Float>.allocate(capacity: rows * shape.intermediateSize)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: longest * longest)
        defer {
            for buffer in [normed, queries, keys, values, attended, inner, scores] { buffer.deallocate() }
        }
        let scale = 1 / Float(headSize).squareRoot()
        for layer in layers {
            Kernels.layerNorm(
                hidden, rows: rows, width: width, scale: layer.norm1Scale, shift: layer.norm1Shift,
                epsilon: shape.layerNormEpsilon, into: normed)
            Kernels.linear(
                normed, rows: rows, inputs: width, weight: layer.query.weight, bias: layer.query.bias, outputs: width,
                into: queries)
            Kernels.linear(
                normed, rows: rows, inputs: width, weight: layer.key.weight, bias: layer.key.bias, outputs: width,
                into: keys)
            Kernels.linear(
                normed, rows: rows, inputs: width, weight: layer.value.weight, bias: layer.value.bias, outputs: width,
                into: values)
            for sequence in sequences {
                let length = Int32(sequence.length)
                for head in 0..<shape.attentionHeads {
                    let offset = sequence.start * width + head * headSize
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, length, length, Int32(headSize), scale,
                        queries + offset, Int32(width), keys + offset, Int32(width), 0, scores, length)
                    for row in 0..<sequence.length {
                        let line = scores + row * sequence.length
                        let visible = causal ? row + 1 : sequence.length
                        Kernels.softmax(line, count: visible)
                        for column in visible..<sequence.length { line[column] = 0 }
                    }
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, length, Int32(headSize), length, 1, scores, length,
                        values + offset, Int32(width), 0, attended + offset, Int32(width))
                }
            }
            Kernels.linear(
                attended, rows: rows, inputs: width, weight: layer.output.weight, bias: layer.output.bias,
                outputs: width, into: hidden, accumulate: true)
            Kernels.layerNorm(
                hidden, rows: rows, width: width, scale: layer.norm2Scale, shift: layer.norm2Shift,
                epsilon: shape.layerNormEpsilon, into: normed)
            Kernels.linear(
                normed, rows: rows, inputs: width, weight: layer.expand.weight, bias: layer.expand.bias,
                outputs: shape.intermediateSize, into: inner)
            Kernels.activate(inner, count: rows * shape.intermediateSize, shape.activation)
            Kernels.linear(
                inner, rows: rows, inputs: shape.intermediateSize, weight: layer.contract.weight,
                bias: layer.contract.bias, outputs: width, into: hidden, accumulate: true)
        }
    }
}
