import Foundation
import ImageAPICore
import RuntimeSupport
import Testing

@Suite("EncodesEveryField: answers name every field, null when absent, under the names decoding reads")
struct EveryFieldEncodingTests {
    static let date = Date(timeIntervalSince1970: 1_800_000_000.5)

    func object(_ value: some Encodable) throws -> [String: Any] {
        let data = try JSONCoding.makeEncoder().encode(value)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("property names in snake case, acronyms kept together")
    func snakeCase() {
        #expect(FieldKey.snakeCased("lastUsedAt") == "last_used_at")
        #expect(FieldKey.snakeCased("imageID") == "image_id")
        #expect(FieldKey.snakeCased("sha256") == "sha256")
        #expect(FieldKey.snakeCased("id") == "id")
    }

    @Test("an image with every optional absent: each is null; with every one set, it reads back the same")
    func imageRecord() throws {
        var image = ImageRecord(
            id: ImageID(), teamID: TeamID(), uploaderID: UserID(), collectionID: nil, filename: "a.jpg",
            contentType: "image/jpeg", format: "jpeg", fileSize: 10, width: 2, height: 3, orientation: nil,
            sha256: String(repeating: "ab", count: 32), description: nil, tags: [], exif: [:], createdAt: Self.date)
        let bare = try object(image)
        for field in [
            "collection_id", "orientation", "description", "embedding_error", "embedding_model", "embedding_dimensions",
            "embedded_at", "phash",
        ] {
            #expect(bare[field] is NSNull, "\(field) should be null")
        }
        #expect(bare.count == 24)
        let collection = UUID()
        image.collectionID = collection
        image.orientation = 6
        image.description = "A lake"
        image.tags = ["lake"]
        image.embeddingStatus = .success
        image.embeddingModel = "visual"
        image.embeddingDimensions = 4
        image.embeddedAt = Self.date
        image.phash = PerceptualHash(bits: 0x0123_4567_89ab_cdef)
        let full = try object(image)
        #expect(full["phash"] as? String == "0123456789abcdef")
        #expect(full["collection_id"] as? String == collection.uuidString.lowercased())
        #expect(full["id"] as? String == image.id.lowercasedString)
        let data = try JSONCoding.makeEncoder().encode(image)
        #expect(try JSONCoding.makeDecoder().decode(ImageRecord.self, from: data) == image)
    }

    @Test("a team and a key read back the same; a key's text is left out when absent, shown when present")
    func teamAndKey() throws {
        let team = Team(id: TeamID(), name: "Desk", description: nil, createdAt: Self.date, updatedAt: Self.date)
        #expect(try object(team)["description"] is NSNull)
        let data = try JSONCoding.makeEncoder().encode(team)
        #expect(try JSONCoding.makeDecoder().decode(Team.self, from: data) == team)

        let key = APIKey(
            id: APIKeyID(), name: "laptop", description: nil, prefix: "imk_0011", userID: UserID(), teamID: TeamID(),
            secretHash: Data([1]), createdAt: Self.date, expiresAt: Self.date, lastUsedAt: nil, isActive: true)
        let stored = try object(APIKeyView(key))
        #expect(stored["key"] == nil && stored["last_used_at"] is NSNull && stored["description"] is NSNull)
        #expect(try object(APIKeyView(key, plaintext: "imk_text"))["key"] as? String == "imk_text")
        let view = APIKeyView(key, plaintext: "imk_text")
        let viewData = try JSONCoding.makeEncoder().encode(view)
        #expect(try JSONCoding.makeDecoder().decode(APIKeyView.self, from: viewData) == view)
    }
}
