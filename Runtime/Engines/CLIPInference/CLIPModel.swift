import COpenBLAS
import Crypto
import Foundation

/// A Hugging Face CLIP checkpoint directory, checked without loading its weights: the
/// configuration, the preprocessing, the tokenizer files and every tensor's name, shape and type.
public struct CLIPModelFiles: Sendable {
    /// The directory.
    public let directory: URL
    /// The parsed `config.json`.
    public let configuration: CLIPConfiguration
    /// The image preprocessing `preprocessor_config.json` describes, checked against the model's
    /// input size.
    public let preprocessor: CLIPImagePreprocessor
    /// A short identifier of this exact checkpoint: the directory name and a SHA-256 prefix over
    /// both JSON files, the safetensors header and the first and last MiB of tensor data.
    public let fingerprint: String
    /// The weight file's size in bytes.
    public let weightBytes: Int

    /// Whether a directory holds the files of a model (not whether they are valid).
    public static func looksLikeModel(_ directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path)
            || FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.safetensors").path)
    }

    /// Checks a model directory.
    /// - Parameter directory: The directory.
    /// - Throws: ``CLIPModelError`` naming the first file that is missing or wrong.
    public init(directory: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw CLIPModelError(file: directory.path, "the model directory does not exist") }
        self.directory = directory
        let configData = try Self.read(directory, "config.json")
        self.configuration = try CLIPConfiguration(json: configData)
        let preprocessorData = try Self.read(directory, "preprocessor_config.json")
        self.preprocessor = try CLIPImagePreprocessor(
            settings: try CLIPPreprocessing(json: preprocessorData), imageSize: configuration.imageSize)
        let hasVocabulary =
            FileManager.default.fileExists(atPath: directory.appendingPathComponent("vocab.json").path)
            && FileManager.default.fileExists(atPath: directory.appendingPathComponent("merges.txt").path)
        let hasOriginal = FileManager.default.fileExists(
            atPath: directory.appendingPathComponent(Self.originalVocabulary).path)
        guard hasVocabulary || hasOriginal else {
            throw CLIPModelError(
                file: "vocab.json",
                "the tokenizer needs vocab.json and merges.txt (or \(Self.originalVocabulary)); they are missing")
        }
        let weights = try SafeTensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        for (name, shape) in Self.expectedTensors(configuration) {
            guard let info = weights.tensors[name] else {
                throw CLIPModelError(file: "model.safetensors", "the tensor \(name) is missing")
            }
            guard info.shape == shape else {
                throw CLIPModelError(
                    file: "model.safetensors", "\(name) has shape \(info.shape) but config.json implies \(shape)")
            }
            guard SafeTensorsFile.ElementType(rawValue: info.dtype) != nil else {
                throw CLIPModelError(
                    file: "model.safetensors", "\(name) has element type \(info.dtype); F32, F16 or BF16 is needed")
            }
        }
        self.weightBytes = weights.byteCount
        var hash = SHA256()
        hash.update(data: configData)
        hash.update(data: preprocessorData)
        hash.update(data: weights.headerBytes)
        hash.update(data: weights.dataSample(count: 1 << 20))
        let digest = hash.finalize().map { String(format: "%02x", $0) }.joined()
        self.fingerprint = "clip/\(directory.lastPathComponent)@\(digest.prefix(12))"
    }

    /// The original CLIP release's vocabulary file, read when vocab.json and merges.txt are absent.
    static let originalVocabulary = "bpe_simple_vocab_16e6.txt.gz"

    /// Reads the tokenizer: vocab.json and merges.txt, or else the original gzip file.
    func tokenizer() throws -> CLIPTokenizer {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("vocab.json").path) {
            return try CLIPTokenizer(
                vocabularyJSON: try Self.read(directory, "vocab.json"),
                merges: String(decoding: try Self.read(directory, "merges.txt"), as: UTF8.self))
        }
        guard let text = Gzip.decompress(try Self.read(directory, Self.originalVocabulary)) else {
            throw CLIPModelError(file: Self.originalVocabulary, "not valid gzip data")
        }
        return try CLIPTokenizer(originalMerges: String(decoding: text, as: UTF8.self))
    }

    static func read(_ directory: URL, _ name: String) throws -> Data {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CLIPModelError(file: name, "the file is missing")
        }
        guard let data = try? Data(contentsOf: url) else { throw CLIPModelError(file: name, "the file cannot be read") }
        return data
    }

    /// Every tensor the engine reads, with the shape the configuration implies.
    static func expectedTensors(_ configuration: CLIPConfiguration) -> [(String, [Int])] {
        let text = configuration.text
        let vision = configuration.vision
        func layers(_ prefix: String, _ shape: CLIPTowerShape) -> [(String, [Int])] {
            let width = shape.hiddenSize
            let inner = shape.intermediateSize
            return (0..<shape.layers).flatMap { index -> [(String, [Int])] in
                let layer = "\(prefix).layers.\(index)"
                return [
                    ("\(layer).layer_norm1.weight", [width]), ("\(layer).layer_norm1.bias", [width]),
                    ("\(layer).self_attn.q_proj.weight", [width, width]), ("\(layer).self_attn.q_proj.bias", [width]),
                    ("\(layer).self_attn.k_proj.weight", [width, width]), ("\(layer).self_attn.k_proj.bias", [width]),
                    ("\(layer).self_attn.v_proj.weight", [width, width]), ("\(layer).self_attn.v_proj.bias", [width]),
                    ("\(layer).self_attn.out_proj.weight", [width, width]),
                    ("\(layer).self_attn.out_proj.bias", [width]),
                    ("\(layer).layer_norm2.weight", [width]), ("\(layer).layer_norm2.bias", [width]),
                    ("\(layer).mlp.fc1.weight", [inner, width]), ("\(layer).mlp.fc1.bias", [inner]),
                    ("\(layer).mlp.fc2.weight", [width, inner]), ("\(layer).mlp.fc2.bias", [width]),
                ]
            }
        }
        let patch = configuration.patchSize
        return [
            ("text_model.embeddings.token_embedding.weight", [configuration.vocabularySize, text.hiddenSize]),
            ("text_model.embeddings.position_embedding.weight", [configuration.maxTextLength, text.hiddenSize]),
            ("text_model.final_layer_norm.weight", [text.hiddenSize]),
            ("text_model.final_layer_norm.bias", [text.hiddenSize]),
            ("text_projection.weight", [configuration.projectionDimension, text.hiddenSize]),
            ("vision_model.embeddings.class_embedding", [vision.hiddenSize]),
            (
                "vision_model.embeddings.patch_embedding.weight",
                [vision.hiddenSize, configuration.channels, patch, patch]
            ),
            ("vision_model.embeddings.position_embedding.weight", [configuration.patchCount + 1, vision.hiddenSize]),
            ("vision_model.pre_layrnorm.weight", [vision.hiddenSize]),
            ("vision_model.pre_layrnorm.bias", [vision.hiddenSize]),
            ("vision_model.post_layernorm.weight", [vision.hiddenSize]),
            ("vision_model.post_layernorm.bias", [vision.hiddenSize]),
            ("visual_projection.weight", [configuration.projectionDimension, vision.hiddenSize]),
        ] + layers("text_model.encoder", text) + layers("vision_model.encoder", vision)
    }
}

