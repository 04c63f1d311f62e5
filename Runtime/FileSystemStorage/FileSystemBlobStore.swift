import Foundation
import ImageAPICore
import NIOCore

/// The embedded blob store: one file per blob under a root folder.
///
/// New blobs are written to a staging file, flushed to disk (`fsync`) and renamed into place,
/// and the folder is flushed too, so a crash never leaves a partial file under a real key.
public struct FileSystemBlobStore: BlobStore {
    /// The folder blobs live under.
    public let root: URL
    private let chunkSize = 256 * 1024

    /// Opens (and creates) a store.
    /// - Parameter root: The folder blobs live under.
    public init(root: String) throws {
        self.root = URL(fileURLWithPath: root, isDirectory: true)
        try FileManager.default.createDirectory(at: stagingFolder, withIntermediateDirectories: true)
    }

    private var stagingFolder: URL { root.appendingPathComponent(".staging", isDirectory: true) }

    /// The file that holds a key's blob.
    /// - Throws: When the key could escape the root (empty, absolute, `.` or `..` segments).
    public func fileURL(for key: String) throws -> URL {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !segments.isEmpty,
            segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.hasPrefix(".") })
        else { throw BlobStoreError.invalidKey(key) }
        return root.appendingPathComponent(key)
    }

    /// Starts a staged upload.
    public func beginUpload() async throws -> any BlobUpload {
        try StagedFile(path: stagingFolder.appendingPathComponent(UUID().uuidString).path, store: self)
    }

    /// Writes a blob through a staged file.
    public func put(_ data: Data, at key: String) async throws {
        let upload = try await beginUpload()
        do {
            try await upload.write(ByteBuffer(bytes: data))
            try await upload.commit(as: key)
        } catch {
            await upload.abandon()
            throw error
        }
    }

    /// Reads a whole blob.
    public func data(at key: String) async throws -> Data? {
        let url = try fileURL(for: key)
        do {
            return try Data(contentsOf: url)
        } catch CocoaError.fileReadNoSuchFile {
            return nil
        }
    }

    /// The size of a blob.
    public func size(at key: String) async throws -> Int? {
        let attributes = try? FileManager.default.attributesOfItem(atPath: try fileURL(for: key).path)
        return (attributes?[.size] as? NSNumber)?.intValue
    }

    /// Streams a blob in chunks, optionally one byte range of it.
    public func read(at key: String, range: Range<Int>?) async throws -> AsyncThrowingStream<ByteBuffer, any Error> {
        let handle = try FileHandle(forReadingFrom: try fileURL(for: key))
        let chunkSize = self.chunkSize
        var remaining = range?.count ?? Int.max
        if let range { try handle.seek(toOffset: UInt64(range.lowerBound)) }
        return AsyncThrowingStream { () async throws -> ByteBuffer? in
            guard remaining > 0 else {
                try? handle.close()
                return nil
            }
            guard let chunk = try handle.read(upToCount: min(chunkSize, remaining)), !chunk.isEmpty else {
                try? handle.close()
                return nil
            }
            remaining -= chunk.count
            return ByteBuffer(bytes: chunk)
        }
    }

    /// Removes a blob and flushes its folder.
    public func delete(at key: String) async throws {
        let url = try fileURL(for: key)
        guard unlink(url.path) == 0 || errno == ENOENT else {
            throw BlobStoreError.io("cannot delete \(key): \(String(cString: strerror(errno)))")
        }
        Self.syncFolder(url.deletingLastPathComponent().path)
    }

    /// Whether a blob exists.
    public func exists(at key: String) async throws -> Bool {
        FileManager.default.fileExists(atPath: try fileURL(for: key).path)
    }

    static func syncFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}

/// Errors of the filesystem blob store.
public enum BlobStoreError: Error, Equatable, CustomStringConvertible {
    /// A key that is not a plain relative path.
    case invalidKey(String)
    /// A filesystem call failed.
    case io(String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case .invalidKey(let key): "invalid blob key '\(key)'"
        case .io(let reason): reason
        }
    }
}

/// A staging file being written; committed by fsync and rename.
final class StagedFile: BlobUpload, @unchecked Sendable {
    let stagingPath: String
    private let store: FileSystemBlobStore
    private let descriptor: Int32
    // One writer at a time: a request body is written sequentially by its handler.
    private let lock = NSLock()
    private var closed = false

    init(path: String, store: FileSystemBlobStore) throws {
        self.stagingPath = path
        self.store = store
        self.descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw BlobStoreError.io("cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    func write(_ bytes: ByteBuffer) async throws {
        try lock.withLock {
            try bytes.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Foundation.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw BlobStoreError.io("cannot write \(stagingPath): \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
        }
    }

    func commit(as key: String) async throws {
        let target = try store.fileURL(for: key)
        try lock.withLock {
            guard !closed else { throw BlobStoreError.io("upload already finished") }
            closed = true
            guard fsync(descriptor) == 0 else {
                close(descriptor)
                throw BlobStoreError.io("cannot flush \(stagingPath): \(String(cString: strerror(errno)))")
            }
            close(descriptor)
        }
        let folder = target.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        guard rename(stagingPath, target.path) == 0 else {
            throw BlobStoreError.io("cannot move blob into place: \(String(cString: strerror(errno)))")
        }
        FileSystemBlobStore.syncFolder(folder.path)
    }

    func abandon() async {
        lock.withLock {
            if !closed {
                closed = true
                close(descriptor)
            }
        }
        unlink(stagingPath)
    }

    deinit {
        if !closed {
            close(descriptor)
            unlink(stagingPath)
        }
    }
}
