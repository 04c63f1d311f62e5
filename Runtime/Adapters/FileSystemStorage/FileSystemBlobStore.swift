import Foundation
import ImageAPICore
import Locking
import NIOCore
import NIOPosix

/// The embedded blob store: one file per blob under a root folder.
///
/// New blobs are written to a staging file (or taken from the caller's local file), flushed to
/// disk (`fsync`) and renamed into place, and the folder is flushed too, so a crash never leaves
/// a partial file under a real key. Staging files that a crash left behind are swept when a
/// store opens, and deleting a blob removes the folders it leaves empty. Every file-system call runs on NIO's blocking-I/O thread
/// pool, never on the Swift concurrency pool that serves requests.
public struct FileSystemBlobStore: BlobStore {
    /// Staging files older than this are left over from a crash (no upload takes this long) and
    /// are removed when a store opens; younger ones may belong to another process's upload.
    public static let abandonedStagingAge: TimeInterval = 3600

    /// The folder blobs live under.
    public let root: URL
    private let chunkSize = 256 * 1024

    /// Opens (and creates) a store, sweeping abandoned staging files.
    /// - Parameters:
    ///   - root: The folder blobs live under.
    ///   - now: The current time, for the sweep.
    public init(root: String, now: Date = Date()) throws {
        self.root = URL(fileURLWithPath: root, isDirectory: true)
        try FileManager.default.createDirectory(at: stagingFolder, withIntermediateDirectories: true)
        sweepStaging(olderThan: now.addingTimeInterval(-Self.abandonedStagingAge))
    }

