import Foundation

/// A change to one editable field of an image: keep what is there, or set it (`nil` clears it).
public enum FieldChange<Value: Sendable & Equatable>: Sendable, Equatable {
    /// Leave the field as it is.
    case keep
    /// Set the field; `nil` clears it.
    case set(Value?)
}

/// The changes asked of an image's editable fields, already checked as input.
public struct ImageChanges: Sendable, Equatable {
    /// The new description.
    public var description: FieldChange<String>
    /// The new tags (`nil` clears them).
    public var tags: FieldChange<[String]>
    /// The new collection.
    public var collectionID: FieldChange<UUID>

    /// Describes the changes.
    /// - Parameters:
    ///   - description: The new description.
    ///   - tags: The new tags.
    ///   - collectionID: The new collection.
    public init(
        description: FieldChange<String> = .keep, tags: FieldChange<[String]> = .keep,
        collectionID: FieldChange<UUID> = .keep
    ) {
        self.description = description
        self.tags = tags
        self.collectionID = collectionID
    }
}

/// What became of a change to an image.
public enum ImageUpdateOutcome: Sendable, Equatable {
    /// The image as changed.
    case updated(ImageRecord)
    /// No such image in the team.
    case notFound
    /// The new `collection_id` names none of the team's collections.
    case unknownCollection(UUID)
}

/// Which images `reprocess-all` queues.
public enum ReprocessScope: String, Codable, Sendable {
    /// Images embedded with another model, and failed ones.
    case stale
    /// Every embedded or failed image.
    case all
}

/// What became of a request to process one image again.
public enum ReprocessOutcome: Sendable, Equatable {
    /// The image is `pending` again and its processing message is in the outbox.
    case queued(ImageRecord)
    /// The image is already queued or being processed.
    case alreadyQueued(EmbeddingStatus)
    /// No such image in the team.
    case notFound
}

/// What `reprocess-all` did: how many images it queued, and where the team stands now.
public struct ReprocessAllResult: Sendable, Equatable {
    /// The images queued.
    public let queued: Int
    /// The team's images counted by embedding state against the current model.
    public let progress: EmbeddingSummary
}

/// The use cases of a team's stored images: read, change, delete and process again, each keeping
/// the metadata, the vector index and the blob store consistent.
public struct ImageLibrary: Sendable {
    private let images: ImageServices
    private let clock: any TimeSource

    /// Creates the service.
    /// - Parameters:
    ///   - images: The image pipeline's ports and settings.
    ///   - clock: Where `updated_at` and queueing times come from.
    public init(images: ImageServices, clock: any TimeSource) {
        self.images = images
        self.clock = clock
    }

    /// One of the team's images, or `nil`.
    /// - Parameters:
    ///   - id: The image.
    ///   - teamID: The caller's team.
    /// - Returns: The image, if the team has it.
    public func image(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await images.store.image(id: id, teamID: teamID)
    }

