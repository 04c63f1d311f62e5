import Foundation
import ImageAPICore
import RuntimeSupport
import Testing

@Suite("Typed identifiers")
struct IdentifierTests {
    @Test("identifiers are written in lower case and read in any case")
    func lowerCaseOnTheWire() throws {
        let id = try #require(TeamID("9F1C2D3E-4A5B-4C6D-8E7F-0A1B2C3D4E5F"))
        let json = String(decoding: try JSONCoding.makeEncoder().encode(["team_id": id]), as: UTF8.self)
        #expect(json == #"{"team_id":"9f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f"}"#)
        let read = try JSONDecoder().decode([String: TeamID].self, from: Data(json.uppercased().utf8))
        #expect(read.values.first == id)
        #expect("\(id)" == "9f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f")
    }

    @Test("a value that is not a UUID is a decoding error naming the field")
    func invalidText() {
        #expect(UserID("not-a-uuid") == nil)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([String: UserID].self, from: Data(#"{"user_id":"nope"}"#.utf8))
        }
    }

    @Test("a record written with typed identifiers reads back equal")
    func recordRoundTrip() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let user = User(
            id: UserID(), email: "a@example.com", name: "A", teamID: TeamID(), isAdmin: false, isActive: true,
            createdAt: now, updatedAt: now)
        let data = try JSONCoding.makeEncoder().encode(user)
        #expect(!String(decoding: data, as: UTF8.self).contains(user.id.uuid.uuidString))
        #expect(try JSONCoding.makeDecoder().decode(User.self, from: data) == user)
    }
}
