import Foundation
import ImageAPICore

/// Blobs in one actor's memory. Not durable; for tests and demos (`BLOB_BACKEND=memory`).
public actor MemoryBlobStore: BlobStore {
    private var blobs: [String: Data] = [:]
    private var written: [String: Date] = [:]
    private let chunkSize: Int

    /// Creates an empty store.
    /// - Parameter chunkSize: The size of the chunks `read` streams.
    public init(chunkSize: Int = 256 * 1024) {
        self.chunkSize = max(1, chunkSize)
    }

    /// Every key that holds a blob, sorted (what a test checks is all that is left).
    public var keys: [String] { blobs.keys.sorted() }

    /// Stores bytes under a key.
    public func put(_ data: Data, at key: String, attributes: BlobAttributes) async throws {
        blobs[key] = data
        written[key] = Date()
    }

    /// Reads a local file into memory under a key (the file is left where it is).
    public func put(fileAt path: String, at key: String, attributes: BlobAttributes) async throws {
        blobs[key] = try Data(contentsOf: URL(fileURLWithPath: path))
        written[key] = Date()
    }

    /// Reads a whole blob.
    public func data(at key: String) async throws -> Data? {
        blobs[key]
    }

    /// The size of a blob.
    public func size(at key: String) async throws -> Int? {
        blobs[key]?.count
    }

    /// Streams a blob, or a range of it, in chunks.
    public func read(at key: String, range: Range<Int>?) async throws -> AsyncThrowingStream<Data, any Error> {
        let data = blobs[key] ?? Data()
        let bytes = range.map { data.subdata(in: $0.clamped(to: 0..<data.count)) } ?? data
        let chunkSize = chunkSize
        return AsyncThrowingStream { continuation in
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + chunkSize, bytes.count)
                continuation.yield(bytes.subdata(in: offset..<end))
                offset = end
            }
            continuation.finish()
        }
    }

    /// Removes a blob.
    public func delete(at key: String) async throws {
        blobs[key] = nil
        written[key] = nil
    }

    /// The blobs under a prefix, with when each was put.
    public func blobs(under prefix: String) async throws -> [StoredBlob] {
        blobs.keys.filter { $0.hasPrefix(prefix) }.map { StoredBlob(key: $0, written: written[$0] ?? .distantPast) }
    }

    /// Whether a blob exists.
    public func exists(at key: String) async throws -> Bool {
        blobs[key] != nil
    }
}
