import Foundation
import FunctionHosting
import ImageAPICore
import Testing

@Suite("Collections")
struct CollectionTests {
    @Test(
        "create, list, read, rename, choose a cover and delete; images stay, their label cleared",
        arguments: TestAPI.metadataBackends)
    func lifecycle(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let created = try await client.createCollection(
                #"{"name": " Trips ", "description": "Away"}"#, key: ann.key)
            #expect(created.status == .created)
            let trips = try created.decode(CollectionReply.self)
            #expect(trips.name == "Trips" && trips.description == "Away" && trips.image_count == 0)
            #expect(trips.cover_image_id == nil && trips.created_at != nil)
            let taken = try await client.createCollection(#"{"name": "TRIPS"}"#, key: ann.key)
            #expect(taken.status == .conflict)
            #expect(try taken.decode([String: String].self)["existing_collection_id"] == trips.id.lowercasedString)

            var images: [ImageRecord] = []
            for fixture in ["sunset.jpg", "lake.png", "forest.webp"] {
                let fields = fixture == "forest.webp" ? [] : [("collection_id", trips.id.uuidString)]
                images.append(try await client.upload(fixture, fields: fields, key: ann.key).decode(ImageRecord.self))
                api.clock.advance(seconds: 1)
            }
            var read = try await client.getCollection(trips.id, key: ann.key).decode(CollectionReply.self)
            #expect(read.image_count == 2 && read.cover_image_id == images[1].id)
            // The cover: one of its images, not another.
            let covered = try await client.updateCollection(
                trips.id, json: #"{"cover_image_id": "\#(images[0].id.lowercasedString)", "name": "Journeys"}"#,
                key: ann.key)
            #expect(try covered.decode(CollectionReply.self).cover_image_id == images[0].id)
            let outside = try await client.updateCollection(
                trips.id, json: #"{"cover_image_id": "\#(images[2].id.lowercasedString)"}"#, key: ann.key)
            #expect(outside.status == .unprocessableContent && outside.issues.first?.loc == ["body", "cover_image_id"])
            let unnamed = try await client.updateCollection(trips.id, json: #"{"name": null}"#, key: ann.key)
            #expect(unnamed.status == .unprocessableContent)
            read = try await client.getCollection(trips.id, key: ann.key).decode(CollectionReply.self)
            #expect(read.name == "Journeys" && read.cover_image_id == images[0].id && read.description == "Away")

            let second = try await client.createCollection(#"{"name": "Home"}"#, key: ann.key).decode(
                CollectionReply.self)
            let list = try await client.listCollections(key: ann.key).decode(ListReply<CollectionReply>.self)
            #expect(list.items.map(\.name) == ["Home", "Journeys"] && list.total == 2)
            let renameClash = try await client.updateCollection(second.id, json: #"{"name": "journeys"}"#, key: ann.key)
            #expect(renameClash.status == .conflict)

            #expect(try await client.deleteCollection(trips.id, key: ann.key).status == .noContent)
            #expect(try await client.getCollection(trips.id, key: ann.key).status == .notFound)
            for image in images {
                let stored = try await client.getImage(image.id, key: ann.key).decode(ImageRecord.self)
                #expect(stored.collectionID == nil)
            }
            #expect(try await client.deleteCollection(trips.id, key: ann.key).status == .notFound)
        }
    }

    @Test(
        "a collection_id that names no collection of the team is refused on upload and on change; nothing is stored",
        arguments: TestAPI.metadataBackends)
    func unknownCollections(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let bob = try await client.member(email: "bob@example.com")
            let bobs = try await client.makeCollection("Bob's", key: bob.key)
            for collection in [UUID(), bobs] {
                let refused = try await client.upload(
                    "sunset.jpg", fields: [("collection_id", collection.uuidString)], key: ann.key)
                #expect(refused.status == .unprocessableContent)
                #expect(refused.issues.first?.loc == ["body", "collection_id"])
            }
            #expect(try await client.listImages(key: ann.key).decode(ListReply<ImageRecord>.self).total == 0)
            let image = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            let moved = try await client.updateImage(
                image.id, json: #"{"collection_id": "\#(bobs.uuidString)", "description": "x"}"#, key: ann.key)
            #expect(moved.status == .unprocessableContent)
            let stored = try await client.getImage(image.id, key: ann.key).decode(ImageRecord.self)
            #expect(stored.collectionID == nil && stored.description == nil)
            // The other team's collection is invisible.
            #expect(try await client.getCollection(bobs, key: ann.key).status == .notFound)
            #expect(
                try await client.updateCollection(bobs, json: #"{"name": "Mine"}"#, key: ann.key).status == .notFound)
            let coverElsewhere = try await client.updateCollection(
                bobs, json: #"{"cover_image_id": "\#(image.id.lowercasedString)"}"#, key: ann.key)
            #expect(coverElsewhere.status == .notFound)
            #expect(try await client.deleteCollection(bobs, key: ann.key).status == .notFound)
            #expect(try await client.listCollections(key: ann.key).decode(ListReply<CollectionReply>.self).total == 0)
            #expect(try await client.getCollection(bobs, key: bob.key).status == .ok)
        }
    }

    @Test(
        "a label images carry from before collections had names is listed unnamed, and naming it keeps its images",
        arguments: TestAPI.metadataBackends)
    func unnamedLabels(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            var image = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            // What an image filed before this version carries: a free label.
            let label = UUID()
            image.collectionID = label
            #expect(try await api.store.updateImage(image))
            let listed = try await client.listCollections(key: ann.key).decode(ListReply<CollectionReply>.self)
            #expect(listed.items.map(\.id) == [label] && listed.items.first?.name == nil)
            #expect(listed.items.first?.image_count == 1 && listed.items.first?.cover_image_id == image.id)
            // Keeping the label while changing other fields is allowed.
            let kept = try await client.updateImage(
                image.id, json: #"{"collection_id": "\#(label.uuidString)", "description": "kept"}"#, key: ann.key)
            #expect(kept.status == .ok)
            let nameless = try await client.updateCollection(label, json: #"{"description": "x"}"#, key: ann.key)
            #expect(nameless.status == .unprocessableContent)
            let named = try await client.updateCollection(label, json: #"{"name": "Old trips"}"#, key: ann.key)
            #expect(named.status == .ok)
            let read = try named.decode(CollectionReply.self)
            #expect(read.name == "Old trips" && read.image_count == 1 && read.created_at != nil)
            // Now new uploads may use it.
            let second = try await client.upload(
                "lake.png", fields: [("collection_id", label.uuidString)], key: ann.key)
            #expect(second.status == .created)
        }
    }
}

struct CollectionReply: Decodable {
    let id: UUID
    let name: String?
    let description: String?
    let image_count: Int
    let cover_image_id: ImageID?
    let created_at: Date?
    let updated_at: Date?
}

extension APIClient {
    func createCollection(_ json: String, key: String?) async throws -> Reply {
        try await send(.post, "/api/v1/collections", key: key, json: json)
    }
    func listCollections(_ query: String = "", key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/collections\(query)", key: key)
    }
    func getCollection(_ id: UUID, key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/collections/\(id.lowercasedString)", key: key)
    }
    func updateCollection(_ id: UUID, json: String, key: String?) async throws -> Reply {
        try await send(.put, "/api/v1/collections/\(id.lowercasedString)", key: key, json: json)
    }
    func deleteCollection(_ id: UUID, key: String?) async throws -> Reply {
        try await send(.delete, "/api/v1/collections/\(id.lowercasedString)", key: key)
    }

    /// Creates a named collection and returns its id.
    func makeCollection(_ name: String, key: String?) async throws -> UUID {
        let reply = try await createCollection(#"{"name": "\#(name)"}"#, key: key)
        #expect(reply.status == .created, "\(String(decoding: reply.body, as: UTF8.self))")
        return try reply.decode(CollectionReply.self).id
    }
}