/// A loaded CLIP model: both towers over memory-mapped (or, for the product kernel, packed)
/// weights, the tokenizer and the image preprocessing. Immutable once loaded, so one instance
/// serves concurrent callers; each call splits its own work between the threads it is given.
public final class CLIPModel: @unchecked Sendable {
    /// The checked files this model was loaded from.
    public let files: CLIPModelFiles
    /// The tokenizer.
    public let tokenizer: CLIPTokenizer
    /// The image preprocessing.
    public let preprocessor: CLIPImagePreprocessor
    /// The configuration.
    public var configuration: CLIPConfiguration { files.configuration }
    /// Bytes of Float32 weights the model holds outside the mapped file: matrices packed for the
    /// product kernel (when the CPU runs it) and tensors widened from F16 or BF16.
    public var copiedBytes: Int { arena.byteCount }

    private let weights: SafeTensorsFile
    private let arena = WeightArena()
    private let workspaces = Workspaces()
    private let tokenEmbedding: UnsafePointer<Float>
    private let textPositions: UnsafePointer<Float>
    private let textEncoder: TransformerEncoder
    private let finalNorm: (scale: UnsafePointer<Float>, shift: UnsafePointer<Float>)
    private let textProjection: LinearWeights
    private let classEmbedding: UnsafePointer<Float>
    private let patchEmbedding: LinearWeights
    private let imagePositions: UnsafePointer<Float>
    private let preNorm: (scale: UnsafePointer<Float>, shift: UnsafePointer<Float>)
    private let imageEncoder: TransformerEncoder
    private let postNorm: (scale: UnsafePointer<Float>, shift: UnsafePointer<Float>)
    private let imageProjection: LinearWeights

