import Foundation

/// Stores image bytes under slash-separated keys.
public protocol BlobStore: Sendable {
    /// Begins a new blob: bytes are appended to a staging area and only appear under the key
    /// when ``BlobUpload/commit(as:)`` is called.
    func beginUpload() async throws -> any BlobUpload
    /// Stores bytes under a key at once (replacing any blob there).
    func put(_ data: Data, at key: String) async throws
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

/// A blob being written.
public protocol BlobUpload: Sendable {
    /// Appends bytes.
    func write(_ bytes: Data) async throws
    /// A local file holding the bytes written so far, for decoders that read files.
    var stagingPath: String { get }
    /// Makes the blob durable and visible under `key`.
    func commit(as key: String) async throws
    /// Throws the staged bytes away.
    func abandon() async
}
