import FirestoreStorage
import Foundation
import Testing

/// An error of the tests' own.
struct Refusal: Error {}

@Suite("Firestore: the typed-value codec, and the REST client on Google's Firestore emulator")
struct FirestoreClientTests {
    /// Every kind of value the codec writes, nested too.
    static let everyKind: [String: FirestoreValue] = [
        "null": .null, "yes": .boolean(true), "count": .integer(-9_007_199_254_740_993),
        "ratio": .double(0.125), "huge": .double(.infinity),
        "at": .timestamp(Date(timeIntervalSince1970: 1_800_000_000.123456)),
        "name": .string("Zoë's \"café\" ✓"), "raw": .bytes(Data([0, 1, 2, 255])),
        "tags": .array([.string("a"), .integer(2), .map(["deep": .boolean(false)])]),
        "nested": .map(["when": .timestamp(Date(timeIntervalSince1970: 0)), "list": .array([])]),
    ]

    @Test("every kind of value survives JSON encoding and decoding; timestamps keep microseconds")
    func codecRoundTrip() throws {
        let data = try JSONEncoder().encode(Self.everyKind)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""integerValue":"-9007199254740993""#), "integers travel as strings")
        #expect(text.contains(#""timestampValue":"2027-01-15T08:00:00.123456Z""#))
        #expect(text.contains(#""doubleValue":"Infinity""#))
        let decoded = try JSONDecoder().decode([String: FirestoreValue].self, from: data)
        #expect(decoded == Self.everyKind)
        // What Firestore itself may send: nanoseconds, offsets, no fraction, NaN.
        let sent = try JSONDecoder().decode(
            [FirestoreValue].self,
            from: Data(
                #"[{"timestampValue":"2027-01-15T09:00:00.123456789+01:00"},{"timestampValue":"1970-01-01T00:00:00Z"},{"doubleValue":"NaN"},{"arrayValue":{}},{"mapValue":{}}]"#
                    .utf8))
        guard case .timestamp(let date) = sent[0] else { Issue.record("not a timestamp: \(sent[0])"); return }
        #expect(abs(date.timeIntervalSince1970 - 1_800_000_000.123456789) < 1e-6)
        #expect(sent[1] == .timestamp(Date(timeIntervalSince1970: 0)))
        guard case .double(let nan) = sent[2] else { Issue.record("not a double"); return }
        #expect(nan.isNaN)
        #expect(sent[3] == .array([]) && sent[4] == .map([:]))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(FirestoreValue.self, from: Data(#"{"integerValue":"1.5"}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(FirestoreValue.self, from: Data(#"{"stringValue":"a","integerValue":"1"}"#.utf8))
        }
        #expect(
            FirestoreValue.microseconds(Date(timeIntervalSince1970: 1.0000004))
                == Date(timeIntervalSince1970: 1.0))
    }

    @Test(
        "documents: what is written reads back field for field; create refuses an existing document, replace a missing one",
        .enabled(
            if: TestServers.firestoreEmulator != nil, "needs the Firestore emulator scripts/test-servers.sh starts"))
    func documents() async throws {
        let firestore = try TestServers.firestoreClient()
        try await firestore.commit([.create("things/one", Self.everyKind)])
        let read = try #require(try await firestore.document("things/one"))
        #expect(read.fields == Self.everyKind)
        #expect(read.id == "one" && read.name == firestore.name("things/one"))
        #expect(read.createTime != nil && read.updateTime != nil)
        #expect(try await firestore.document("things/none") == nil)

        let again = await #expect(throws: FirestoreError.self) {
            try await firestore.commit([.create("things/one", ["other": .boolean(true)])])
        }
        #expect(again?.code == "ALREADY_EXISTS")
        #expect(try await firestore.document("things/one")?.fields == Self.everyKind, "a failed commit wrote nothing")
        // All or nothing: one failing precondition keeps the other write out.
        await #expect(throws: FirestoreError.self) {
            try await firestore.commit([
                .create("things/two", ["n": .integer(2)]), .replace("things/missing", ["n": .integer(0)]),
            ])
        }
        #expect(try await firestore.document("things/two") == nil)
        // An update guarded by the time it was read fails once the document has changed.
        try await firestore.commit([.replace("things/one", ["n": .integer(1)])])
        await #expect(throws: FirestoreError.self) {
            try await firestore.commit([
                FirestoreWrite(
                    "things/one", .set(FirestoreDocument(fields: [:])), precondition: .unchanged(since: read))
            ])
        }
        // Unchanged since the last read, it takes the write.
        let current = try #require(try await firestore.document("things/one"))
        try await firestore.commit([
            FirestoreWrite(
                "things/one", .set(FirestoreDocument(fields: ["n": .integer(2)])),
                precondition: .unchanged(since: current))
        ])
        #expect(try await firestore.document("things/one")?.fields == ["n": .integer(2)])
        try await firestore.commit([FirestoreWrite("things/one", .delete)])
        #expect(try await firestore.document("things/one") == nil)
    }

    @Test(
        "queries: filters, order, offset and limit; count ignores the page; the emulator's reset empties the database",
        .enabled(
            if: TestServers.firestoreEmulator != nil, "needs the Firestore emulator scripts/test-servers.sh starts"))
    func queries() async throws {
        let firestore = try TestServers.firestoreClient()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var writes: [FirestoreWrite] = []
        for number in 0..<12 {
            let fields: [String: FirestoreValue] = [
                "team": .string(number % 3 == 0 ? "b" : "a"), "number": .integer(Int64(number)),
                "created": .timestamp(start.addingTimeInterval(Double(number))),
                "tags": .array([.string(number % 2 == 0 ? "even" : "odd")]),
            ]
            writes.append(.create("images/i\(number)", fields))
        }
        try await firestore.commit(writes)
        var query = FirestoreQuery(collection: "images")
        query.filters = [.init("team", .equal, .string("a")), .init("tags", .arrayContains, .string("even"))]
        query.orderBy = [("created", false)]
        query.offset = 1
        query.limit = 2
        let page = try await firestore.run(query)
        // Team a and even: 2, 4, 8, 10; newest first, skipping one: 8, 4.
        #expect(page.map(\.id) == ["i8", "i4"])
        #expect(try await firestore.count(query) == 4)
        var range = FirestoreQuery(collection: "images")
        range.filters = [
            .init("created", .greaterThanOrEqual, .timestamp(start.addingTimeInterval(3))),
            .init("created", .lessThan, .timestamp(start.addingTimeInterval(6))),
        ]
        range.orderBy = [("created", true)]
        #expect(try await firestore.run(range).map(\.id) == ["i3", "i4", "i5"])

        try await firestore.deleteAllDocumentsOnEmulator()
        #expect(try await firestore.count(FirestoreQuery(collection: "images")) == 0)
    }

    @Test(
        "transactions: 10 concurrent read-modify-writes of one document from two clients all land, contention retried",
        .enabled(
            if: TestServers.firestoreEmulator != nil, "needs the Firestore emulator scripts/test-servers.sh starts"))
    func transactions() async throws {
        let firestore = try TestServers.firestoreClient()
        // Two clients, as two processes would have: each runs its transactions one at a time,
        // and the emulator's locks settle who wins between them.
        let other = try TestServers.firestoreClient(project: TestServers.project(of: firestore))
        try await firestore.commit([.create("counters/c", ["n": .integer(0)])])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<10 {
                group.addTask {
                    try await (index % 2 == 0 ? firestore : other).withTransaction { transaction in
                        guard case .integer(let n)? = try await transaction.document("counters/c")?.fields["n"] else {
                            throw Refusal()
                        }
                        transaction.write(.replace("counters/c", ["n": .integer(n + 1)]))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await firestore.document("counters/c")?.fields["n"] == .integer(10))
        // A failure inside the body rolls back and writes nothing.
        await #expect(throws: Refusal.self) {
            try await firestore.withTransaction { transaction in
                transaction.write(.replace("counters/c", ["n": .integer(-1)]))
                _ = try await transaction.document("counters/c")
                throw Refusal()
            }
        }
        #expect(try await firestore.document("counters/c")?.fields["n"] == .integer(10))
    }
}