    /// Whether this CPU runs the packed matrix-product kernel (AVX2 and FMA).
    public static let packedKernelAvailable = LinearWeights.packs

    /// Loads a checked model directory: maps the weights and reads the tokenizer.
    /// - Parameters:
    ///   - files: The checked directory.
    ///   - packed: Whether the matrix weights are packed once for the packed kernel (the default
    ///     where the CPU runs it), or read in place by BLAS.
    /// - Throws: ``CLIPModelError`` when a file changed since it was checked.
    public init(files: CLIPModelFiles, packed: Bool = CLIPModel.packedKernelAvailable) throws {
        self.files = files
        let configuration = files.configuration
        let directory = files.directory
        self.tokenizer = try files.tokenizer()
        guard tokenizer.vocabularySize <= configuration.vocabularySize,
            Int(tokenizer.endID) < configuration.vocabularySize
        else {
            throw CLIPModelError(
                file: "vocab.json",
                "has \(tokenizer.vocabularySize) tokens but the model embeds \(configuration.vocabularySize)")
        }
        self.preprocessor = files.preprocessor
        let weights = try SafeTensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        self.weights = weights
        let arena = self.arena
        func tensor(_ name: String, _ shape: [Int]) throws -> UnsafePointer<Float> {
            try weights.floats(name, shape: shape, arena: arena)
        }
        let text = configuration.text
        let vision = configuration.vision
        tokenEmbedding = try tensor(
            "text_model.embeddings.token_embedding.weight", [configuration.vocabularySize, text.hiddenSize])
        textPositions = try tensor(
            "text_model.embeddings.position_embedding.weight", [configuration.maxTextLength, text.hiddenSize])
        textEncoder = try TransformerEncoder(
            weights, prefix: "text_model.encoder", shape: text, arena: arena, pack: packed)
        finalNorm = (
            try tensor("text_model.final_layer_norm.weight", [text.hiddenSize]),
            try tensor("text_model.final_layer_norm.bias", [text.hiddenSize])
        )
        textProjection = try LinearWeights(
            weights, weight: "text_projection.weight", shape: [configuration.projectionDimension, text.hiddenSize],
            bias: nil, outputs: configuration.projectionDimension, inputs: text.hiddenSize, arena: arena, pack: packed)
        classEmbedding = try tensor("vision_model.embeddings.class_embedding", [vision.hiddenSize])
        let patch = configuration.patchSize
        patchEmbedding = try LinearWeights(
            weights, weight: "vision_model.embeddings.patch_embedding.weight",
            shape: [vision.hiddenSize, configuration.channels, patch, patch], bias: nil, outputs: vision.hiddenSize,
            inputs: configuration.channels * patch * patch, arena: arena, pack: packed)
        imagePositions = try tensor(
            "vision_model.embeddings.position_embedding.weight", [configuration.patchCount + 1, vision.hiddenSize])
        preNorm = (
            try tensor("vision_model.pre_layrnorm.weight", [vision.hiddenSize]),
            try tensor("vision_model.pre_layrnorm.bias", [vision.hiddenSize])
        )
        imageEncoder = try TransformerEncoder(
            weights, prefix: "vision_model.encoder", shape: vision, arena: arena, pack: packed)
        postNorm = (
            try tensor("vision_model.post_layernorm.weight", [vision.hiddenSize]),
            try tensor("vision_model.post_layernorm.bias", [vision.hiddenSize])
        )
        imageProjection = try LinearWeights(
            weights, weight: "visual_projection.weight", shape: [configuration.projectionDimension, vision.hiddenSize],
            bias: nil, outputs: configuration.projectionDimension, inputs: vision.hiddenSize, arena: arena, pack: packed
        )
    }