    /// Removes staging files last written before `date`.
    /// - Parameter date: The cut-off.
    /// - Returns: How many files were removed.
    @discardableResult
    public func sweepStaging(olderThan date: Date) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stagingFolder.path)) ?? []
        var removed = 0
        for name in names {
            let path = stagingFolder.appendingPathComponent(name).path
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                modified < date
            else { continue }
            if unlink(path) == 0 { removed += 1 }
        }
        return removed
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

    /// Writes a blob through a staging file of the store's own: written, flushed, renamed into place.
    public func put(_ data: Data, at key: String, attributes: BlobAttributes) async throws {
        let target = try fileURL(for: key)
        let staging = stagingFolder.appendingPathComponent(UUID().uuidString).path
        try await blocking {
            guard FileManager.default.createFile(atPath: staging, contents: data) else {
                throw BlobStoreError.io("cannot write \(staging): \(String(cString: strerror(errno)))")
            }
            do {
                try Self.flush(staging)
                try Self.moveIntoPlace(staging, target)
            } catch {
                unlink(staging)
                throw error
            }
        }
    }

    /// Takes a local file as a blob: flushed, then renamed into place (copied first when it lies
    /// on another file system).
    public func put(fileAt path: String, at key: String, attributes: BlobAttributes) async throws {
        let target = try fileURL(for: key)
        let staging = stagingFolder.appendingPathComponent(UUID().uuidString).path
        try await blocking {
            try Self.flush(path)
            do {
                try Self.moveIntoPlace(path, target)
            } catch BlobStoreError.crossDevice {
                do {
                    try FileManager.default.copyItem(atPath: path, toPath: staging)
                    try Self.flush(staging)
                    try Self.moveIntoPlace(staging, target)
                } catch {
                    unlink(staging)
                    throw error
                }
                unlink(path)
            }
        }
    }

    /// Flushes a file's bytes to disk.
    static func flush(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw BlobStoreError.io("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw BlobStoreError.io("cannot flush \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Renames a flushed file to its key's place and flushes the folder.
    static func moveIntoPlace(_ path: String, _ target: URL) throws {
        let folder = target.deletingLastPathComponent()
        // A delete may remove the folder between its creation and the rename: create it again.
        var attempts = 0
        while true {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            if rename(path, target.path) == 0 { break }
            if errno == EXDEV { throw BlobStoreError.crossDevice }
            attempts += 1
            guard errno == ENOENT, attempts < 5 else {
                throw BlobStoreError.io("cannot move blob into place: \(String(cString: strerror(errno)))")
            }
        }
        syncFolder(folder.path)
    }

    /// Reads a whole blob.
    public func data(at key: String) async throws -> Data? {
        let url = try fileURL(for: key)
        return try await blocking {
            do {
                return try Data(contentsOf: url)
            } catch CocoaError.fileReadNoSuchFile {
                return nil
            }
        }
    }

    /// The size of a blob.
    public func size(at key: String) async throws -> Int? {
        let path = try fileURL(for: key).path
        return try await blocking {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            return (attributes?[.size] as? NSNumber)?.intValue
        }
    }

    /// Streams a blob in chunks, optionally one byte range of it.
    public func read(at key: String, range: Range<Int>?) async throws -> AsyncThrowingStream<Data, any Error> {
        let url = try fileURL(for: key)
        let chunkSize = chunkSize
        let reader = try await blocking {
            let handle = try FileHandle(forReadingFrom: url)
            if let range { try handle.seek(toOffset: UInt64(range.lowerBound)) }
            return ChunkReader(handle: handle, remaining: range?.count ?? Int.max, chunkSize: chunkSize)
        }
        return AsyncThrowingStream { () async throws -> Data? in try await blocking { try reader.next() } }
    }

    /// Removes a blob, then the folders it leaves empty (up to the root), and flushes them.
    public func delete(at key: String) async throws {
        let url = try fileURL(for: key)
        let root = root
        try await blocking {
            guard unlink(url.path) == 0 || errno == ENOENT else {
                throw BlobStoreError.io("cannot delete \(key): \(String(cString: strerror(errno)))")
            }
            var folder = url.deletingLastPathComponent()
            // rmdir refuses a folder that is not empty, which ends the climb.
            while folder.path.count > root.path.count, rmdir(folder.path) == 0 {
                folder = folder.deletingLastPathComponent()
            }
            Self.syncFolder(folder.path)
        }
    }

    /// Whether a blob exists.
    public func exists(at key: String) async throws -> Bool {
        let path = try fileURL(for: key).path
        return try await blocking { FileManager.default.fileExists(atPath: path) }
    }

    /// The files under the prefix's folder whose keys start with it, with their modification
    /// times (the staging folder and other hidden names are no blobs).
    public func blobs(under prefix: String) async throws -> [StoredBlob] {
        let folder = prefix.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let start = folder.isEmpty ? root : try fileURL(for: folder)
        let rootPath = root.standardizedFileURL.path
        return try await blocking {
            guard
                let files = FileManager.default.enumerator(
                    at: start, includingPropertiesForKeys: [.contentModificationDateKey, .isRegularFileKey],
                    options: [.skipsHiddenFiles])
            else { return [] }
            var found: [StoredBlob] = []
            for case let file as URL in files {
                let values = try file.resourceValues(forKeys: [.contentModificationDateKey, .isRegularFileKey])
                guard values.isRegularFile == true else { continue }
                let key = String(file.standardizedFileURL.path.dropFirst(rootPath.count + 1))
                guard key.hasPrefix(prefix) else { continue }
                found.append(StoredBlob(key: key, written: values.contentModificationDate ?? .distantPast))
            }
            return found
        }
    }

    static func syncFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}

/// Runs blocking file-system work on NIO's thread pool for blocking I/O.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(body)
}

/// Errors of the filesystem blob store.
public enum BlobStoreError: Error, Equatable, CustomStringConvertible {
    /// A key that is not a plain relative path.
    case invalidKey(String)
    /// A filesystem call failed.
    case io(String)
    /// A rename across file systems, which the store answers by copying.
    case crossDevice

    /// A readable explanation.
    public var description: String {
        switch self {
        case .invalidKey(let key): "invalid blob key '\(key)'"
        case .io(let reason): reason
        case .crossDevice: "the file lies on another file system"
        }
    }
}

/// Reads a file in chunks for a stream, closing it at the end.
final class ChunkReader: Sendable {
    private struct State {
        var handle: FileHandle?
        var remaining: Int
    }
    private let state: Locked<State>
    private let chunkSize: Int

    init(handle: FileHandle, remaining: Int, chunkSize: Int) {
        state = Locked(State(handle: handle, remaining: remaining))
        self.chunkSize = chunkSize
    }

    /// The next chunk, or `nil` (and the file closed) at the end.
    func next() throws -> Data? {
        try state.withLock { state in
            guard let handle = state.handle else { return nil }
            guard state.remaining > 0, let chunk = try handle.read(upToCount: min(chunkSize, state.remaining)),
                !chunk.isEmpty
            else {
                try? handle.close()
                state.handle = nil
                return nil
            }
            state.remaining -= chunk.count
            return chunk
        }
    }
}
