import Foundation
import FunctionHosting
import ImageAPICore
import TestSupport
import Testing

@Suite("Near-duplicate endpoints")
struct NearDuplicateEndpointTests {
    /// Uploads a generated picture at a size and processes it.
    static func uploadPicture(
        _ client: APIClient, seed: UInt64, width: Int, height: Int, key: String
    ) async throws -> ImageRecord {
        let reply = try await client.upload(
            data: GeneratedPicture(seed: seed).png(width: width, height: height),
            filename: "picture-\(seed)-\(width).png", key: key)
        #expect(reply.status == .created, "\(String(decoding: reply.body, as: UTF8.self))")
        let image = try reply.decode(ImageRecord.self)
        try await client.deliver()
        return try await client.getImage(image.id, key: key).decode(ImageRecord.self)
    }

    @Test(
        "an image's near-duplicates and the team's groups: resized copies found, others not, other teams never",
        arguments: TestAPI.metadataBackends)
    func duplicatesAndGroups(metadata: BackendSelection.Metadata) async throws {
        try await TestAPI(metadata: metadata).run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let bob = try await client.member(email: "bob@example.com")
            // Picture 1 at three sizes, picture 2 at two, pictures 3 and 4 once.
            var images: [ImageRecord] = []
            for (seed, width, height) in [(1, 480, 360), (1, 240, 180), (1, 120, 90), (2, 400, 400), (2, 100, 100)] {
                images.append(
                    try await Self.uploadPicture(client, seed: UInt64(seed), width: width, height: height, key: ann.key)
                )
            }
            for seed in [3, 4] {
                images.append(
                    try await Self.uploadPicture(client, seed: UInt64(seed), width: 300, height: 200, key: ann.key))
            }
            #expect(images.allSatisfy { $0.phash?.hex.count == 16 })
            let elsewhere = try await Self.uploadPicture(client, seed: 1, width: 480, height: 360, key: bob.key)

            let near = try await client.nearDuplicates(images[0].id, key: ann.key).decode(NearDuplicatesReply.self)
            #expect(Set(near.duplicates.map(\.image.id)) == [images[1].id, images[2].id])
            #expect(near.total == 2 && near.max_distance == 8)
            #expect(near.duplicates.map(\.distance) == near.duplicates.map(\.distance).sorted())
            #expect(near.duplicates.allSatisfy { $0.distance == $0.image.phash?.distance(to: images[0].phash!) })
            // An exact match only, and a page past the first.
            let exact = try await client.nearDuplicates(images[0].id, query: "?max_distance=0", key: ann.key)
            #expect(try exact.decode(NearDuplicatesReply.self).duplicates.allSatisfy { $0.distance == 0 })
            let second = try await client.nearDuplicates(images[0].id, query: "?skip=1&limit=1", key: ann.key)
                .decode(NearDuplicatesReply.self)
            #expect(second.duplicates.map(\.image.id) == [near.duplicates[1].image.id] && second.total == 2)

            let groups = try await client.nearDuplicateGroups(key: ann.key).decode(NearDuplicateGroupsReply.self)
            #expect(groups.groups.map(\.size) == [3, 2] && groups.total == 2)
            #expect(
                groups.groups.map { Set($0.images.map(\.id)) }
                    == [Set(images[0...2].map(\.id)), [images[3].id, images[4].id]])
            let bobs = try await client.nearDuplicateGroups(key: bob.key).decode(NearDuplicateGroupsReply.self)
            #expect(bobs.groups.isEmpty && bobs.total == 0)
            // The other team's copy is neither listed nor reachable.
            #expect(
                try await client.nearDuplicates(elsewhere.id, key: bob.key).decode(NearDuplicatesReply.self).total == 0)
            #expect(try await client.nearDuplicates(images[0].id, key: bob.key).status == .notFound)
        }
    }

    @Test("an image not processed yet is a 409; a bad distance or an unknown parameter a 422")
    func refusals() async throws {
        try await TestAPI().run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let pending = try await client.upload(
                data: GeneratedPicture(seed: 5).png(width: 64, height: 64), filename: "p.png", key: ann.key
            ).decode(ImageRecord.self)
            let unhashed = try await client.nearDuplicates(pending.id, key: ann.key)
            #expect(unhashed.status == .conflict)
            #expect(unhashed.detail?.contains("no perceptual hash yet") == true)
            for query in ["?max_distance=13", "?max_distance=-1", "?max_distance=x", "?distance=3"] {
                #expect(
                    try await client.nearDuplicateGroups(query: query, key: ann.key).status == .unprocessableContent,
                    "\(query)")
                #expect(
                    try await client.nearDuplicates(pending.id, query: query, key: ann.key).status
                        == .unprocessableContent)
            }
            #expect(try await client.nearDuplicates(ImageID(), key: ann.key).status == .notFound)
            #expect(try await client.nearDuplicateGroups(key: nil).status == .unauthorized)
        }
    }
}

struct NearDuplicatesReply: Decodable {
    struct Match: Decodable {
        let image: ImageRecord
        let distance: Int
    }
    let image_id: ImageID
    let max_distance: Int
    let duplicates: [Match]
    let total: Int
}

struct NearDuplicateGroupsReply: Decodable {
    struct Group: Decodable {
        let size: Int
        let images: [ImageRecord]
    }
    let max_distance: Int
    let groups: [Group]
    let total: Int
}

extension APIClient {
    func nearDuplicates(_ id: ImageID, query: String = "", key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/images/\(id.lowercasedString)/duplicates\(query)", key: key)
    }
    func nearDuplicateGroups(query: String = "", key: String?) async throws -> Reply {
        try await send(.get, "/api/v1/images/duplicates\(query)", key: key)
    }
}