    /// Keeps the matrix library single-threaded: the engine splits work between its own threads
    /// (the `threads` argument of the embed calls), so results do not depend on the library's
    /// own partitioning.
    private static let singleThreadedLibrary: Void = openblas_set_num_threads(1)

    /// The token ids of a text, truncated to the model's sequence length.
    public func tokenize(_ text: String) -> [Int32] {
        tokenizer.encode(text, maxLength: configuration.maxTextLength)
    }

    /// Embeds texts given as token ids (from ``tokenize(_:)``), all in one batch.
    /// - Parameter sequences: Token ids, each with start and end tokens and at most
    ///   `maxTextLength` ids below the vocabulary size.
    /// - Returns: One L2-normalised embedding per sequence.
    /// - Parameter threads: Threads to split the work between.
    public func embed(tokenSequences sequences: [[Int32]], threads: Int = 1) -> [[Float]] {
        guard !sequences.isEmpty else { return [] }
        return inGroups(sequences.count, threads: threads) { range, threads in
            workspaces.with { embed(tokenSequences: Array(sequences[range]), threads: threads, workspace: $0) }
        }
    }

    /// Runs a batch either whole, its every step split between `threads` threads, or, when it
    /// holds at least two inputs per thread, as one contiguous group of inputs per thread, each
    /// group embedded from start to end by one thread. Groups need no hand-over between the ~80
    /// steps of an inference, which a split step pays on every one (two single-threaded processes
    /// side by side embedded 25-26 images a second together where one process splitting every
    /// step of 8-image batches over 2 threads managed 21-24). Each input's embedding is the same
    /// either way: every row of every step is computed alone, in the same order, whatever the
    /// batch around it.
    private func inGroups(
        _ count: Int, threads: Int, _ embed: (_ inputs: Range<Int>, _ threads: Int) -> [[Float]]
    ) -> [[Float]] {
        let groups = threads > 1 && count >= 2 * threads ? threads : 1
        guard groups > 1 else { return embed(0..<count, threads) }
        var results = [[[Float]]](repeating: [], count: groups)
        results.withUnsafeMutableBufferPointer { results in
            Parallel(workers: threads).forEach(groups) { group in
                results[group] = embed((count * group / groups)..<(count * (group + 1) / groups), 1)
            }
        }
        return results.flatMap { $0 }
    }

    private func embed(tokenSequences sequences: [[Int32]], threads: Int, workspace: Workspace) -> [[Float]] {
        Self.singleThreadedLibrary
        let parallel = Parallel(workers: max(1, threads))
        let configuration = configuration
        let width = configuration.text.hiddenSize
        var layout: [(start: Int, length: Int)] = []
        var rows = 0
        for sequence in sequences {
            precondition(!sequence.isEmpty && sequence.count <= configuration.maxTextLength, "token sequence length")
            layout.append((rows, sequence.count))
            rows += sequence.count
        }
        let hidden = workspace.floats(rows * width)
        for (sequence, place) in zip(sequences, layout) {
            for (position, id) in sequence.enumerated() {
                precondition(id >= 0 && Int(id) < configuration.vocabularySize, "token id out of range")
                let row = hidden + (place.start + position) * width
                let token = tokenEmbedding + Int(id) * width
                let position = textPositions + position * width
                for column in 0..<width { row[column] = token[column] + position[column] }
            }
        }
        let pooledRows = zip(sequences, layout).map { sequence, place in place.start + poolingIndex(sequence) }
        textEncoder.run(
            hidden, sequences: layout, causal: true, pooled: pooledRows, parallel: parallel, workspace: workspace)
        let pooled = workspace.floats(sequences.count * width)
        for (index, row) in pooledRows.enumerated() {
            Kernels.layerNorm(
                hidden + row * width, rows: 1, width: width, scale: finalNorm.scale, shift: finalNorm.shift,
                epsilon: configuration.text.layerNormEpsilon, into: pooled + index * width)
        }
        return project(pooled, count: sequences.count, width: width, weights: textProjection, parallel: parallel)
    }

    /// Where Hugging Face pools a sequence: at the highest id (the end token) for configurations
    /// whose `eos_token_id` is the legacy 2, otherwise at the first end-of-text id.
    func poolingIndex(_ sequence: [Int32]) -> Int {
        if configuration.endOfTextTokenID == 2 {
            var best = 0
            for (index, id) in sequence.enumerated() where id > sequence[best] { best = index }
            return best
        }
        return sequence.firstIndex(of: Int32(configuration.endOfTextTokenID)) ?? 0
    }

