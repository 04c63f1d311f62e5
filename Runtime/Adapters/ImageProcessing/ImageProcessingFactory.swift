import Foundation
import ImageAPICore
import Locking

/// Builds the libvips adapters for a host: the codec behind ``ImageCodec`` and the
/// visual-features embedder, sharing one decode-memory budget per process (`DECODE_MEMORY_MB`).
public enum ImageProcessingFactory {
    /// The process's one decode-memory budget, made on first use.
    private static let budget = Locked<DecodeMemoryBudget?>(nil)

    private static func sharedBudget(megabytes: Int) -> DecodeMemoryBudget {
        budget.withLock { budget in
            if let budget { return budget }
            let made = DecodeMemoryBudget(capacity: megabytes << 20)
            budget = made
            return made
        }
    }

    /// The libvips codec with the process's decode-memory budget, shared by uploads, thumbnails
    /// and the visual-features embedder.
    /// - Parameter decodeMemoryMegabytes: The budget's size, for the first call of the process.
    /// - Returns: The codec.
    public static func codec(decodeMemoryMegabytes: Int) -> any ImageCodec {
        VipsImageCodec(memoryBudget: sharedBudget(megabytes: decodeMemoryMegabytes))
    }

    /// The visual-features embedder (image similarity only), on the shared codec.
    /// - Parameter decodeMemoryMegabytes: The budget's size, for the first call of the process.
    /// - Returns: The embedder.
    public static func visualEmbedder(decodeMemoryMegabytes: Int) -> any Embedder {
        VisualFeaturesEmbedder(codec: VipsImageCodec(memoryBudget: sharedBudget(megabytes: decodeMemoryMegabytes)))
    }
}
