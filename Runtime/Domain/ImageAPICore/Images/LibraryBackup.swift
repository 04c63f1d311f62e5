import Foundation

/// What a backup holds.
public struct BackupReport: Codable, Sendable, Equatable {
    /// Images the backup names, with their bytes.
    public var images = 0
    /// Originals copied.
    public var originals = 0
    /// Thumbnails copied (an image not yet processed has none: it is processed after a restore).
    public var thumbnails = 0
    /// Images left out because their original was deleted while the backup ran.
    public var dropped = 0
    /// Bytes of the originals and thumbnails copied.
    public var bytes = 0

    /// An empty report.
    public init() {}
}

/// The use case of completing a backup from a consistent copy of the metadata: the bytes every
/// image of that copy needs are copied from the live blob store, and an image whose original is
/// gone by the time it is copied (deleted while the backup ran) is taken out of the copy, with
/// its vector, so that the backup names nothing it does not hold. Bytes come before metadata on
/// upload, so every image the copy names had its original when the copy was taken.
public struct LibraryBackup: Sendable {
    private let teams: any TeamStore
    private let images: any ImageStore
    private let vectors: any VectorIndex
    private let source: any BlobStore
    private let destination: any BlobStore

    /// Describes a backup.
    /// - Parameters:
    ///   - teams: The copy's teams.
    ///   - images: The copy's images.
    ///   - vectors: The copy's vectors.
    ///   - source: The live blob store.
    ///   - destination: The backup's blob store.
    public init(
        teams: any TeamStore, images: any ImageStore, vectors: any VectorIndex, source: any BlobStore,
        destination: any BlobStore
    ) {
        self.teams = teams
        self.images = images
        self.vectors = vectors
        self.source = source
        self.destination = destination
    }

    /// Copies the bytes of every image the copy names.
    /// - Parameter progress: Called after each image with the report so far.
    /// - Returns: What the backup holds.
    /// - Throws: The stores' errors.
    public func copyBytes(progress: (BackupReport) -> Void = { _ in }) async throws -> BackupReport {
        var report = BackupReport()
        var teamPage = 0
        while true {
            let page = try await teams.teams(PageRequest(skip: teamPage, limit: PageRequest.maximumLimit))
            for team in page.items {
                try await copyTeam(team.id, into: &report, progress: progress)
            }
            teamPage += page.items.count
            if page.items.isEmpty { break }
        }
        return report
    }

    private func copyTeam(
        _ team: TeamID, into report: inout BackupReport, progress: (BackupReport) -> Void
    ) async throws {
        var skip = 0
        while true {
            let page = try await images.images(
                teamID: team, filter: ImageFilter(), PageRequest(skip: skip, limit: PageRequest.maximumLimit))
            var dropped = 0
            for image in page.items {
                guard let original = try await source.data(at: image.originalBlobKey) else {
                    // Deleted since the copy was taken: the backup does not name it either.
                    _ = try await images.deleteImage(id: image.id, teamID: team)
                    try await vectors.delete(imageID: image.id)
                    report.dropped += 1
                    dropped += 1
                    continue
                }
                try await destination.put(
                    original, at: image.originalBlobKey,
                    attributes: BlobAttributes(contentType: image.contentType, sha256: image.sha256))
                report.originals += 1
                report.bytes += original.count
                if let thumbnail = try await source.data(at: image.thumbnailBlobKey) {
                    try await destination.put(
                        thumbnail, at: image.thumbnailBlobKey, attributes: BlobAttributes(contentType: "image/jpeg"))
                    report.thumbnails += 1
                    report.bytes += thumbnail.count
                }
                report.images += 1
                progress(report)
            }
            // Dropped images leave the listing: the next page starts that many earlier.
            skip += page.items.count - dropped
            if page.items.isEmpty { break }
        }
    }
}