    /// Embeds preprocessed images (from the ``preprocessor``), all in one batch.
    /// - Parameter images: Each `3 × imageSize × imageSize` values, channel by channel.
    /// - Returns: One L2-normalised embedding per image.
    /// - Parameter threads: Threads to split the work between.
    public func embed(pixelValues images: [[Float]], threads: Int = 1) -> [[Float]] {
        guard !images.isEmpty else { return [] }
        return inGroups(images.count, threads: threads) { range, threads in
            workspaces.with { embed(pixelValues: Array(images[range]), threads: threads, workspace: $0) }
        }
    }

    private func embed(pixelValues images: [[Float]], threads: Int, workspace: Workspace) -> [[Float]] {
        Self.singleThreadedLibrary
        let parallel = Parallel(workers: max(1, threads))
        let configuration = configuration
        let width = configuration.vision.hiddenSize
        let patch = configuration.patchSize
        let grid = configuration.imageSize / patch
        let patches = configuration.patchCount
        let patchLength = configuration.channels * patch * patch
        let side = configuration.imageSize
        let tokens = patches + 1
        let unfolded = workspace.floats(images.count * patches * patchLength)
        let embedded = workspace.floats(images.count * patches * width)
        let hidden = workspace.floats(images.count * tokens * width)
        for (index, pixels) in images.enumerated() {
            precondition(pixels.count == configuration.channels * side * side, "pixel value count")
            pixels.withUnsafeBufferPointer { pixels in
                for patchRow in 0..<grid {
                    for patchColumn in 0..<grid {
                        var target = unfolded + ((index * patches) + patchRow * grid + patchColumn) * patchLength
                        for channel in 0..<configuration.channels {
                            for y in 0..<patch {
                                let source = channel * side * side + (patchRow * patch + y) * side + patchColumn * patch
                                for x in 0..<patch { target[x] = pixels[source + x] }
                                target += patch
                            }
                        }
                    }
                }
            }
        }
        Kernels.linear(
            unfolded, rows: images.count * patches, weights: patchEmbedding, into: embedded, parallel: parallel)
        for index in 0..<images.count {
            let first = hidden + index * tokens * width
            for column in 0..<width { first[column] = classEmbedding[column] + imagePositions[column] }
            for patchIndex in 0..<patches {
                let row = first + (patchIndex + 1) * width
                let source = embedded + (index * patches + patchIndex) * width
                let position = imagePositions + (patchIndex + 1) * width
                for column in 0..<width { row[column] = source[column] + position[column] }
            }
        }
        let epsilon = configuration.vision.layerNormEpsilon
        Kernels.layerNorm(
            hidden, rows: images.count * tokens, width: width, scale: preNorm.scale, shift: preNorm.shift,
            epsilon: epsilon, into: hidden)
        imageEncoder.run(
            hidden, sequences: (0..<images.count).map { ($0 * tokens, tokens) }, causal: false,
            pooled: (0..<images.count).map { $0 * tokens }, parallel: parallel, workspace: workspace)
        let pooled = workspace.floats(images.count * width)
        for index in 0..<images.count {
            Kernels.layerNorm(
                hidden + index * tokens * width, rows: 1, width: width, scale: postNorm.scale, shift: postNorm.shift,
                epsilon: epsilon, into: pooled + index * width)
        }
        return project(pooled, count: images.count, width: width, weights: imageProjection, parallel: parallel)
    }

    private func project(
        _ pooled: UnsafePointer<Float>, count: Int, width: Int, weights: LinearWeights, parallel: Parallel
    )
        -> [[Float]]
    {
        let dimension = configuration.projectionDimension
        var projected = [Float](repeating: 0, count: count * dimension)
        projected.withUnsafeMutableBufferPointer { output in
            Kernels.linear(pooled, rows: count, weights: weights, into: output.baseAddress!, parallel: parallel)
        }
        return (0..<count).map { index in
            let vector = Array(projected[(index * dimension)..<((index + 1) * dimension)])
            let norm = max(vector.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return vector.map { $0 / norm }
        }
    }
}
