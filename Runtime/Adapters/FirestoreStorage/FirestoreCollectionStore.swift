import Foundation
import ImageAPICore

/// Named collections as Firestore documents (`image_collections/{id}`), their names kept unique
/// per team by one `collection_names` document per name in use (Firestore has no unique index).
extension FirestoreMetadataStore {
    /// Stores a new collection and its name's reservation in one transaction.
    public func insertCollection(_ collection: ImageCollection) async throws {
        try await client.withTransaction { transaction in
            let name = FirestoreCollection.collectionName(collection.nameKey, teamID: collection.teamID)
            if let holder = try await transaction.document(name) {
                throw CollectionNameTakenError(
                    existingCollectionID: try FieldReader(document: holder).uuid("collection_id"))
            }
            transaction.write(
                .create(
                    name, ["collection_id": .string(collection.id.lowercasedString), "team_id": .id(collection.teamID)])
            )
            transaction.write(
                .create(FirestoreCollection.imageCollection(collection.id), FirestoreRecords.fields(collection)))
        }
    }

    /// One of a team's collections.
    public func collection(id: UUID, teamID: TeamID) async throws -> ImageCollection? {
        try await client.document(FirestoreCollection.imageCollection(id)).map(FirestoreRecords.collection).flatMap {
            $0.teamID == teamID ? $0 : nil
        }
    }

    /// Every named collection of a team.
    public func collections(teamID: TeamID) async throws -> [ImageCollection] {
        var query = FirestoreQuery(collection: FirestoreCollection.imageCollections)
        query.filters = [.init("team_id", .equal, .id(teamID))]
        return try await client.run(query).map(FirestoreRecords.collection)
    }

    /// Replaces a collection's fields, moving its name's reservation when the name changes.
    public func updateCollection(_ collection: ImageCollection) async throws -> Bool {
        try await client.withTransaction { transaction in
            let path = FirestoreCollection.imageCollection(collection.id)
            guard let document = try await transaction.document(path),
                let stored = try? FirestoreRecords.collection(document), stored.teamID == collection.teamID
            else { return false }
            if stored.nameKey != collection.nameKey {
                let name = FirestoreCollection.collectionName(collection.nameKey, teamID: collection.teamID)
                if let holder = try await transaction.document(name) {
                    throw CollectionNameTakenError(
                        existingCollectionID: try FieldReader(document: holder).uuid("collection_id"))
                }
                transaction.write(
                    FirestoreWrite(FirestoreCollection.collectionName(stored.nameKey, teamID: stored.teamID), .delete))
                transaction.write(
                    .create(
                        name,
                        ["collection_id": .string(collection.id.lowercasedString), "team_id": .id(collection.teamID)]
                    ))
            }
            transaction.write(.replace(path, FirestoreRecords.fields(collection)))
            return true
        }
    }

    /// Clears the label from the team's images, ``largestRequeueBatch`` images per transaction,
    /// then deletes the collection and its name's reservation: an interrupted delete leaves the
    /// collection, and asking again finishes it.
    public func deleteCollection(id: UUID, teamID: TeamID, at date: Date) async throws -> [ImageRecord] {
        var query = FirestoreQuery(collection: FirestoreCollection.images)
        query.filters = [
            .init("team_id", .equal, .id(teamID)), .init("collection_id", .equal, .string(id.lowercasedString)),
        ]
        query.limit = Self.largestRequeueBatch
        var cleared: [ImageRecord] = []
        while true {
            let paths = try await client.run(query).map(FirestoreRecords.image).map { FirestoreCollection.image($0.id) }
            guard !paths.isEmpty else { break }
            cleared += try await client.withTransaction { transaction in
                var batch: [ImageRecord] = []
                for case (let path, let document?) in try await transaction.documents(paths) {
                    // Read again inside the transaction: the image may have moved since.
                    var image = try FirestoreRecords.image(document)
                    guard image.teamID == teamID, image.collectionID == id else { continue }
                    image.collectionID = nil
                    image.updatedAt = date
                    transaction.write(.replace(path, FirestoreRecords.fields(image)))
                    batch.append(image)
                }
                return batch
            }
        }
        try await client.withTransaction { transaction in
            let path = FirestoreCollection.imageCollection(id)
            guard let document = try await transaction.document(path),
                let stored = try? FirestoreRecords.collection(document), stored.teamID == teamID
            else { return }
            transaction.write(FirestoreWrite(path, .delete))
            transaction.write(
                FirestoreWrite(FirestoreCollection.collectionName(stored.nameKey, teamID: teamID), .delete))
        }
        return cleared
    }

    /// Every label the team's images carry, counted, from its images read with three fields.
    public func collectionLabels(teamID: TeamID) async throws -> [CollectionLabel] {
        var query = FirestoreQuery(collection: FirestoreCollection.images)
        query.filters = [.init("team_id", .equal, .id(teamID))]
        query.fields = ["id", "collection_id", "created_at"]
        var labels: [UUID: (count: Int, newest: ImageID, at: Date)] = [:]
        for document in try await client.run(query) {
            let fields = FieldReader(document: document)
            guard let label = try fields.optionalUUID("collection_id") else { continue }
            let id: ImageID = try fields.identifier("id")
            let created = try fields.date("created_at")
            let current = labels[label]
            let newer = current.map { (created, id) > ($0.at, $0.newest) } ?? true
            labels[label] = (
                (current?.count ?? 0) + 1, newer ? id : current!.newest, newer ? created : current!.at
            )
        }
        return labels.map { CollectionLabel(id: $0.key, imageCount: $0.value.count, newestImageID: $0.value.newest) }
    }
}
