import Foundation

/// Stores image bytes under slash-separated keys. Every write is durable and all or nothing: a
/// reader sees the whole blob under its key or none.
public protocol BlobStore: Sendable {
    /// Stores bytes under a key (replacing any blob there).
    func put(_ data: Data, at key: String) async throws
    /// Stores the bytes of a local file under a key (replacing any blob there). The store may
    /// take the file (move it into place): the caller must not rely on it afterwards, and
    /// removes it if it is still there.
    func put(fileAt path: String, at key: String) async throws
    /// Reads a whole blob, or `nil` when absent.
    func data(at key: String) async throws -> Data?
    /// The size of a blob, or `nil` when absent.
    func size(at key: String) async throws -> Int?
    /// Streams a blob, or part of it, in chunks.
    func read(at key: String, range: Range<Int>?) async throws -> AsyncThrowingStream<Data, any Error>
    /// Removes a blob; absent blobs are not an error.
    func delete(at key: String) async throws
    /// Whether a blob exists.
    func exists(at key: String) async throws -> Bool
}
