import CLIPKernels

/// One pre-norm transformer layer's weights, as Hugging Face's CLIP encoder names them.
struct EncoderLayerWeights {
    let norm1Scale: UnsafePointer<Float>
    let norm1Shift: UnsafePointer<Float>
    let query: LinearWeights
    let key: LinearWeights
    let value: LinearWeights
    let output: LinearWeights
    let norm2Scale: UnsafePointer<Float>
    let norm2Shift: UnsafePointer<Float>
    let expand: LinearWeights
    let contract: LinearWeights

    init(_ weights: SafeTensorsFile, prefix: String, shape: CLIPTowerShape, arena: WeightArena, pack: Bool) throws {
        let width = shape.hiddenSize
        let inner = shape.intermediateSize
        func tensor(_ name: String, _ dimensions: [Int]) throws -> UnsafePointer<Float> {
            try weights.floats("\(prefix).\(name)", shape: dimensions, arena: arena)
        }
        func projection(_ name: String, _ outputs: Int, _ inputs: Int) throws -> LinearWeights {
            try LinearWeights(
                weights, weight: "\(prefix).\(name).weight", shape: [outputs, inputs], bias: "\(prefix).\(name).bias",
                outputs: outputs, inputs: inputs, arena: arena, pack: pack)
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

    init(_ weights: SafeTensorsFile, prefix: String, shape: CLIPTowerShape, arena: WeightArena, pack: Bool) throws {
        self.shape = shape
        self.layers = try (0..<shape.layers).map {
            try EncoderLayerWeights(
                weights, prefix: "\(prefix).layers.\($0)", shape: shape, arena: arena, pack: pack)
        }
    }

    /// Runs every layer over `hidden` (`rows × hiddenSize`) in place.
    /// - Parameters:
    ///   - hidden: The token vectors of every sequence, one after another.
    ///   - sequences: Each sequence's first row and length; attention stays within a sequence.
    ///   - causal: Whether a token attends only to itself and earlier tokens (the text tower).
    ///   - pooled: For each sequence, the row the caller reads afterwards (the class or end-of-text
    ///     token). The last layer computes only those rows; the others keep what the layer before
    ///     produced. Every pooled row is exactly what a full last layer gives.
    ///   - parallel: How the work is split between threads.
    func run(
        _ hidden: UnsafeMutablePointer<Float>, sequences: [(start: Int, length: Int)], causal: Bool, pooled: [Int],
        parallel: Parallel, workspace: Workspace
    ) {
        let rows = sequences.reduce(0) { $0 + $1.length }
        let width = shape.hiddenSize
        let headSize = shape.headSize
        let heads = shape.attentionHeads
        let longest = sequences.map(\.length).max() ?? 0
        let normed = workspace.floats(rows * width)
        let queries = workspace.floats(rows * width)
        let keys = workspace.floats(rows * width)
        let values = workspace.floats(rows * width)
        let attended = workspace.floats(rows * width)
        let inner = workspace.floats(rows * shape.intermediateSize)
        let scratchPerHead = clipk_attention_scratch_count(Int32(longest), Int32(headSize))
        let scratch = workspace.floats(sequences.count * heads * scratchPerHead)
        let scale = 1 / Float(headSize).squareRoot()
        let epsilon = shape.layerNormEpsilon
        func normalise(_ scaleWeights: UnsafePointer<Float>, _ shift: UnsafePointer<Float>) {
            parallel.split(rows) { range in
                Kernels.layerNorm(
                    hidden + range.lowerBound * width, rows: range.count, width: width, scale: scaleWeights,
                    shift: shift, epsilon: epsilon, into: normed + range.lowerBound * width)
            }
        }
        for (index, layer) in layers.enumerated() {
            if index == layers.count - 1 {
                lastLayer(
                    layer, hidden, sequences: sequences, causal: causal, pooled: pooled, normed: normed, keys: keys,
                    values: values, parallel: parallel, workspace: workspace)
                break
            }
            normalise(layer.norm1Scale, layer.norm1Shift)
            Kernels.linear(
                normed, rows: rows, products: [(layer.query, queries), (layer.key, keys), (layer.value, values)],
                parallel: parallel)
            parallel.forEach(sequences.count * heads) { pair in
                let sequence = sequences[pair / heads]
                let head = pair % heads
                let offset = sequence.start * width + head * headSize
                clipk_attention(
                    queries + offset, keys + offset, values + offset, Int32(width), Int32(sequence.length),
                    Int32(headSize), scale, causal ? 1 : 0, scratch + pair * scratchPerHead, attended + offset,
                    Int32(width))
            }
            Kernels.linear(
                attended, rows: rows, weights: layer.output, into: hidden, accumulate: true, parallel: parallel)
            normalise(layer.norm2Scale, layer.norm2Shift)
            Kernels.linear(
                normed, rows: rows, weights: layer.expand, into: inner, activation: shape.activation, parallel: parallel
            )
            Kernels.linear(
                inner, rows: rows, weights: layer.contract, into: hidden, accumulate: true, parallel: parallel)
        }
    }

    /// The last layer for the pooled rows only: keys and values for every token; queries,
    /// attention, output projection and MLP for one row per sequence.
    private func lastLayer(
        _ layer: EncoderLayerWeights, _ hidden: UnsafeMutablePointer<Float>, sequences: [(start: Int, length: Int)],
        causal: Bool, pooled: [Int], normed: UnsafeMutablePointer<Float>, keys: UnsafeMutablePointer<Float>,
        values: UnsafeMutablePointer<Float>, parallel: Parallel, workspace: Workspace
    ) {
        let rows = sequences.reduce(0) { $0 + $1.length }
        let width = shape.hiddenSize
        let headSize = shape.headSize
        let heads = shape.attentionHeads
        let count = pooled.count
        let epsilon = shape.layerNormEpsilon
        parallel.split(rows) { range in
            Kernels.layerNorm(
                hidden + range.lowerBound * width, rows: range.count, width: width, scale: layer.norm1Scale,
                shift: layer.norm1Shift, epsilon: epsilon, into: normed + range.lowerBound * width)
        }
        Kernels.linear(normed, rows: rows, products: [(layer.key, keys), (layer.value, values)], parallel: parallel)
        let picked = workspace.floats(count * width)
        let queries = workspace.floats(count * width)
        let attended = workspace.floats(count * width)
        let state = workspace.floats(count * width)
        let inner = workspace.floats(count * shape.intermediateSize)
        let longest = sequences.map(\.length).max() ?? 0
        let scores = workspace.floats(count * heads * longest)
        for (index, row) in pooled.enumerated() {
            (picked + index * width).update(from: normed + row * width, count: width)
            (state + index * width).update(from: hidden + row * width, count: width)
        }
        Kernels.linear(picked, rows: count, weights: layer.query, into: queries, parallel: parallel)
        let scale = 1 / Float(headSize).squareRoot()
        parallel.forEach(count * heads) { pair in
            let index = pair / heads
            let head = pair % heads
            let sequence = sequences[index]
            let visible = causal ? pooled[index] - sequence.start + 1 : sequence.length
            let query = queries + index * width + head * headSize
            let line = scores + pair * longest
            for token in 0..<visible {
                let key = keys + (sequence.start + token) * width + head * headSize
                var sum: Float = 0
                for column in 0..<headSize { sum += query[column] * key[column] }
                line[token] = sum * scale
            }
            Kernels.softmax(line, count: visible)
            let output = attended + index * width + head * headSize
            output.update(repeating: 0, count: headSize)
            for token in 0..<visible {
                let value = values + (sequence.start + token) * width + head * headSize
                let weight = line[token]
                for column in 0..<headSize { output[column] += weight * value[column] }
            }
        }
        Kernels.linear(attended, rows: count, weights: layer.output, into: state, accumulate: true, parallel: parallel)
        Kernels.layerNorm(
            state, rows: count, width: width, scale: layer.norm2Scale, shift: layer.norm2Shift, epsilon: epsilon,
            into: picked)
        Kernels.linear(
            picked, rows: count, weights: layer.expand, into: inner, activation: shape.activation, parallel: parallel)
        Kernels.linear(inner, rows: count, weights: layer.contract, into: state, accumulate: true, parallel: parallel)
        for (index, row) in pooled.enumerated() {
            (hidden + row * width).update(from: state + index * width, count: width)
        }
    }
}
