import CLIPInference
import Foundation
import ImageAPICore
import Logging

/// Builds the CLIP engine behind the embedder port for a host.
public enum CLIPEmbedderFactory {
    /// Whether a folder looks like a CLIP model (its weights, configuration and vocabulary).
    /// - Parameter directory: The folder.
    /// - Returns: `true` when the model's files are there.
    public static func looksLikeModel(_ directory: URL) -> Bool {
        CLIPModelFiles.looksLikeModel(directory)
    }

    /// Loads the model in a folder.
    /// - Parameters:
    ///   - directory: The model's folder.
    ///   - threads: The inference threads.
    ///   - maxPixels: The largest image decoded.
    ///   - logger: Where the load is reported.
    /// - Returns: The embedder.
    /// - Throws: `CLIPModelError` when the folder holds no usable model.
    public static func build(directory: URL, threads: Int, maxPixels: Int, logger: Logger) throws -> any Embedder {
        try CLIPEmbedder(directory: directory, threads: threads, maxPixels: maxPixels, logger: logger)
    }
}
