import Foundation

/// The MLP activation a tower is configured with (`hidden_act`).
public enum CLIPActivation: String, Sendable, Equatable {
    /// `x · sigmoid(1.702 x)`, the original CLIP models' choice.
    case quickGELU = "quick_gelu"
    /// The exact, erf-based GELU.
    case gelu
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    case geluTanh = "gelu_new"

    init?(configured name: String) {
        switch name {
        case "quick_gelu": self = .quickGELU
        case "gelu": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        default: return nil
        }
    }
}

/// The shape of one transformer tower.
public struct CLIPTowerShape: Sendable, Equatable {
    /// Width of every token vector.
    public let hiddenSize: Int
    /// Width of the MLP's hidden layer.
    public let intermediateSize: Int
    /// Attention heads per layer.
    public let attentionHeads: Int
    /// Transformer layers.
    public let layers: Int
    /// The MLP activation.
    public let activation: CLIPActivation
    /// The layer norms' epsilon.
    public let layerNormEpsilon: Float

    /// Width of one attention head.
    public var headSize: Int { hiddenSize / attentionHeads }
}

/// A CLIP checkpoint's `config.json`, with Hugging Face's defaults for the keys it leaves out.
public struct CLIPConfiguration: Sendable, Equatable {
    /// The text tower.
    public let text: CLIPTowerShape
    /// Token vocabulary size.
    public let vocabularySize: Int
    /// Longest token sequence, start and end tokens included.
    public let maxTextLength: Int
    /// The end-of-text id the configuration names; `2` means the legacy pooling at the highest id.
    public let endOfTextTokenID: Int
    /// The image tower.
    public let vision: CLIPTowerShape
    /// Input side in pixels.
    public let imageSize: Int
    /// Patch side in pixels.
    public let patchSize: Int
    /// Colour channels.
    public let channels: Int
    /// Length of both towers' projected embeddings.
    public let projectionDimension: Int

    /// Patches per image.
    public var patchCount: Int { (imageSize / patchSize) * (imageSize / patchSize) }

    /// Parses `config.json`.
    /// - Parameter data: The file's bytes.
    /// - Throws: ``CLIPModelError`` for malformed JSON, another architecture or impossible shapes.
    public init(json data: Data) throws {
        let file = "config.json"
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CLIPModelError(file: file, "not a JSON object")
        }
        if let type = root["model_type"] as? String, type != "clip" {
            throw CLIPModelError(file: file, "model_type is \"\(type)\"; only CLIP (\"clip\") models are supported")
        }
        if let architectures = root["architectures"] as? [String], !architectures.contains("CLIPModel") {
            throw CLIPModelError(
                file: file, "architectures are \(architectures); only CLIPModel checkpoints are supported")
        }
        let textKeys = root["text_config"] as? [String: Any] ?? [:]
        let visionKeys = root["vision_config"] as? [String: Any] ?? [:]
        func integer(_ keys: [String: Any], _ key: String, _ fallback: Int, tower: String) throws -> Int {
            guard let value = keys[key] else { return fallback }
            guard let number = value as? NSNumber, number.intValue > 0 || key.hasSuffix("token_id") else {
                throw CLIPModelError(file: file, "\(tower).\(key) must be a positive integer")
            }
            return number.intValue
        }
        func tower(_ keys: [String: Any], name: String, defaults: (Int, Int, Int, Int)) throws -> CLIPTowerShape {
            let activationName = keys["hidden_act"] as? String ?? "quick_gelu"
            guard let activation = CLIPActivation(configured: activationName) else {
                throw CLIPModelError(
                    file: file, "\(name).hidden_act \"\(activationName)\" is not supported (quick_gelu, gelu, gelu_new)"
                )
            }
            let shape = CLIPTowerShape(
                hiddenSize: try integer(keys, "hidden_size", defaults.0, tower: name),
                intermediateSize: try integer(keys, "intermediate_size", defaults.1, tower: name),
                attentionHeads: try integer(keys, "num_attention_heads", defaults.2, tower: name),
                layers: try integer(keys, "num_hidden_layers", defaults.3, tower: name),
                activation: activation,
                layerNormEpsilon: Float((keys["layer_norm_eps"] as? NSNumber)?.doubleValue ?? 1e-5))
            guard shape.hiddenSize % shape.attentionHeads == 0 else {
                throw CLIPModelError(
                    file: file,
                    "\(name).hidden_size \(shape.hiddenSize) is not a multiple of its \(shape.attentionHeads) heads")
            }
            return shape
        }
        self.text = try tower(textKeys, name: "text_config", defaults: (512, 2048, 8, 12))
        self.vocabularySize = try integer(textKeys, "vocab_size", 49408, tower: "text_config")
        self.maxTextLength = try integer(textKeys, "max_position_embeddings", 77, tower: "text_config")
        self.endOfTextTokenID = try integer(textKeys, "eos_token_id", 49407, tower: "text_config")
        self.vision = try tower(visionKeys, name: "vision_config", defaults: (768, 3072, 12, 12))
        self.imageSize = try integer(visionKeys, "image_size", 224, tower: "vision_config")
        self.patchSize = try integer(visionKeys, "patch_size", 32, tower: "vision_config")
        self.channels = try integer(visionKeys, "num_channels", 3, tower: "vision_config")
        self.projectionDimension = try integer(root, "projection_dim", 512, tower: "config")
        guard imageSize % patchSize == 0 else {
            throw CLIPModelError(
                file: file, "vision_config.image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
        guard channels == 3 else { throw CLIPModelError(file: file, "vision_config.num_channels must be 3") }
    }
}

/// `preprocessor_config.json`: how an image becomes the tower's input.
public struct CLIPPreprocessing: Sendable {
    /// How the image is resized before cropping.
    public enum Resize: Sendable, Equatable {
        /// The shorter side to this many pixels, keeping the aspect ratio.
        case shortestEdge(Int)
        /// Exactly this size.
        case exact(height: Int, width: Int)
    }