    /// A page of the team's images, newest first.
    /// - Parameters:
    ///   - teamID: The caller's team.
    ///   - filter: Which images.
    ///   - page: Which page.
    /// - Returns: The page and the total.
    public func images(teamID: TeamID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord> {
        try await images.store.images(teamID: teamID, filter: filter, page)
    }

    /// Changes an image's editable fields; the vector index learns a new collection or new tags,
    /// by which searches filter. An image moves only into one of the team's named collections
    /// (the label it already carries stays, named or not).
    /// - Parameters:
    ///   - id: The image.
    ///   - teamID: The caller's team.
    ///   - changes: The changes.
    /// - Returns: What happened.
    public func update(id: ImageID, teamID: TeamID, _ changes: ImageChanges) async throws -> ImageUpdateOutcome {
        guard var image = try await images.store.image(id: id, teamID: teamID) else { return .notFound }
        let before = (collection: image.collectionID, tags: image.tags)
        if case .set(let collection?) = changes.collectionID, collection != before.collection,
            try await images.store.collection(id: collection, teamID: teamID) == nil
        {
            return .unknownCollection(collection)
        }
        if case .set(let description) = changes.description { image.description = description }
        if case .set(let tags) = changes.tags { image.tags = tags ?? [] }
        if case .set(let collection) = changes.collectionID { image.collectionID = collection }
        image.updatedAt = clock.now()
        guard try await images.store.updateImage(image) else { return .notFound }
        if image.collectionID != before.collection || image.tags != before.tags {
            try await images.vectors.updatePayload(
                imageID: image.id, collectionID: image.collectionID, tags: image.tags)
        }
        return .updated(image)
    }

    /// Deletes an image: its metadata first (from then on it is gone for every reader), then its
    /// vector, thumbnail and original.
    /// - Parameters:
    ///   - id: The image.
    ///   - teamID: The caller's team.
    /// - Returns: The deleted image, or `nil` when the team has no such image.
    public func delete(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        guard let image = try await images.store.deleteImage(id: id, teamID: teamID) else { return nil }
        try await images.vectors.delete(imageID: image.id)
        try await images.blobs.delete(at: image.thumbnailBlobKey)
        try await images.blobs.delete(at: image.originalBlobKey)
        return image
    }

    /// Queues a processed (or failed) image for processing again, with no attempts spent.
    /// - Parameters:
    ///   - id: The image.
    ///   - teamID: The caller's team.
    /// - Returns: What happened.
    public func reprocess(id: ImageID, teamID: TeamID) async throws -> ReprocessOutcome {
        guard let image = try await images.store.image(id: id, teamID: teamID) else { return .notFound }
        guard image.embeddingStatus == .failed || image.embeddingStatus == .success else {
            return .alreadyQueued(image.embeddingStatus)
        }
        let message = OutboxMessage.processing(
            ImageProcessingRequest(imageID: image.id, teamID: image.teamID, reason: "reprocess"))
        guard
            let requeued = try await images.store.requeueImage(
                id: image.id, teamID: teamID, at: clock.now(), publishing: message)
        else { return .notFound }
        return .queued(requeued)
    }

    /// Queues the team's images for embedding with the current model, through the same outbox as
    /// uploads: `stale` takes images embedded with another model and failed ones; `all` also those
    /// that are current. Queued and in-progress images are left alone.
    /// - Parameters:
    ///   - teamID: The team.
    ///   - scope: Which images.
    /// - Returns: How many were queued, and the team's progress.
    public func reprocessAll(teamID: TeamID, scope: ReprocessScope) async throws -> ReprocessAllResult {
        let queued = try await images.store.requeueImages(
            teamID: teamID, notEmbeddedWith: images.embedder.modelID, includeCurrent: scope == .all,
            reason: "reprocess-all", at: clock.now())
        return ReprocessAllResult(queued: queued, progress: try await progress(teamID: teamID))
    }

    /// The team's images counted by embedding state against the current model; re-embedding is
    /// done when `current + failed == total`.
    /// - Parameter teamID: The team.
    /// - Returns: The counts.
    public func progress(teamID: TeamID) async throws -> EmbeddingSummary {
        try await images.store.embeddingSummary(teamID: teamID, model: images.embedder.modelID)
    }

    /// Removes the blobs of images that have no record: those of an upload whose process died
    /// between storing its bytes and committing its record, or whose commit met an unavailable
    /// store and never landed, or of a delete that died between removing the record and the bytes. Only blobs written before `cutoff` are looked at, so that
    /// an upload still on its way to its commit is left alone.
    /// - Parameter cutoff: Blobs written since are kept.
    /// - Returns: How many blobs were removed.
    public func removeOrphanBlobs(writtenBefore cutoff: Date) async throws -> Int {
        var candidates: [TeamID: [ImageID: [String]]] = [:]
        for blob in try await images.blobs.blobs(under: "teams/") where blob.written < cutoff {
            // teams/<team>/images/<image>/<name>
            let parts = blob.key.split(separator: "/")
            guard parts.count == 5, parts[2] == "images", let team = TeamID(String(parts[1])),
                let image = ImageID(String(parts[3]))
            else { continue }
            candidates[team, default: [:]][image, default: []].append(blob.key)
        }
        var removed = 0
        for (team, blobsByImage) in candidates {
            let recorded = try await records(Array(blobsByImage.keys), teamID: team)
            for (id, keys) in blobsByImage where recorded[id] == nil {
                for key in keys {
                    try await images.blobs.delete(at: key)
                    removed += 1
                }
            }
        }
        return removed
    }

    /// The team's images within `maxDistance` bits of an image's perceptual hash, nearest first,
    /// the image itself left out.
    /// - Parameters:
    ///   - id: The image.
    ///   - teamID: The caller's team.
    ///   - maxDistance: The largest Hamming distance that counts.
    ///   - page: Which page.
    /// - Returns: The page, or why there is none.
    public func nearDuplicates(
        of id: ImageID, teamID: TeamID, maxDistance: Int, _ page: PageRequest
    ) async throws -> NearDuplicatesOutcome {
        guard let image = try await images.store.image(id: id, teamID: teamID) else { return .imageNotFound }
        guard let hash = image.phash else { return .imageNotHashed(image.embeddingStatus) }
        let others = try await images.store.perceptualHashes(teamID: teamID).filter { $0.id != id }
        let near = NearDuplicateSearch.neighbours(of: hash, among: others, maxDistance: maxDistance)
        let slice = near.dropFirst(page.skip).prefix(page.limit)
        let records = try await records(slice.map(\.entry.id), teamID: teamID)
        // An image deleted between the two reads is left out of the page.
        let items = slice.compactMap { match in
            records[match.entry.id].map { NearDuplicate(image: $0, distance: match.distance) }
        }
        return .found(Page(items: items, total: near.count))
    }

    /// The team's groups of near-duplicates (images connected by perceptual hashes at most
    /// `maxDistance` bits apart), the largest first, each with at most `membersShown` of its
    /// images, oldest first.
    /// - Parameters:
    ///   - teamID: The caller's team.
    ///   - maxDistance: The largest Hamming distance that connects two images.
    ///   - page: Which groups.
    /// - Returns: The page of groups and how many groups there are.
    public func nearDuplicateGroups(
        teamID: TeamID, maxDistance: Int, _ page: PageRequest
    ) async throws -> Page<NearDuplicateGroup> {
        let groups = NearDuplicateSearch.groups(
            try await images.store.perceptualHashes(teamID: teamID), maxDistance: maxDistance)
        let slice = groups.dropFirst(page.skip).prefix(page.limit)
        let shown = slice.map { $0.prefix(NearDuplicateGroup.membersShown) }
        let records = try await records(shown.flatMap { $0.map(\.id) }, teamID: teamID)
        let items = zip(slice, shown).map { group, members in
            NearDuplicateGroup(size: group.count, images: members.compactMap { records[$0.id] })
        }
        return Page(items: items, total: groups.count)
    }

    /// The team's images with these ids, read 100 at a time, by id.
    private func records(_ ids: [ImageID], teamID: TeamID) async throws -> [ImageID: ImageRecord] {
        var found: [ImageID: ImageRecord] = [:]
        for start in stride(from: 0, to: ids.count, by: 100) {
            for image in try await images.store.images(
                ids: Array(ids[start..<min(start + 100, ids.count)]), teamID: teamID)
            {
                found[image.id] = image
            }
        }
        return found
    }
}

/// An image near another, and how many bits their perceptual hashes differ by.
public struct NearDuplicate: Sendable, Equatable {
    /// The image.
    public var image: ImageRecord
    /// The Hamming distance between the hashes (0-64).
    public var distance: Int
}

/// What asking for an image's near-duplicates found.
public enum NearDuplicatesOutcome: Sendable {
    /// The page of near-duplicates and their total.
    case found(Page<NearDuplicate>)
    /// No such image in the team.
    case imageNotFound
    /// The image has no perceptual hash yet: it is hashed when it is processed.
    case imageNotHashed(EmbeddingStatus)
}

/// A group of near-duplicates.
public struct NearDuplicateGroup: Sendable, Equatable {
    /// The most images a group lists; `size` counts them all.
    public static let membersShown = 20
    /// How many images the group holds.
    public var size: Int
    /// Its oldest images (at most ``membersShown``), oldest first.
    public var images: [ImageRecord]
}
