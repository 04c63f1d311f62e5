import EmbeddedVectorIndex
import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import SQLiteStorage
import TestSupport
import Testing

@Suite("Search")
struct SearchTests {
    /// Three fixtures with words to find: a described and tagged sunset, a described lake, a tagged forest.
    static func uploadDescribedFixtures(_ client: APIClient, key: String) async throws {
        _ = try await client.upload(
            "sunset.jpg", fields: [("description", "A red sunset over the fields"), ("tags", "evening")], key: key)
        _ = try await client.upload("lake.png", fields: [("description", "A calm lake")], key: key)
        _ = try await client.upload("forest.webp", fields: [("tags", "trees,green")], key: key)
    }

    @Test(
        "text mode: words of the description, tags, file name and EXIF, scored 0-1", arguments: TestAPI.metadataBackends
    )
    func textMode(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            try await Self.uploadDescribedFixtures(client, key: ann.key)

            let sunset = try await client.search("?q=red%20sunset", key: ann.key).decode(SearchReply.self)
            #expect(sunset.mode == "text")
            #expect(sunset.filenames == ["sunset.jpg"])
            #expect(sunset.results[0].score >= 0.7 && sunset.results[0].score <= 1)
            #expect(sunset.similarity_threshold == 0.7 && sunset.limit == 10 && sunset.skip == 0)
            #expect(sunset.query == "red sunset" && sunset.model == nil)
            #expect(
                sunset.notice?.contains("make model") == true, "a words-only answer says how to get semantic search")
            // As HTML forms write it: + is a space, %2B a plus.
            let plussed = try await client.search("?q=red+sunset", key: ann.key).decode(SearchReply.self)
            #expect(plussed.query == "red sunset" && plussed.filenames == ["sunset.jpg"])
            #expect(try await client.search("?q=C%2B%2B", key: ann.key).decode(SearchReply.self).query == "C++")