    /// The resize step, or nil when `do_resize` is false.
    public let resize: Resize?
    /// The resampling filter (PIL numbering: 2 bilinear, 3 bicubic).
    public let resample: Int
    /// The centre crop (height, width), or nil when `do_center_crop` is false.
    public let crop: (height: Int, width: Int)?
    /// The rescale factor (1/255), or nil when `do_rescale` is false.
    public let rescaleFactor: Double?
    /// Per-channel mean and standard deviation, or nil when `do_normalize` is false.
    public let normalization: (mean: [Float], std: [Float])?

    /// Parses `preprocessor_config.json`.
    /// - Parameter data: The file's bytes.
    /// - Throws: ``CLIPModelError`` for malformed or unsupported settings.
    public init(json data: Data) throws {
        let file = "preprocessor_config.json"
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CLIPModelError(file: file, "not a JSON object")
        }
        func flag(_ key: String) -> Bool { (root[key] as? Bool) ?? true }
        func size(_ value: Any?) -> (height: Int, width: Int)? {
            if let side = (value as? NSNumber)?.intValue { return (side, side) }
            guard let keys = value as? [String: Any], let height = (keys["height"] as? NSNumber)?.intValue,
                let width = (keys["width"] as? NSNumber)?.intValue
            else { return nil }
            return (height, width)
        }
        if flag("do_resize") {
            let value = root["size"]
            if let keys = value as? [String: Any], let edge = (keys["shortest_edge"] as? NSNumber)?.intValue, edge > 0 {
                self.resize = .shortestEdge(edge)
            } else if let side = (value as? NSNumber)?.intValue, side > 0 {
                self.resize = .shortestEdge(side)
            } else if let exact = size(value), exact.height > 0, exact.width > 0 {
                self.resize = .exact(height: exact.height, width: exact.width)
            } else {
                throw CLIPModelError(file: file, "size must be {\"shortest_edge\": N} or {\"height\", \"width\"}")
            }
        } else {
            self.resize = nil
        }
        self.resample = (root["resample"] as? NSNumber)?.intValue ?? 3
        guard resample == 2 || resample == 3 else {
            throw CLIPModelError(file: file, "resample \(resample) is not supported (2 bilinear, 3 bicubic)")
        }
        if flag("do_center_crop") {
            guard let crop = size(root["crop_size"] ?? 224), crop.height > 0, crop.width > 0 else {
                throw CLIPModelError(file: file, "crop_size must be N or {\"height\", \"width\"}")
            }
            self.crop = crop
        } else {
            self.crop = nil
        }
        self.rescaleFactor = flag("do_rescale") ? (root["rescale_factor"] as? NSNumber)?.doubleValue ?? 1 / 255 : nil
        if flag("do_normalize") {
            let mean = (root["image_mean"] as? [NSNumber])?.map(\.floatValue) ?? [0.48145466, 0.4578275, 0.40821073]
            let std = (root["image_std"] as? [NSNumber])?.map(\.floatValue) ?? [0.26862954, 0.26130258, 0.27577711]
            guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
                throw CLIPModelError(file: file, "image_mean and image_std need three values (std above zero)")
            }
            self.normalization = (mean, std)
        } else {
            self.normalization = nil
        }
    }
}
