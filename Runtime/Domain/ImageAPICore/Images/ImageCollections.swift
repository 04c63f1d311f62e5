import Foundation

/// A named collection of a team's images. An image names its collection by `collection_id`.
public struct ImageCollection: Sendable, Equatable {
    /// The collection's id, which images carry as `collection_id`.
    public var id: UUID
    /// The team that owns it.
    public var teamID: TeamID
    /// Its name, unique in the team without regard to case.
    public var name: String
    /// An optional description.
    public var description: String?
    /// The image chosen to stand for it, if one was.
    public var coverImageID: ImageID?
    /// When it was created.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    /// What names are compared by: the name lower-cased (Unicode's default case mapping), so
    /// that "Trips" and "trips" are one name.
    public var nameKey: String { name.lowercased() }

    /// Creates a collection.
    public init(
        id: UUID, teamID: TeamID, name: String, description: String?, coverImageID: ImageID?, createdAt: Date,
        updatedAt: Date
    ) {
        self.id = id
        self.teamID = teamID
        self.name = name
        self.description = description
        self.coverImageID = coverImageID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A `collection_id` the team's images carry, counted.
public struct CollectionLabel: Sendable, Equatable {
    /// The label.
    public var id: UUID
    /// How many of the team's images carry it.
    public var imageCount: Int
    /// The newest of them.
    public var newestImageID: ImageID

    /// Creates a count.
    public init(id: UUID, imageCount: Int, newestImageID: ImageID) {
        self.id = id
        self.imageCount = imageCount
        self.newestImageID = newestImageID
    }
}

/// A team already has a collection of this name.
public struct CollectionNameTakenError: Error, Equatable, CustomStringConvertible {
    /// The collection that has it.
    public let existingCollectionID: UUID

    /// Creates the error.
    public init(existingCollectionID: UUID) {
        self.existingCollectionID = existingCollectionID
    }

    /// Which collection has the name.
    public var description: String {
        "a collection of this name already exists: \(existingCollectionID.lowercasedString)"
    }
}

/// Storage of named collections, and the labels images carry.
public protocol CollectionRepository: Sendable {
    /// Stores a new collection.
    /// - Throws: ``CollectionNameTakenError`` when the team has a collection of that name (case
    ///   aside); the check and the insert are one step.
    func insertCollection(_ collection: ImageCollection) async throws
    /// One of a team's collections.
    func collection(id: UUID, teamID: TeamID) async throws -> ImageCollection?
    /// Every named collection of a team, in no particular order (a team holds at most
    /// ``CollectionRules/maximumPerTeam``).
    func collections(teamID: TeamID) async throws -> [ImageCollection]
    /// Replaces a collection's name, description, cover and `updated_at`. False when absent.
    /// - Throws: ``CollectionNameTakenError`` when another collection of the team has the name.
    func updateCollection(_ collection: ImageCollection) async throws -> Bool
    /// Clears `collection_id` (and sets `updated_at`) on every image of the team that carries
    /// it, then deletes the named collection if there is one. A backend with bounded
    /// transactions clears in batches and deletes the collection last, so that asking again
    /// finishes an interrupted delete.
    /// - Returns: The images as changed (their collection cleared).
    func deleteCollection(id: UUID, teamID: TeamID, at date: Date) async throws -> [ImageRecord]
    /// Every `collection_id` the team's images carry, with its count and newest image.
    func collectionLabels(teamID: TeamID) async throws -> [CollectionLabel]
}

/// The rules of collections.
public enum CollectionRules {
    /// The most named collections a team may hold.
    public static let maximumPerTeam = 1000
    /// The longest name, in characters.
    public static let maximumNameLength = 100
}

/// A collection as listed: a named collection, or a label images carry that names none
/// (`name` is then `nil`), with its image count and cover.
public struct CollectionSummary: Sendable, Equatable {
    /// The id images carry.
    public var id: UUID
    /// The named collection, when there is one.
    public var collection: ImageCollection?
    /// How many of the team's images carry the id.
    public var imageCount: Int
    /// The chosen cover while it is still in the collection, else its newest image.
    public var coverImageID: ImageID?
}

/// What a change to a collection came to.
public enum CollectionOutcome: Sendable, Equatable {
    /// Done; the collection as it is now.
    case done(CollectionSummary)
    /// No such collection (nor label) in the team.
    case notFound
    /// Another collection of the team has the name.
    case nameTaken(existing: UUID)
    /// The cover is not one of the collection's images.
    case coverNotInCollection
    /// The team holds ``CollectionRules/maximumPerTeam`` collections already.
    case tooMany
    /// A label images carry can only be named with a name.
    case nameRequired
}

/// The use cases of collections: create, list, read, rename, choose a cover, delete (which keeps
/// the images and clears their label, in the vector index too).
public struct CollectionService: Sendable {
    private let images: ImageServices
    private let clock: any TimeSource

    /// Creates the service.
    /// - Parameters:
    ///   - images: The image pipeline's ports and settings.
    ///   - clock: Where creation and change times come from.
    public init(images: ImageServices, clock: any TimeSource) {
        self.images = images
        self.clock = clock
    }

    /// Creates a named collection.
    /// - Parameters:
    ///   - name: Its name (checked input).
    ///   - description: Its description.
    ///   - teamID: The caller's team.
    /// - Returns: What happened.
    public func create(name: String, description: String?, teamID: TeamID) async throws -> CollectionOutcome {
        try await create(id: UUID(), name: name, description: description, teamID: teamID)
    }

    private func create(
        id: UUID, name: String, description: String?, teamID: TeamID
    ) async throws
        -> CollectionOutcome
    {
        guard try await images.store.collections(teamID: teamID).count < CollectionRules.maximumPerTeam else {
            return .tooMany
        }
        let now = clock.now()
        let collection = ImageCollection(
            id: id, teamID: teamID, name: name, description: description, coverImageID: nil, createdAt: now,
            updatedAt: now)
        do {
            try await images.store.insertCollection(collection)
        } catch let error as CollectionNameTakenError {
            return .nameTaken(existing: error.existingCollectionID)
        }
        return try await summary(id: id, teamID: teamID).map { .done($0) } ?? .notFound
    }

    /// Every collection of the team, named ones by name (case aside), then the labels images
    /// carry that name no collection, by id.
    /// - Parameters:
    ///   - teamID: The caller's team.
    ///   - page: Which page.
    /// - Returns: The page and the total.
    public func list(teamID: TeamID, _ page: PageRequest) async throws -> Page<CollectionSummary> {
        let named = try await images.store.collections(teamID: teamID)
        let labels = Dictionary(
            try await images.store.collectionLabels(teamID: teamID).map { ($0.id, $0) },
            uniquingKeysWith: { first, _ in first })
        let namedIDs = Set(named.map(\.id))
        let summaries =
            named.sorted { ($0.nameKey, $0.id) < ($1.nameKey, $1.id) }
            .map { Self.summary($0.id, named: $0, label: labels[$0.id]) }
            + labels.values.filter { !namedIDs.contains($0.id) }.sorted { $0.id < $1.id }
            .map { Self.summary($0.id, named: nil, label: $0) }
        return Page(items: Array(summaries.dropFirst(page.skip).prefix(page.limit)), total: summaries.count)
    }

    /// One collection, named or a label images carry; `nil` when it is neither.
    public func summary(id: UUID, teamID: TeamID) async throws -> CollectionSummary? {
        let named = try await images.store.collection(id: id, teamID: teamID)
        let label = try await images.store.collectionLabels(teamID: teamID).first { $0.id == id }
        guard named != nil || label != nil else { return nil }
        return Self.summary(id, named: named, label: label)
    }

    private static func summary(_ id: UUID, named: ImageCollection?, label: CollectionLabel?) -> CollectionSummary {
        CollectionSummary(
            id: id, collection: named, imageCount: label?.imageCount ?? 0,
            coverImageID: named?.coverImageID ?? label?.newestImageID)
    }

    /// Changes a collection's name, description or cover; a label images carry that names no
    /// collection becomes a named collection (a name is then needed).
    /// - Parameters:
    ///   - id: The collection.
    ///   - teamID: The caller's team.
    ///   - name: The new name, or `.keep`.
    ///   - description: The new description, or `.keep`.
    ///   - cover: The new cover (one of the collection's images), or `.keep`; `nil` clears it.
    /// - Returns: What happened.
    public func update(
        id: UUID, teamID: TeamID, name: FieldChange<String>, description: FieldChange<String>,
        cover: FieldChange<ImageID>
    ) async throws -> CollectionOutcome {
        let named = try await images.store.collection(id: id, teamID: teamID)
        if named == nil, try await !images.store.collectionLabels(teamID: teamID).contains(where: { $0.id == id }) {
            return .notFound
        }
        if case .set(let coverID?) = cover {
            guard let image = try await images.store.image(id: coverID, teamID: teamID), image.collectionID == id else {
                return .coverNotInCollection
            }
        }
        guard var collection = named else {
            guard case .set(let newName?) = name else { return .nameRequired }
            let described: String? = if case .set(let text) = description { text } else { nil }
            let created = try await create(id: id, name: newName, description: described, teamID: teamID)
            guard case .done = created, case .set(let coverID?) = cover else { return created }
            return try await update(id: id, teamID: teamID, name: .keep, description: .keep, cover: .set(coverID))
        }
        if case .set(let newName?) = name { collection.name = newName }
        if case .set(let text) = description { collection.description = text }
        if case .set(let coverID) = cover { collection.coverImageID = coverID }
        collection.updatedAt = clock.now()
        do {
            guard try await images.store.updateCollection(collection) else { return .notFound }
        } catch let error as CollectionNameTakenError {
            return .nameTaken(existing: error.existingCollectionID)
        }
        return try await summary(id: id, teamID: teamID).map { .done($0) } ?? .notFound
    }

    /// Deletes a collection (or a label images carry): its images are kept and their label
    /// cleared, in the metadata and then in the vector index.
    /// - Returns: False when the team has no such collection or label.
    public func delete(id: UUID, teamID: TeamID) async throws -> Bool {
        guard try await summary(id: id, teamID: teamID) != nil else { return false }
        let cleared = try await images.store.deleteCollection(id: id, teamID: teamID, at: clock.now())
        for image in cleared {
            try await images.vectors.updatePayload(imageID: image.id, collectionID: nil, tags: image.tags)
        }
        return true
    }

    /// Whether a `collection_id` may be given to a new image, or an image moved to it: it must
    /// name one of the team's collections.
    public func accepts(_ id: UUID, teamID: TeamID) async throws -> Bool {
        try await images.store.collection(id: id, teamID: teamID) != nil
    }
}
