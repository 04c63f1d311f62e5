import Foundation
import GRDB
import ImageAPICore

/// Named collections in SQLite (migration v6: the `collections` table, its name unique per team
/// without regard to case by a unique index on its ``ImageCollection/nameKey``).
extension SQLiteMetadataStore {
    /// Stores a new collection; a name the team already has (case aside) is refused.
    public func insertCollection(_ collection: ImageCollection) async throws {
        try await pool.write { db in
            try Self.refuseTakenName(collection, db)
            try db.execute(
                sql: """
                    INSERT INTO collections (
                        id, team_id, name, name_key, description, cover_image_id, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    collection.id.lowercasedString, collection.teamID.lowercasedString, collection.name,
                    collection.nameKey, collection.description, collection.coverImageID?.lowercasedString,
                    collection.createdAt, collection.updatedAt,
                ])
        }
    }

    /// One of a team's collections.
    public func collection(id: UUID, teamID: TeamID) async throws -> ImageCollection? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM collections WHERE id = ? AND team_id = ?",
                arguments: [id.lowercasedString, teamID.lowercasedString]
            ).map(Self.collection)
        }
    }

    /// Every named collection of a team.
    public func collections(teamID: TeamID) async throws -> [ImageCollection] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM collections WHERE team_id = ?", arguments: [teamID.lowercasedString]
            ).map(Self.collection)
        }
    }

    /// Replaces a collection's fields; a name another collection of the team has is refused.
    public func updateCollection(_ collection: ImageCollection) async throws -> Bool {
        try await pool.write { db in
            try Self.refuseTakenName(collection, db)
            try db.execute(
                sql: """
                    UPDATE collections SET name = ?, name_key = ?, description = ?, cover_image_id = ?, updated_at = ?
                    WHERE id = ? AND team_id = ?
                    """,
                arguments: [
                    collection.name, collection.nameKey, collection.description,
                    collection.coverImageID?.lowercasedString,
                    collection.updatedAt, collection.id.lowercasedString, collection.teamID.lowercasedString,
                ])
            return db.changesCount > 0
        }
    }

    /// Clears the label from the team's images and deletes the collection, in one transaction.
    public func deleteCollection(id: UUID, teamID: TeamID, at date: Date) async throws -> [ImageRecord] {
        try await pool.write { db in
            let arguments: StatementArguments = [id.lowercasedString, teamID.lowercasedString]
            var cleared = try Row.fetchAll(
                db, sql: "SELECT * FROM images WHERE collection_id = ? AND team_id = ?", arguments: arguments
            ).map(Self.image)
            try db.execute(
                sql: "UPDATE images SET collection_id = NULL, updated_at = ? WHERE collection_id = ? AND team_id = ?",
                arguments: [date] + arguments)
            try db.execute(sql: "DELETE FROM collections WHERE id = ? AND team_id = ?", arguments: arguments)
            for index in cleared.indices {
                cleared[index].collectionID = nil
                cleared[index].updatedAt = date
            }
            return cleared
        }
    }

    /// Every label the team's images carry, counted, with the newest image of each.
    public func collectionLabels(teamID: TeamID) async throws -> [CollectionLabel] {
        try await pool.read { db in
            // SQLite takes the other columns from the row holding the MAX.
            try Row.fetchAll(
                db,
                sql: """
                    SELECT collection_id, COUNT(*), id, MAX(created_at * 1e6 + number) FROM images
                    WHERE team_id = ? AND collection_id IS NOT NULL GROUP BY collection_id
                    """,
                arguments: [teamID.lowercasedString]
            ).compactMap { row in
                guard let label = (row[0] as String?).flatMap(UUID.init(uuidString:)) else { return nil }
                return CollectionLabel(id: label, imageCount: row[1], newestImageID: try MetadataRows.id(row, "id"))
            }
        }
    }

    private static func refuseTakenName(_ collection: ImageCollection, _ db: Database) throws {
        if let holder = try String.fetchOne(
            db, sql: "SELECT id FROM collections WHERE team_id = ? AND name_key = ? AND id != ?",
            arguments: [collection.teamID.lowercasedString, collection.nameKey, collection.id.lowercasedString]),
            let existing = UUID(uuidString: holder)
        {
            throw CollectionNameTakenError(existingCollectionID: existing)
        }
    }

    static func collection(_ row: Row) throws -> ImageCollection {
        guard let id = UUID(uuidString: row["id"]) else {
            throw DatabaseError(message: "a collection id is not a UUID")
        }
        return ImageCollection(
            id: id, teamID: try MetadataRows.id(row, "team_id"), name: row["name"], description: row["description"],
            coverImageID: (row["cover_image_id"] as String?).flatMap { ImageID($0) }, createdAt: row["created_at"],
            updatedAt: row["updated_at"])
    }
}
