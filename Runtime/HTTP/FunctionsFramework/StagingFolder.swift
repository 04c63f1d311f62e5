import Foundation
import Locking
import NIOPosix

/// A local folder where request bodies are written as they arrive (an upload's file part),
/// before a function decides what to keep. Staged files are local scratch: whatever keeps the
/// bytes afterwards (a blob store) takes them from here.
///
/// Files that a crash left behind are swept when the folder is opened. Every file-system call
/// runs on NIO's blocking-I/O thread pool, never on the Swift concurrency pool that serves requests.
public struct StagingFolder: Sendable {
    /// Staged files older than this are left over from a crash (no upload takes this long) and
    /// are removed when a folder is opened; younger ones may belong to another process's upload.
    public static let abandonedAge: TimeInterval = 3600

    /// The folder.
    public let path: String

    /// Opens a staging folder (made on first use), sweeping files abandoned by a crash.
    /// - Parameters:
    ///   - path: The folder.
    ///   - now: The current time, for the sweep.
    public init(path: String, now: Date = Date()) {
        self.path = path
        sweep(olderThan: now.addingTimeInterval(-Self.abandonedAge))
    }

    /// Removes staged files last written before `date`.
    /// - Parameter date: The cut-off.
    /// - Returns: How many files were removed.
    @discardableResult
    public func sweep(olderThan date: Date) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        var removed = 0
        for name in names {
            let file = (path as NSString).appendingPathComponent(name)
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date,
                modified < date
            else { continue }
            if unlink(file) == 0 { removed += 1 }
        }
        return removed
    }

    /// Creates a new, empty staged file.
    /// - Returns: The file, open for writing.
    /// - Throws: ``StagingError`` when the folder or the file cannot be created.
    public func begin() async throws -> StagedFile {
        let folder = path
        let file = (folder as NSString).appendingPathComponent(UUID().uuidString)
        return try await StagedFile.blocking {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            return try StagedFile(path: file)
        }
    }
}

/// A staged file being written by one request, in order.
public final class StagedFile: Sendable {
    /// Where the bytes are.
    public let path: String
    private let descriptor: Locked<Int32?>

    fileprivate init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StagingError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        self.descriptor = Locked(descriptor)
    }

    /// Appends bytes.
    /// - Parameter bytes: The bytes.
    /// - Throws: ``StagingError`` when the write fails or the file was closed.
    public func write(_ bytes: Data) async throws {
        try await Self.blocking { try self.writeNow(bytes) }
    }

    private func writeNow(_ bytes: Data) throws {
        try descriptor.withLock { descriptor in
            guard let descriptor else { throw StagingError("\(path) is closed") }
            try bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Foundation.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw StagingError("cannot write \(path): \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
        }
    }

    /// Finishes writing: the file is closed and stays where it is. It is scratch, so it is not
    /// flushed here: making the bytes durable is the job of whatever keeps them (a blob store).
    /// - Throws: ``StagingError`` when closing reports a write error.
    public func finish() async throws {
        try await Self.blocking {
            try self.descriptor.withLock { descriptor in
                guard let open = descriptor else { return }
                descriptor = nil
                guard close(open) == 0 else {
                    throw StagingError("cannot close \(self.path): \(String(cString: strerror(errno)))")
                }
            }
        }
    }

    /// Closes the file if open and removes it if it is still there (after a blob store took it,
    /// nothing is left to remove).
    public func remove() async {
        _ = try? await Self.blocking {
            self.descriptor.withLock { descriptor in
                if let open = descriptor { close(open) }
                descriptor = nil
            }
            unlink(self.path)
        }
    }

    /// Runs blocking file-system work on NIO's thread pool for blocking I/O.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}

/// A staged file could not be made, written or flushed.
public struct StagingError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}
