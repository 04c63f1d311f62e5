import EmbeddedVectorIndex
import FileSystemStorage
import Foundation
import FunctionHosting
import ImageAPICore
import RuntimeSupport
import SQLiteStorage

/// Backups of the embedded defaults (`METADATA_BACKEND=sqlite`, `BLOB_BACKEND=filesystem`,
/// `VECTOR_BACKEND=embedded`), taken while the emulator serves, and restored into an empty data
/// folder. A backup folder has the layout of a data folder (`imagedb.sqlite`, `blobs/`) and a
/// `backup.json` saying what it holds.
public enum EmbeddedBackup {
    /// Why a backup or a restore cannot be made; the command says it in one line.
    public struct Refusal: Error, CustomStringConvertible {
        /// What is wrong.
        public let description: String
    }

    /// The file that marks a backup folder and says what it holds.
    public static let manifest = "backup.json"

    /// Backs the data folder up into `folder` (new, or empty): a consistent copy of the database
    /// (metadata, outbox and vectors) by SQLite's online backup, then the originals and thumbnails
    /// every image of that copy names.
    /// - Parameters:
    ///   - configuration: The process's configuration: which data folder.
    ///   - folder: Where the backup goes.
    ///   - progress: Called with the report after each image.
    /// - Returns: What the backup holds.
    /// - Throws: ``Refusal`` for other backends or a folder that holds something; the stores' errors.
    public static func backUp(
        _ configuration: HostConfiguration, into folder: String, progress: (BackupReport) -> Void = { _ in }
    ) async throws -> BackupReport {
        try requireEmbeddedBackends(configuration)
        let database = EmbeddedDataPaths(configuration.variables).database
        guard FileManager.default.fileExists(atPath: database) else {
            throw Refusal(description: "there is no database at \(database): nothing to back up (is DATA_DIR right?)")
        }
        try requireEmpty(folder, what: "the backup folder")
        let target = EnvironmentVariables(["DATA_DIR": folder])
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try SQLiteStorageFactory.snapshot(of: configuration.variables, to: EmbeddedDataPaths(target).database)
        let copy = try SQLiteStorageFactory.build(from: target).adapter
        let vectors = try EmbeddedVectorIndexFactory.build(from: target).adapter
        let backup = LibraryBackup(
            teams: copy, images: copy, vectors: vectors,
            source: try FileSystemStorageFactory.build(from: configuration.variables).adapter,
            destination: try FileSystemStorageFactory.build(from: target).adapter)
        let report = try await backup.copyBytes(progress: progress)
        let manifest = try JSONCoding.makeEncoder().encode(report)
        try manifest.write(to: URL(fileURLWithPath: folder).appendingPathComponent(Self.manifest))
        return report
    }

    /// Restores a backup into the data folder, which must hold no data yet.
    /// - Parameters:
    ///   - folder: The backup.
    ///   - configuration: The process's configuration: which data folder.
    /// - Returns: What the backup holds, as its manifest says.
    /// - Throws: ``Refusal`` for a folder that is no backup, other backends, or a data folder that
    ///   holds data; the file system's errors.
    public static func restore(from folder: String, into configuration: HostConfiguration) throws -> BackupReport {
        try requireEmbeddedBackends(configuration)
        let manifestURL = URL(fileURLWithPath: folder).appendingPathComponent(Self.manifest)
        guard let manifest = try? Data(contentsOf: manifestURL),
            let report = try? JSONCoding.makeDecoder().decode(BackupReport.self, from: manifest)
        else {
            throw Refusal(description: "\(folder) is not a backup (it has no readable \(Self.manifest))")
        }
        let source = EmbeddedDataPaths(EnvironmentVariables(["DATA_DIR": folder]))
        let target = EmbeddedDataPaths(configuration.variables)
        let files = FileManager.default
        if files.fileExists(atPath: target.database) {
            throw Refusal(description: "\(target.database) exists: restore into a data folder that holds no data")
        }
        try requireEmpty(target.blobs, what: "the blob folder")
        try files.createDirectory(
            atPath: (target.database as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try files.copyItem(atPath: source.database, toPath: target.database)
        if files.fileExists(atPath: target.blobs) { try files.removeItem(atPath: target.blobs) }
        try files.createDirectory(
            atPath: (target.blobs as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try files.copyItem(atPath: source.blobs, toPath: target.blobs)
        return report
    }

    private static func requireEmbeddedBackends(_ configuration: HostConfiguration) throws {
        let backends = configuration.backends
        guard backends.metadata == .sqlite, backends.blobs == .filesystem, backends.vectors == .embedded else {
            throw Refusal(
                description: """
                    backup and restore serve the embedded defaults (METADATA_BACKEND=sqlite, BLOB_BACKEND=filesystem, \
                    VECTOR_BACKEND=embedded); docs/operations.md says how to back up the others
                    """)
        }
    }

    private static func requireEmpty(_ folder: String, what: String) throws {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        guard entries.isEmpty else { throw Refusal(description: "\(what) \(folder) is not empty") }
    }
}
