import Foundation

/// Stores image bytes under slash-separated keys. Every write is durable and all or nothing: a
/// reader sees the whole blob under its key or none.
public protocol BlobStore: Sendable {
    /// Stores bytes under a key (replacing any blob there), with what the store keeps beside them.
    func put(_ data: Data, at key: String, attributes: BlobAttributes) async throws
    /// Stores the bytes of a local file under a key (replacing any blob there). The store may
    /// take the file (move it into place): the caller must not rely on it afterwards, and
    /// removes it if it is still there.
    func put(fileAt path: String, at key: String, attributes: BlobAttributes) async throws
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
    /// Every blob whose key starts with `prefix`, with when it was written, in no set order.
    func blobs(under prefix: String) async throws -> [StoredBlob]
    /// A short-lived URL from which a client downloads the blob itself, without credentials
    /// (Cloud Storage's signed URLs), or `nil` when the store cannot make one: the blob is then
    /// served through the API.
    /// - Parameters:
    ///   - key: The blob's key.
    ///   - contentDisposition: The `Content-Disposition` the download should answer with.
    func downloadURL(at key: String, contentDisposition: String?) async throws -> URL?
}

/// A blob as a listing names it.
public struct StoredBlob: Sendable, Equatable {
    /// Its key.
    public let key: String
    /// When it was last written.
    public let written: Date

    /// Describes a blob.
    public init(key: String, written: Date) {
        self.key = key
        self.written = written
    }
}

extension BlobStore {
    /// No direct downloads: the default of stores that only the API can read.
    public func downloadURL(at key: String, contentDisposition: String?) async throws -> URL? { nil }

    /// Stores bytes under a key, with no attributes.
    public func put(_ data: Data, at key: String) async throws {
        try await put(data, at: key, attributes: BlobAttributes())
    }

    /// Stores the bytes of a local file under a key, with no attributes.
    public func put(fileAt path: String, at key: String) async throws {
        try await put(fileAt: path, at: key, attributes: BlobAttributes())
    }
}

/// What a blob store may keep beside a blob's bytes, for those who read the store directly (an
/// operator browsing a bucket, a signed download): Cloud Storage keeps both as the object's
/// content type and metadata. The file-system and memory stores keep neither; the image record
/// holds both in any case.
public struct BlobAttributes: Sendable, Equatable {
    /// The media type (`image/jpeg`).
    public var contentType: String?
    /// The SHA-256 of the bytes, in lower-case hexadecimal.
    public var sha256: String?

    /// Creates attributes.
    public init(contentType: String? = nil, sha256: String? = nil) {
        self.contentType = contentType
        self.sha256 = sha256
    }
}
