import Foundation

/// Image metadata, every read and write scoped to a team.
///
/// Writes that must be published (an upload) take the message to publish and write it in the
/// same transaction as the metadata: a transactional outbox.
public protocol ImageRepository: Sendable {
    /// Stores a new image and its processing message in one transaction. Unless
    /// `allowDuplicate`, the team may hold no other image with the same SHA-256: the check and
    /// the insert are one step (a unique index on team and digest), so of concurrent uploads of
    /// the same bytes exactly one is stored.
    /// - Throws: ``DuplicateImageError`` naming the image that already has these bytes.
    func insertImage(_ image: ImageRecord, publishing message: OutboxMessage, allowDuplicate: Bool) async throws
    /// One of a team's images.
    func image(id: ImageID, teamID: TeamID) async throws -> ImageRecord?
    /// A team's images by id, in no particular order; unknown ids are left out.
    func images(ids: [ImageID], teamID: TeamID) async throws -> [ImageRecord]
    /// A page of a team's images, newest first.
    func images(teamID: TeamID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord>
    /// A team's image with these exact bytes, if one exists.
    func image(sha256: String, teamID: TeamID) async throws -> ImageRecord?
    /// Replaces the editable fields (description, tags, collection, updated-at). False when absent.
    func updateImage(_ image: ImageRecord) async throws -> Bool
    /// The perceptual hashes of a team's images, in no particular order (images not yet hashed
    /// left out).
    func perceptualHashes(teamID: TeamID) async throws -> [HashedImage]
    /// Deletes an image's metadata and returns what was deleted.
    func deleteImage(id: ImageID, teamID: TeamID) async throws -> ImageRecord?
}
