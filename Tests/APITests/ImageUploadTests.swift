import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageProcessing
import Testing

@Suite("Image upload, download, update and delete")
struct ImageUploadTests {
    @Test(
        "every accepted format is recognised from its bytes and decoded",
        arguments: [
            ("sunset.jpg", "image/jpeg", 320, 240), ("lake.png", "image/png", 320, 240),
            ("forest.webp", "image/webp", 320, 240), ("lake.gif", "image/gif", 320, 240),
            ("sunset.tiff", "image/tiff", 320, 240),
            ("lake.heic", "image/heic", 320, 240), ("lake.avif", "image/avif", 320, 240),
        ])
    func acceptedFormats(fixture: String, contentType: String, width: Int, height: Int) async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let member = try await client.member(email: "ann@example.com")
            // A misleading name: the type comes from the bytes, never from the file name.
            let reply = try await client.upload(fixture, as: "picture.txt", key: member.key)
            #expect(reply.status == .created)
            let image = try reply.decode(ImageRecord.self)
            #expect(image.contentType == contentType)
            #expect(image.width == width && image.height == height)
            #expect(image.fileSize == (try Fixture.data(fixture)).count)
            #expect(image.embeddingStatus == .pending && image.embeddingAttempts == 0)
            #expect(image.teamID == member.team.id && image.uploaderID == member.user.id)
            #expect(image.filename == "picture.txt")
        }
    }

    @Test("metadata: EXIF fields, orientation, SHA-256, description, tags and collection")
    func metadata() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let member = try await client.member(email: "ann@example.com")
            let collection = try await client.makeCollection("Evenings", key: member.key)
            let reply = try await client.upload(
                "sunset.jpg",
                fields: [
                    ("description", "  Evening over the fields "), ("tags", "Sunset, red ,sunset"), ("tags", "Field"),
                    ("collection_id", collection.uuidString),
                ], key: member.key)
            #expect(reply.status == .created)
            let image = try reply.decode(ImageRecord.self)
            #expect(image.description == "Evening over the fields")
            #expect(image.tags == ["sunset", "red", "field"])
            #expect(image.collectionID == collection)
            #expect(image.exif["camera_make"] == "Acme")
            #expect(image.exif["camera_model"] == "Acme Pocket 3")
            #expect(image.exif["lens_model"] == "Acme 24mm f/2")
            #expect(image.exif["taken_at"] == "2024-05-01T12:30:00")
            #expect(image.exif["gps_latitude"] == "52.520000")
            #expect(image.exif["gps_longitude"] == "13.400000")
            #expect(image.sha256 == "4c54c5da76334a16b397be17894d2b3ccf659d5da67ba400b3a6d196cc1a5e25")
            let rotated = try await client.upload("rotated.jpg", key: member.key).decode(ImageRecord.self)
            #expect(rotated.orientation == 6)
            #expect(rotated.width == 64 && rotated.height == 32)
        }
    }

    @Test("bad files are refused with the right status and leave nothing behind")
    func refusedFiles() async throws {
        let api = try TestAPI(imageSettings: { ImageSettings(maxUploadBytes: 10_000, blobDirectory: $0) })
        try await api.run { (client) async throws in
            let member = try await client.member(email: "ann@example.com")
            let notImage = try await client.upload("notes.jpg", key: member.key)
            #expect(notImage.status == .unsupportedMediaType)
            let truncated = try await client.upload("truncated.jpg", key: member.key)
            #expect(truncated.status == .unprocessableContent)
            #expect(truncated.issues.first?.msg.contains("could not be decoded") == true)
            // Every marker intact, 300 bytes of garbage in the scan: the decoder's warning fails it.
            let corrupt = try await client.upload("corrupt-scan.jpg", key: member.key)
            #expect(corrupt.status == .unprocessableContent)
            #expect(corrupt.issues.first?.msg.contains("could not be decoded") == true)
            let bomb = try await client.upload("bomb.png", key: member.key)
            #expect(bomb.status == .unprocessableContent)
            #expect(bomb.issues.first?.msg.contains("50000x50000") == true)
            let empty = try await client.upload("empty.jpg", key: member.key)
            #expect(empty.status == .unprocessableContent)
            #expect(empty.issues.first?.type == "empty_file")
            let tooLarge = try await client.upload("forest.bmp", key: member.key)
            #expect(tooLarge.status == .contentTooLarge)
            let noFile = try await client.sendRaw(
                .post, "/api/v1/images", key: member.key, contentType: "multipart/form-data; boundary=x",
                body: Data("--x\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nhi\r\n--x--\r\n".utf8))
            #expect(noFile.status == .unprocessableContent)
            #expect(noFile.issues.first?.loc == ["body", "file"])
            let notMultipart = try await client.sendRaw(
                .post, "/api/v1/images", key: member.key, contentType: "image/jpeg",
                body: try Fixture.data("sunset.jpg"))
            #expect(notMultipart.status == .unprocessableContent)
            let badCollection = try await client.upload(
                "sunset.jpg", fields: [("collection_id", "nope")], key: member.key)
            #expect(badCollection.status == .unprocessableContent)
            #expect(badCollection.issues.first?.loc == ["body", "collection_id"])
            let anonymous = try await client.upload("sunset.jpg", key: nil)
            #expect(anonymous.status == .unauthorized)

            let listed = try await client.listImages(key: member.key).decode(ListReply<ImageRecord>.self)
            #expect(listed.total == 0)
            #expect(try api.blobFiles().isEmpty)
        }
    }

    @Test("identical bytes in the same team answer 409 with the existing id, unless allowed")
    func duplicates() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let first = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            let again = try await client.upload("sunset.jpg", as: "copy.jpg", key: ann.key)
            #expect(again.status == .conflict)
            let body = try JSONDecoder().decode([String: String].self, from: again.body)
            #expect(body["existing_image_id"] == first.id.lowercasedString)
            let allowed = try await client.upload("sunset.jpg", fields: [("allow_duplicate", "true")], key: ann.key)
            #expect(allowed.status == .created)
            let byQuery = try await client.upload("sunset.jpg", query: "?allow_duplicate=true", key: ann.key)
            #expect(byQuery.status == .created)
            // Another team may hold the same bytes.
            let bob = try await client.member(email: "bob@example.com")
            #expect(try await client.upload("sunset.jpg", key: bob.key).status == .created)
        }
    }

    @Test(
        "32 concurrent uploads of the same bytes store exactly one image; the other 31 answer 409 naming it",
        arguments: TestAPI.metadataBackends)
    func concurrentDuplicates(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(
            // One team may hold half the queue: 32 of 64.
            imageSettings: { ImageSettings(blobDirectory: $0, uploadQueueLimit: 64) }, metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<32 { group.addTask { try await client.upload("sunset.jpg", key: ann.key) } }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            let created = replies.filter { $0.status == .created }
            #expect(created.count == 1)
            #expect(replies.filter { $0.status == .conflict }.count == 31)
            let winner = try #require(created.first).decode(ImageRecord.self)
            for reply in replies where reply.status == .conflict {
                let body = try JSONDecoder().decode([String: String].self, from: reply.body)
                #expect(body["existing_image_id"] == winner.id.lowercasedString)
            }
            #expect(try await client.listImages(key: ann.key).decode(ListReply<ImageRecord>.self).total == 1)
            #expect(try api.blobFiles().count == 1)
        }
    }

    @Test("the store itself refuses a second copy of a team's bytes, even past the handler's check")
    func storeRefusesDuplicates() async throws {
        let api = try TestAPI()
        let ann = try await api.run { try await $0.member(email: "ann@example.com") }
        func record() -> ImageRecord {
            ImageRecord(
                id: ImageID(), teamID: ann.team.id, uploaderID: ann.user.id, collectionID: nil, filename: "a.png",
                contentType: "image/png", format: "png", fileSize: 10, width: 1, height: 1, orientation: nil,
                sha256: String(repeating: "ab", count: 32), description: nil, tags: [], exif: [:],
                createdAt: api.clock.now())
        }
        func message() -> OutboxMessage {
            .processing(ImageProcessingRequest(imageID: ImageID(), teamID: ann.team.id, reason: "test"))
        }
        let first = record()
        try await api.store.insertImage(first, publishing: message(), allowDuplicate: false)
        await #expect(throws: DuplicateImageError(existingImageID: first.id)) {
            try await api.store.insertImage(record(), publishing: message(), allowDuplicate: false)
        }
        try await api.store.insertImage(record(), publishing: message(), allowDuplicate: true)
        await #expect(throws: DuplicateImageError(existingImageID: first.id)) {
            try await api.store.insertImage(record(), publishing: message(), allowDuplicate: false)
        }
    }

    @Test(
        "listing is newest first, paged, filtered by collection, tags, dates and state, and scoped to the team",
        arguments: TestAPI.metadataBackends)
    func listing(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let collection = try await client.makeCollection("Lakes", key: ann.key)
            var ids: [ImageID] = []
            let tags = ["red,evening", "", "red"]
            for (index, fixture) in ["sunset.jpg", "lake.png", "forest.webp"].enumerated() {
                let fields =
                    (index == 1 ? [("collection_id", collection.uuidString)] : []) + [("tags", tags[index])]
                ids.append(try await client.upload(fixture, fields: fields, key: ann.key).decode(ImageRecord.self).id)
                api.clock.advance(seconds: 1)
            }
            let page = try await client.listImages("?limit=2", key: ann.key).decode(ListReply<ImageRecord>.self)
            #expect(page.items.map(\.id) == [ids[2], ids[1]])
            #expect(page.total == 3 && page.limit == 2)
            let rest = try await client.listImages("?skip=2", key: ann.key).decode(ListReply<ImageRecord>.self)
            #expect(rest.items.map(\.id) == [ids[0]])
            let filtered = try await client.listImages("?collection_id=\(collection.lowercasedString)", key: ann.key)
                .decode(ListReply<ImageRecord>.self)
            #expect(filtered.items.map(\.id) == [ids[1]])
            #expect(try await client.listImages("?limit=101", key: ann.key).status == .unprocessableContent)

            func listed(_ query: String) async throws -> [ImageID] {
                try await client.listImages(query, key: ann.key).decode(ListReply<ImageRecord>.self).items.map(\.id)
            }
            #expect(try await listed("?tags=red") == [ids[2], ids[0]])
            #expect(try await listed("?tags=red&tags=evening") == [ids[0]])
            #expect(try await listed("?tags=RED,evening") == [ids[0]])
            let second = try await client.getImage(ids[1], key: ann.key).decode(ImageRecord.self).createdAt
            let instant = ISO8601DateFormatter().string(from: second)
            #expect(try await listed("?uploaded_from=\(instant)") == [ids[2], ids[1]])
            #expect(try await listed("?uploaded_to=\(instant)&tags=red") == [ids[0]])
            #expect(try await listed("?embedding_status=success").isEmpty)
            #expect(try await listed("?embedding_status=pending&skip=1") == [ids[1], ids[0]])
            try await client.deliver()
            #expect(
                try await listed("?embedding_status=success&collection_id=\(collection.lowercasedString)") == [ids[1]])
            for (query, field) in [
                ("?colection_id=\(collection.lowercasedString)", "colection_id"),
                ("?embedding_status=done", "embedding_status"),
                ("?uploaded_from=yesterday", "uploaded_from"),
            ] {
                let refused = try await client.listImages(query, key: ann.key)
                #expect(refused.status == .unprocessableContent, "\(query)")
                #expect(String(decoding: refused.body, as: UTF8.self).contains(#"["query","\#(field)"]"#), "\(query)")
            }
            let bob = try await client.member(email: "bob@example.com")
            #expect(try await client.listImages(key: bob.key).decode(ListReply<ImageRecord>.self).total == 0)
        }
    }

    @Test("download streams the original with ETag revalidation and byte ranges")
    func download() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let bytes = try Fixture.data("sunset.jpg")
            let image = try await client.upload("sunset.jpg", key: ann.key).decode(ImageRecord.self)
            let whole = try await client.download(image.id, key: ann.key)
            #expect(whole.status == .ok)
            #expect(whole.body == bytes)
            #expect(whole.headers[.contentType] == "image/jpeg")
            #expect(whole.headers[.contentLength] == String(bytes.count))
            let etag = try #require(whole.headers[.eTag])
            #expect(etag == "\"\(image.sha256)\"")

            let cached = try await client.download(image.id, key: ann.key, headers: [.ifNoneMatch: etag])
            #expect(cached.status == .notModified)
            #expect(cached.body.isEmpty)
            let changed = try await client.download(image.id, key: ann.key, headers: [.ifNoneMatch: "\"other\""])
            #expect(changed.status == .ok)

            let range = try await client.download(image.id, key: ann.key, headers: [.range: "bytes=10-19"])
            #expect(range.status == .partialContent)
            #expect(range.body == bytes[10..<20])
            #expect(range.headers[.contentRange] == "bytes 10-19/\(bytes.count)")
            let suffix = try await client.download(image.id, key: ann.key, headers: [.range: "bytes=-5"])
            #expect(suffix.body == bytes.suffix(5))
            let open = try await client.download(image.id, key: ann.key, headers: [.range: "bytes=6000-"])
            #expect(open.body == bytes[6000...])
            let outside = try await client.download(image.id, key: ann.key, headers: [.range: "bytes=99999-"])
            #expect(outside.status == .rangeNotSatisfiable)
            #expect(outside.headers[.contentRange] == "bytes */\(bytes.count)")

            // A store that cannot sign URLs (the files here) answers redirect=true with the bytes.
            let unsigned = try await client.download(image.id, key: ann.key, query: "?redirect=true")
            #expect(unsigned.status == .ok && unsigned.body == bytes)
            let malformed = try await client.download(image.id, key: ann.key, query: "?redirect=maybe")
            #expect(malformed.status == .unprocessableContent)
            #expect(String(decoding: malformed.body, as: UTF8.self).contains("redirect"))
            // A plain boolean in the query: `null` is no value of it.
            let null = try await client.download(image.id, key: ann.key, query: "?redirect=null")
            #expect(null.status == .unprocessableContent)
        }
    }

    @Test("PUT changes description, tags and collection; null clears; absent fields stay")
    func update() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let image = try await client.upload(
                "sunset.jpg", fields: [("description", "old"), ("tags", "a,b")], key: ann.key
            ).decode(ImageRecord.self)
            let collection = try await client.makeCollection("Dusk", key: ann.key)
            api.clock.advance(seconds: 5)
            let updated = try await client.updateImage(
                image.id, json: #"{"tags": ["Red", "red", "dusk"], "collection_id": "\#(collection.uuidString)"}"#,
                key: ann.key
            ).decode(ImageRecord.self)
            #expect(updated.tags == ["red", "dusk"])
            #expect(updated.description == "old")
            #expect(updated.collectionID == collection)
            #expect(updated.updatedAt > image.updatedAt)
            let cleared = try await client.updateImage(
                image.id, json: #"{"description": null, "collection_id": null}"#, key: ann.key
            ).decode(ImageRecord.self)
            #expect(cleared.description == nil && cleared.collectionID == nil && cleared.tags == ["red", "dusk"])
            let stored = try await client.getImage(image.id, key: ann.key).decode(ImageRecord.self)
            #expect(stored == cleared)
            let tooMany = try await client.updateImage(
                image.id, json: #"{"tags": [\#((0..<51).map { "\"t\($0)\"" }.joined(separator: ","))]}"#, key: ann.key)
            #expect(tooMany.status == .unprocessableContent)
            #expect(try await client.getImage(image.id, key: ann.key).decode(ImageRecord.self) == cleared)
        }
    }

    @Test(
        "DELETE removes metadata, original, thumbnail and vector, then answers 404", arguments: TestAPI.metadataBackends
    )
    func delete(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let image = try await client.uploadProcessed("sunset.jpg", key: ann.key)
            #expect(image.embeddingStatus == .success)
            #expect(try await api.images.blobs.exists(at: image.originalBlobKey))
            #expect(try await api.images.blobs.exists(at: image.thumbnailBlobKey))
            #expect(try await api.vectors.vector(imageID: image.id, teamID: ann.team.id) != nil)

            #expect(try await client.deleteImage(image.id, key: ann.key).status == .noContent)
            #expect(try await client.deleteImage(image.id, key: ann.key).status == .notFound)
            #expect(try await client.getImage(image.id, key: ann.key).status == .notFound)
            #expect(try await api.images.blobs.exists(at: image.originalBlobKey) == false)
            #expect(try await api.images.blobs.exists(at: image.thumbnailBlobKey) == false)
            #expect(try await api.vectors.vector(imageID: image.id, teamID: ann.team.id) == nil)
            #expect(api.vectors.count == 0)
            #expect(try api.blobFiles().isEmpty)
        }
    }

    @Test("another team's image is 404 on every image route")
    func crossTeam() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let bob = try await client.member(email: "bob@example.com")
            let image = try await client.uploadProcessed("sunset.jpg", key: ann.key)
            #expect(try await client.getImage(image.id, key: bob.key).status == .notFound)
            #expect(try await client.download(image.id, key: bob.key).status == .notFound)
            #expect(try await client.thumbnail(image.id, key: bob.key).status == .notFound)
            #expect(try await client.updateImage(image.id, json: #"{"tags": ["x"]}"#, key: bob.key).status == .notFound)
            #expect(try await client.reprocess(image.id, key: bob.key).status == .notFound)
            #expect(try await client.deleteImage(image.id, key: bob.key).status == .notFound)
            let similar = try await client.search(json: #"{"image_id": "\#(image.id.lowercasedString)"}"#, key: bob.key)
            #expect(similar.status == .notFound)
            let text = try await client.search("?q=sunset&similarity_threshold=0", key: bob.key)
                .decode(SearchReply.self)
            #expect(text.total == 0)
            // Nothing changed for the owner.
            let owned = try await client.getImage(image.id, key: ann.key).decode(ImageRecord.self)
            #expect(owned == image)
            // A team that still holds images cannot be deleted, even once it has no users.
            #expect(try await client.deleteUser(ann.user.id.lowercasedString).status == .noContent)
            let teamDeletion = try await client.deleteTeam(ann.team.id.lowercasedString)
            #expect(teamDeletion.status == .conflict)
        }
    }
}

extension TestAPI {
    /// Every file under the blob folder, staging area included.
    func blobFiles() throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: blobFolder) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { path in
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: blobFolder + "/" + path, isDirectory: &isFolder)
            return !isFolder.boolValue
        }
    }
}