            #expect(
                try await client.search("?q=GREEN", key: ann.key).decode(SearchReply.self).filenames == ["forest.webp"])
            #expect(try await client.search("?q=lake", key: ann.key).decode(SearchReply.self).filenames == ["lake.png"])
            #expect(
                try await client.search("?q=acme", key: ann.key).decode(SearchReply.self).filenames == ["sunset.jpg"])
            #expect(
                try await client.search("?q=even", key: ann.key).decode(SearchReply.self).filenames == ["sunset.jpg"])

            // A partial match (one word of two) scores below 0.7: hidden by default, shown at 0.
            let partial = try await client.search("?q=calm%20sunset", key: ann.key).decode(SearchReply.self)
            #expect(partial.total == 0)
            let everything = try await client.search("?q=calm%20sunset&similarity_threshold=0", key: ann.key)
                .decode(SearchReply.self)
            #expect(Set(everything.filenames) == ["lake.png", "sunset.jpg"])
            #expect(everything.results.allSatisfy { $0.score >= 0.35 && $0.score < 0.7 })
            // Operators in user text are words, not FTS syntax.
            #expect(try await client.search("?q=%22red%22%20OR%20NEAR(", key: ann.key).status == .ok)
        }
    }

    @Test(
        "query syntax: quoted phrases, -exclusions, tag: and camera: fields, never backend syntax",
        arguments: TestAPI.metadataBackends)
    func querySyntax(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            try await Self.uploadDescribedFixtures(client, key: ann.key)
            func found(_ typed: String, threshold: Double = 0) async throws -> [String] {
                let text = typed.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let reply = try await client.search("?q=\(text)&similarity_threshold=\(threshold)", key: ann.key)
                #expect(reply.status == .ok, "\(typed)")
                return try reply.decode(SearchReply.self).filenames.sorted()
            }
            #expect(try await found(#""red sunset""#, threshold: 0.7) == ["sunset.jpg"])
            #expect(try await found(#""sunset red""#).isEmpty, "a phrase keeps its order")
            #expect(try await found("calm sunset") == ["lake.png", "sunset.jpg"])
            #expect(try await found("calm sunset -fields") == ["lake.png"])
            #expect(try await found(#"calm sunset -"red sunset""#) == ["lake.png"])
            #expect(try await found("calm sunset -fie") == ["lake.png"], "an exclusion is a word prefix")
            #expect(try await found("tag:evening sunset") == ["sunset.jpg"])
            #expect(try await found("tag:green sunset").isEmpty, "tag: is a filter")
            #expect(try await found("TAG:Evening", threshold: 0.7) == ["sunset.jpg"])
            #expect(try await found("camera:acme calm sunset") == ["sunset.jpg"])
            #expect(try await found("camera:nikon sunset").isEmpty)
            #expect(try await found("-sunset").isEmpty, "nothing to search for but an exclusion")
            #expect(try await found(#"" OR NEAR( -"* AND tag:"#).isEmpty)
        }
    }

    @Test(
        "similar mode: look-alikes rank first, the query image and unprocessed images are left out",
        arguments: TestAPI.metadataBackends)
    func similarMode(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let sunset = try await client.uploadProcessed("sunset.jpg", key: ann.key)
            _ = try await client.uploadProcessed("sunset-small.jpg", key: ann.key)
            _ = try await client.uploadProcessed("lake.png", key: ann.key)
            _ = try await client.uploadProcessed("forest.webp", key: ann.key)
            let pending = try await client.upload("sunset.tiff", key: ann.key).decode(ImageRecord.self)

            let body = #"{"image_id": "\#(sunset.id.lowercasedString)", "similarity_threshold": 0}"#
            let reply = try await client.search(json: body, key: ann.key).decode(SearchReply.self)
            #expect(reply.mode == "similar" && reply.model == "visual-features-v1")
            #expect(reply.filenames.first == "sunset-small.jpg")
            #expect(!reply.filenames.contains("sunset.jpg"))
            #expect(!reply.results.contains { $0.image.id == pending.id })
            #expect(reply.results[0].score > 0.95)
            #expect(reply.results.map(\.score) == reply.results.map(\.score).sorted(by: >))
            // The default threshold keeps the near-duplicate and drops the unrelated scenes.
            let defaults = try await client.search(
                json: #"{"image_id": "\#(sunset.id.lowercasedString)"}"#, key: ann.key
            )
            .decode(SearchReply.self)
            #expect(defaults.filenames == ["sunset-small.jpg"])

            let notYet = try await client.search(
                json: #"{"image_id": "\#(pending.id.lowercasedString)"}"#, key: ann.key)
            #expect(notYet.status == .conflict)
        }
    }

    @Test("similar mode filters in the index: tags and retags count in total; pages slice the ranking")
    func similarFiltersAndTotals() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let query = try await client.uploadProcessed("sunset.jpg", key: ann.key)
            var tagged: [ImageRecord] = []
            for (index, fixture) in ["sunset-small.jpg", "lake.png", "forest.webp", "sunset.tiff"].enumerated() {
                tagged.append(
                    try await client.uploadProcessed(
                        fixture, fields: [("tags", index < 3 ? "trip" : "home")], key: ann.key))
            }
            func similar(_ extra: String) async throws -> SearchReply {
                let body = #"{"image_id": "\#(query.id.lowercasedString)", "similarity_threshold": 0\#(extra)}"#
                return try await client.search(json: body, key: ann.key).decode(SearchReply.self)
            }
            let all = try await similar("")
            #expect(all.total == 4 && all.results.count == 4)
            let trip = try await similar(#", "tags": ["trip"]"#)
            #expect(trip.total == 3 && Set(trip.results.map(\.image.id)) == Set(tagged.prefix(3).map(\.id)))
            let second = try await similar(#", "tags": ["trip"], "skip": 1, "limit": 1"#)
            #expect(second.total == 3 && second.results.map(\.image.id) == [trip.results[1].image.id])
            // Retagging reaches the index: the image leaves the "trip" matches and their total.
            let retag = try await client.updateImage(tagged[0].id, json: #"{"tags": ["home"]}"#, key: ann.key)
            #expect(retag.status == .ok)
            let after = try await similar(#", "tags": ["trip"]"#)
            #expect(after.total == 2 && !after.results.contains { $0.image.id == tagged[0].id })
        }
    }

    @Test("filters: collection, tags and upload dates; paging with a total")
    func filtersAndPaging() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let collection = try await client.makeCollection("Holidays", key: ann.key)
            let elsewhere = try await client.makeCollection("Elsewhere", key: ann.key)
            let start = api.clock.now()
            for index in 0..<5 {
                _ = try await client.upload(
                    data: try Fixture.data("sunset.jpg") + Data([UInt8(index)]), filename: "photo-\(index).jpg",
                    fields: [
                        ("description", "holiday photo"), ("tags", index.isMultiple(of: 2) ? "even" : "odd"),
                        ("collection_id", index < 3 ? collection.uuidString : elsewhere.uuidString),
                    ], key: ann.key)
                api.clock.advance(days: 1)
            }
            let page = try await client.search("?q=holiday&limit=2&skip=1", key: ann.key).decode(SearchReply.self)
            #expect(page.total == 5 && page.results.count == 2 && page.skip == 1)
            let inCollection = try await client.search(
                "?q=holiday&collection_id=\(collection.lowercasedString)", key: ann.key
            ).decode(SearchReply.self)
            #expect(inCollection.total == 3)
            let tagged = try await client.search(json: #"{"query": "holiday", "tags": ["Even"]}"#, key: ann.key)
                .decode(SearchReply.self)
            #expect(Set(tagged.filenames) == ["photo-0.jpg", "photo-2.jpg", "photo-4.jpg"])
            let from = JSONCoding.timestamp(start.addingTimeInterval(86_400))
            let to = JSONCoding.timestamp(start.addingTimeInterval(3 * 86_400))
            let dated = try await client.search(
                json: #"{"query": "holiday", "uploaded_from": "\#(from)", "uploaded_to": "\#(to)"}"#, key: ann.key
            ).decode(SearchReply.self)
            #expect(Set(dated.filenames) == ["photo-1.jpg", "photo-2.jpg", "photo-3.jpg"])
        }
    }

    @Test("bad search input is a 422 naming the field")
    func validation() async throws {
        let api = try TestAPI()
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let cases: [(String, [String])] = [
                ("", ["query", "q"]), ("?q=%20", ["query", "q"]), ("?q=a&limit=51", ["query", "limit"]),
                ("?q=a&limit=0", ["query", "limit"]), ("?q=a&skip=-1", ["query", "skip"]),
                ("?q=a&similarity_threshold=1.5", ["query", "similarity_threshold"]),
                ("?q=a&similarity_threshold=x", ["query", "similarity_threshold"]),
                ("?q=a&collection_id=x", ["query", "collection_id"]),
            ]
            for (query, location) in cases {
                let reply = try await client.search(query, key: ann.key)
                #expect(reply.status == .unprocessableContent, "\(query)")
                #expect(reply.issues.first?.loc == location, "\(query)")
            }
            let both = try await client.search(json: #"{"query": "a", "image_id": "\#(UUID())"}"#, key: ann.key)
            #expect(both.status == .unprocessableContent)
            let neither = try await client.search(json: #"{"limit": 5}"#, key: ann.key)
            #expect(neither.status == .unprocessableContent)
            let blank = try await client.search(json: #"{"query": " ", "image_id": "\#(UUID())"}"#, key: ann.key)
            #expect(blank.status == .unprocessableContent)
            #expect(blank.issues.first?.loc == ["body", "query"])
            // `null` means "not given", as the OpenAPI document says: the defaults apply.
            let nulls = try await client.search(
                json: #"{"query": "a", "image_id": null, "skip": null, "limit": null, "similarity_threshold": null}"#,
                key: ann.key)
            #expect(nulls.status == .ok)
            let defaults = try JSONSerialization.jsonObject(with: nulls.body) as? [String: Any]
            #expect(defaults?["skip"] as? Int == 0 && defaults?["limit"] as? Int == 10)
            let dates = try await client.search(
                json:
                    #"{"query": "a", "uploaded_from": "2025-02-01T00:00:00Z", "uploaded_to": "2025-01-01T00:00:00Z"}"#,
                key: ann.key)
            // An inverted date range is empty: it matches nothing, as the OpenAPI document allows.
            #expect(dates.status == .ok)
            #expect((try JSONSerialization.jsonObject(with: dates.body) as? [String: Any])?["total"] as? Int == 0)
            // Punctuation alone has no words to match in text mode: nothing is found, no error.
            let punctuation = try await client.search("?q=%21%21", key: ann.key)
            #expect(punctuation.status == .ok)
            #expect((try JSONSerialization.jsonObject(with: punctuation.body) as? [String: Any])?["total"] as? Int == 0)
            #expect(try await client.search("?q=a", key: nil).status == .unauthorized)
        }
    }
}

@Suite("Embedded vector index")
struct VectorIndexTests {
    func unit(_ values: [Float]) -> [Float] {
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }

    @Test("a second process's index sees vectors written and deleted by the first")
    func crossProcess() async throws {
        let api = try TestAPI()
        let other = try SQLiteVectorIndex(path: api.databasePath)
        let team = TeamID()
        let (a, b) = (ImageID(), ImageID())
        try await api.vectors.upsert(
            VectorEntry(
                imageID: a, teamID: team, collectionID: nil, tags: [], createdAt: Date(), model: "m",
                vector: unit([1, 0, 0])))
        try await api.vectors.upsert(
            VectorEntry(
                imageID: b, teamID: team, collectionID: nil, tags: [], createdAt: Date(), model: "m",
                vector: unit([1, 1, 0])))
        var hits = try await other.search(
            VectorQuery(
                vector: unit([1, 0.1, 0]), model: "m", teamID: team, filter: ImageFilter(collectionID: nil),
                minimumCosine: -1, limit: 10)
        ).hits
        #expect(hits.map(\.imageID) == [a, b])
        try await api.vectors.delete(imageID: a)
        hits = try await other.search(
            VectorQuery(
                vector: unit([1, 0.1, 0]), model: "m", teamID: team, filter: ImageFilter(collectionID: nil),
                minimumCosine: -1, limit: 10)
        ).hits
        #expect(hits.map(\.imageID) == [b])
        // Another team, another model and a collection filter never leak in.
        try await api.vectors.upsert(
            VectorEntry(
                imageID: ImageID(), teamID: TeamID(), collectionID: nil, tags: [], createdAt: Date(), model: "m",
                vector: unit([1, 0, 0])))
        try await api.vectors.upsert(
            VectorEntry(
                imageID: ImageID(), teamID: team, collectionID: nil, tags: [], createdAt: Date(), model: "n",
                vector: unit([1, 0, 0])))
        hits = try await other.search(
            VectorQuery(
                vector: unit([1, 0, 0]), model: "m", teamID: team, filter: ImageFilter(collectionID: nil),
                minimumCosine: -1, limit: 10)
        ).hits
        #expect(hits.map(\.imageID) == [b])
        hits = try await other.search(
            VectorQuery(
                vector: unit([1, 0, 0]), model: "m", teamID: team, filter: ImageFilter(collectionID: UUID()),
                minimumCosine: -1, limit: 10)
        ).hits
        #expect(hits.isEmpty)
    }

    @Test("a repeated query is answered from memory until a write, in any process, changes the index")
    func rememberedAnswers() async throws {
        let api = try TestAPI()
        let other = try SQLiteVectorIndex(path: api.databasePath)
        let team = TeamID()
        let image = ImageID()
        try await api.vectors.upsert(
            VectorEntry(
                imageID: image, teamID: team, collectionID: nil, tags: [], createdAt: Date(), model: "m",
                vector: unit([1, 0, 0])))
        let tagged = VectorQuery(
            vector: unit([1, 0, 0]), model: "m", teamID: team, filter: ImageFilter(tags: ["x"]), minimumCosine: -1,
            limit: 10)
        #expect(try await other.search(tagged).hits.isEmpty)
        #expect(try await other.search(tagged).hits.isEmpty)
        #expect(other.answeredFromMemory == 1)
        // Retagged by the first process: the remembered answer is not used.
        try await api.vectors.updatePayload(imageID: image, collectionID: nil, tags: ["x"])
        #expect(try await other.search(tagged).hits.map(\.imageID) == [image])
        #expect(other.answeredFromMemory == 1)
        // Another query is another answer; the same one again comes from memory.
        var shifted = tagged
        shifted.minimumCosine = 0.5
        #expect(try await other.search(shifted).hits.map(\.imageID) == [image])
        #expect(try await other.search(tagged).hits.map(\.imageID) == [image])
        #expect(other.answeredFromMemory == 2)
    }

    @Test("exact top-k matches a brute-force ranking; a trimmed change log forces a full reload")
    func exactAndReload() async throws {
        let api = try TestAPI()
        let other = try SQLiteVectorIndex(path: api.databasePath)
        let team = TeamID()
        var generator = SeededGenerator(seed: 20_261_130)
        var stored: [(ImageID, [Float])] = []
        for _ in 0..<300 {
            let vector = unit((0..<32).map { _ in Float.random(in: -1...1, using: &generator) })
            let id = ImageID()
            stored.append((id, vector))
            try await api.vectors.upsert(
                VectorEntry(
                    imageID: id, teamID: team, collectionID: nil, tags: [], createdAt: Date(), model: "m",
                    vector: vector))
        }
        let query = unit((0..<32).map { _ in Float.random(in: -1...1, using: &generator) })
        let expected = stored.map { ($0.0, zip($0.1, query).reduce(0) { $0 + $1.0 * $1.1 }) }
            .sorted { $0.1 > $1.1 }.prefix(10)
        let hits = try await other.search(
            VectorQuery(
                vector: query, model: "m", teamID: team, filter: ImageFilter(collectionID: nil), minimumCosine: -1,
                limit: 10)
        ).hits
        #expect(hits.map(\.imageID) == expected.map(\.0), "\(generator)")
        for (hit, want) in zip(hits, expected) { #expect(abs(hit.cosine - want.1) < 1e-5) }
        let above = try await other.search(
            VectorQuery(
                vector: query, model: "m", teamID: team, filter: ImageFilter(collectionID: nil), minimumCosine: 0.2,
                limit: 1000)
        ).hits
        #expect(above.count == stored.filter { zip($0.1, query).reduce(0) { $0 + $1.0 * $1.1 } >= 0.2 }.count)

        // Far more writes than the change log keeps: the other index reloads and stays exact.
        for round in 0..<(SQLiteVectorIndex.retainedChanges / 300 + 2) {
            for (id, vector) in stored {
                try await api.vectors.upsert(
                    VectorEntry(
                        imageID: id, teamID: team, collectionID: round % 2 == 0 ? nil : team.uuid, tags: [],
                        createdAt: Date(), model: "m", vector: vector
                    ))
            }
        }
        try await api.vectors.delete(imageID: stored[0].0)
        let after = try await other.search(
            VectorQuery(
                vector: query, model: "m", teamID: team, filter: ImageFilter(collectionID: nil), minimumCosine: -1,
                limit: 1000)
        ).hits
        #expect(after.count == 299)
        #expect(other.count == 299)
    }
}
