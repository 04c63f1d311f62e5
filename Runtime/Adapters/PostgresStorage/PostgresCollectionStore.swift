import Foundation
import ImageAPICore
import PostgresNIO

/// Named collections in PostgreSQL (migration 3: the `collections` table, its name unique per
/// team without regard to case by the unique index `collections_unique_name` on its
/// ``ImageCollection/nameKey``).
extension PostgresMetadataStore {
    /// Stores a new collection; a name the team already has (case aside) is refused.
    public func insertCollection(_ collection: ImageCollection) async throws {
        try await refusingTakenName(collection) {
            _ = try await rows(
                """
                INSERT INTO collections (id, team_id, name, name_key, description, cover_image_id, created_at, updated_at)
                VALUES (
                    \(collection.id), \(collection.teamID.uuid), \(collection.name), \(collection.nameKey),
                    \(collection.description), \(collection.coverImageID?.uuid), \(collection.createdAt),
                    \(collection.updatedAt))
                """)
        }
    }

    /// One of a team's collections.
    public func collection(id: UUID, teamID: TeamID) async throws -> ImageCollection? {
        try await rows("SELECT * FROM collections WHERE id = \(id) AND team_id = \(teamID.uuid)").first.map(
            Self.collection)
    }

    /// Every named collection of a team.
    public func collections(teamID: TeamID) async throws -> [ImageCollection] {
        try await rows("SELECT * FROM collections WHERE team_id = \(teamID.uuid)").map(Self.collection)
    }

    /// Replaces a collection's fields; a name another collection of the team has is refused.
    public func updateCollection(_ collection: ImageCollection) async throws -> Bool {
        try await refusingTakenName(collection) {
            try await !rows(
                """
                UPDATE collections SET name = \(collection.name), name_key = \(collection.nameKey),
                    description = \(collection.description), cover_image_id = \(collection.coverImageID?.uuid),
                    updated_at = \(collection.updatedAt)
                WHERE id = \(collection.id) AND team_id = \(collection.teamID.uuid) RETURNING id
                """
            ).isEmpty
        }
    }

    /// Clears the label from the team's images and deletes the collection, in one transaction.
    public func deleteCollection(id: UUID, teamID: TeamID, at date: Date) async throws -> [ImageRecord] {
        try await transaction { [logger] connection in
            let cleared = try await connection.query(
                """
                UPDATE images SET collection_id = NULL, updated_at = \(date)
                WHERE collection_id = \(id) AND team_id = \(teamID.uuid) RETURNING *
                """, logger: logger
            ).collect().map(Self.image)
            try await connection.query(
                "DELETE FROM collections WHERE id = \(id) AND team_id = \(teamID.uuid)", logger: logger)
            return cleared
        }
    }

    /// Every label the team's images carry, counted, with the newest image of each.
    public func collectionLabels(teamID: TeamID) async throws -> [CollectionLabel] {
        try await rows(
            """
            SELECT collection_id, COUNT(*)::bigint,
                (array_agg(id ORDER BY created_at DESC, number DESC))[1]
            FROM images WHERE team_id = \(teamID.uuid) AND collection_id IS NOT NULL GROUP BY collection_id
            """
        ).map { row in
            let (label, count, newest) = try row.decode((UUID, Int, UUID).self)
            return CollectionLabel(id: label, imageCount: count, newestImageID: ImageID(uuid: newest))
        }
    }

    /// Runs a write, turning the unique index's refusal into ``CollectionNameTakenError``.
    private func refusingTakenName<T>(_ collection: ImageCollection, _ write: () async throws -> T) async throws -> T {
        do {
            return try await write()
        } catch let error where Self.violation(error)?.constraint == "collections_unique_name" {
            let holder = try await rows(
                """
                SELECT id FROM collections WHERE team_id = \(collection.teamID.uuid)
                    AND name_key = \(collection.nameKey) AND id <> \(collection.id)
                """
            ).first?.decode(UUID.self)
            guard let holder else { throw error }
            throw CollectionNameTakenError(existingCollectionID: holder)
        }
    }

    static func collection(_ row: PostgresRow) throws -> ImageCollection {
        let row = row.makeRandomAccess()
        return ImageCollection(
            id: try row["id"].decode(UUID.self), teamID: TeamID(uuid: try row["team_id"].decode(UUID.self)),
            name: try row["name"].decode(String.self), description: try row["description"].decode(String?.self),
            coverImageID: try row["cover_image_id"].decode(UUID?.self).map { ImageID(uuid: $0) },
            createdAt: try row["created_at"].decode(Date.self), updatedAt: try row["updated_at"].decode(Date.self))
    }
}
