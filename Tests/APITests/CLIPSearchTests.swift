import CLIPEmbedding
import CLIPInference
import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageHosting
import ImageProcessing
import Logging
import Testing

/// The fixture CLIP model (tiny, random weights: rankings mean nothing, the wiring and scores do).
enum TinyCLIP {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/clip-tiny")

    static func embedder() throws -> CLIPEmbedder {
        try CLIPEmbedder(directory: directory, threads: 2, logger: Logger(label: "test-clip"))
    }

    static func dot(_ left: [Float], _ right: [Float]) -> Float {
        zip(left, right).reduce(0) { $0 + $1.0 * $1.1 }
    }
}

@Suite("Search with the CLIP engine")
struct CLIPSearchTests {
    @Test("text queries are semantic, scored by the documented logistic map of the cosine")
    func semanticScores() async throws {
        let embedder = try TinyCLIP.embedder()
        let api = try TestAPI(embedder: embedder)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            var vectors: [String: [Float]] = [:]
            for fixture in ["sunset.jpg", "lake.png", "forest.webp"] {
                let image = try await client.uploadProcessed(fixture, key: ann.key)
                #expect(image.embeddingStatus == .success && image.embeddingModel == embedder.modelID)
                #expect(image.embeddingDimensions == 24)
                vectors[fixture] = try await embedder.embed(image: try Fixture.data(fixture))
            }
            let query = "a dog on a beach"
            let text = try await embedder.embed(text: query)
            let reply = try await client.search(
                "?q=a%20dog%20on%20a%20beach&similarity_threshold=0&mode=semantic", key: ann.key
            )
            .decode(SearchReply.self)
            #expect(reply.mode == "semantic" && reply.model == embedder.modelID && reply.total == 3)
            #expect(
                reply.results.map(\.semantic_rank) == [1, 2, 3] && reply.results.allSatisfy { $0.text_rank == nil })
            #expect(reply.notice == nil)
            for result in reply.results {
                let cosine = TinyCLIP.dot(text, try #require(vectors[result.image.filename]))
                #expect(abs(result.score - CLIPEmbedder.textScale.score(cosine: cosine)) < 1e-5)
            }
            #expect(reply.results.map(\.score) == reply.results.map(\.score).sorted(by: >))
            // A threshold between two scores keeps exactly the images above it.
            let cut = (reply.results[0].score + reply.results[1].score) / 2
            let above = try await client.search(
                json: #"{"query": "\#(query)", "similarity_threshold": \#(cut), "mode": "semantic"}"#, key: ann.key
            )
            .decode(SearchReply.self)
            #expect(above.filenames == [reply.results[0].image.filename])

            // image_id queries compare image embeddings; the score is the cosine itself.
            let sunsetID = try #require(reply.results.first { $0.image.filename == "sunset.jpg" }?.image.id)
            let similar = try await client.search(
                json: #"{"image_id": "\#(sunsetID.lowercasedString)", "similarity_threshold": 0}"#, key: ann.key
            ).decode(SearchReply.self)
            #expect(similar.mode == "similar" && Set(similar.filenames) == ["lake.png", "forest.webp"])
            for result in similar.results {
                let cosine = TinyCLIP.dot(
                    try #require(vectors["sunset.jpg"]), try #require(vectors[result.image.filename]))
                #expect(abs(result.score - max(0, Double(cosine))) < 1e-5)
            }
        }
    }

    @Test(
        "hybrid is the default text mode: both rankings fused by Reciprocal Rank Fusion, each result saying where each placed it",
        arguments: TestAPI.metadataBackends)
    func hybridRanking(metadata: BackendSelection.Metadata) async throws {
        let api = try TestAPI(embedder: try TinyCLIP.embedder(), metadata: metadata)
        try await api.run { (client) async throws in
            let ann = try await client.member(email: "ann@example.com")
            let bob = try await client.member(email: "bob@example.com")
            for fixture in ["sunset.jpg", "lake.png", "forest.webp"] {
                _ = try await client.uploadProcessed(
                    fixture, fields: fixture == "lake.png" ? [("tags", "zebra")] : [], key: ann.key)
            }
            _ = try await client.uploadProcessed("sunset-small.jpg", fields: [("tags", "zebra")], key: bob.key)
            func search(_ query: String) async throws -> SearchReply {
                try await client.search(query, key: ann.key).decode(SearchReply.self)
            }

            // The word is a tag of one image: it comes first, whatever the embeddings say.
            let semantic = try await search("?q=zebra&similarity_threshold=0&mode=semantic")
            let hybrid = try await search("?q=zebra&similarity_threshold=0")
            #expect(hybrid.mode == "hybrid" && hybrid.model == semantic.model && hybrid.notice == nil)
            #expect(hybrid.total == 3 && Set(hybrid.filenames) == Set(semantic.filenames))
            #expect(hybrid.filenames.first == "lake.png")
            let ranking = HybridRanking()
            let semanticPlaces = Dictionary(
                uniqueKeysWithValues: semantic.results.map { ($0.image.filename, ($0.semantic_rank, $0.score)) })
            for result in hybrid.results {
                let (rank, score) = try #require(semanticPlaces[result.image.filename])
                #expect(result.semantic_rank == rank)
                #expect(abs((result.semantic_score ?? -1) - score) < 1e-9)
                #expect(result.text_rank == (result.image.filename == "lake.png" ? 1 : nil))
                #expect(
                    abs(result.score - ranking.score(semanticRank: result.semantic_rank, textRank: result.text_rank))
                        < 1e-9)
            }
            #expect(hybrid.results.map(\.score) == hybrid.results.map(\.score).sorted(by: >))
            let paged = try await search("?q=zebra&similarity_threshold=0&skip=1&limit=1")
            #expect(paged.filenames == [hybrid.filenames[1]] && paged.total == 3)

            // No metadata matches: the semantic order, unchanged.
            let plain = try await search("?q=xylophones&similarity_threshold=0")
            let plainSemantic = try await search("?q=xylophones&similarity_threshold=0&mode=semantic")
            #expect(plain.mode == "hybrid" && plain.filenames == plainSemantic.filenames)
            #expect(plain.results.allSatisfy { $0.text_rank == nil && $0.text_score == nil })

            // The threshold applies to each ranking's own score; total counts the union exactly.
            let strict = try await search("?q=zebra&similarity_threshold=0.99&mode=semantic")
            let strictHybrid = try await client.search(
                json: #"{"query": "zebra", "similarity_threshold": 0.99}"#, key: ann.key
            ).decode(SearchReply.self)
            #expect(strictHybrid.total == Set(strict.filenames + ["lake.png"]).count)
            #expect(strictHybrid.filenames.first == "lake.png" && strictHybrid.results[0].text_score == 1)

            // Mode text answers by the words alone, without a notice: the embedder could have read it.
            let words = try await search("?q=zebra&mode=text")
            #expect(words.mode == "text" && words.filenames == ["lake.png"] && words.notice == nil)
            #expect(words.results[0].text_rank == 1 && words.results[0].semantic_rank == nil)

            // An image's likeness has one mode; a text cannot ask for it.
            let lake = try #require(hybrid.results.first { $0.image.filename == "lake.png" }?.image)
            let wrong = try await client.search(
                json: #"{"image_id": "\#(lake.id.lowercasedString)", "mode": "hybrid"}"#, key: ann.key)
            #expect(wrong.status == .unprocessableContent)
            #expect(String(decoding: wrong.body, as: UTF8.self).contains(#""loc":["body","mode"]"#))
            #expect(try await client.search("?q=zebra&mode=similar", key: ann.key).status == .unprocessableContent)
            let unknown = try await client.search("?q=zebra&mode=fuzzy", key: ann.key)
            #expect(unknown.status == .unprocessableContent)
            #expect(String(decoding: unknown.body, as: UTF8.self).contains("fuzzy"))
        }
    }

    @Test("the relevance scales are monotonic and their cosine bounds invert them")
    func relevanceScales() {
        for scale in [RelevanceScale.shiftedCosine, .cosine, CLIPEmbedder.textScale] {
            var previous = -1.0
            for step in stride(from: Float(-1), through: 1, by: 0.01) {
                let score = scale.score(cosine: step)
                #expect(score >= previous && score >= 0 && score <= 1)
                previous = score
            }
            for threshold in [0.1, 0.5, 0.7, 0.9] {
                let bound = scale.minimumCosine(forScore: threshold)
                #expect(abs(scale.score(cosine: bound) - threshold) < 1e-4)
            }
            // A threshold of 0 keeps everything.
            #expect(scale.minimumCosine(forScore: 0) == -1)
        }
        // The documented anchors of the CLIP text scale.
        #expect(abs(CLIPEmbedder.textScale.minimumCosine(forScore: 0.7) - 0.2212) < 1e-3)
        #expect(CLIPEmbedder.textScale.score(cosine: 0.15) < 0.15)
        #expect(CLIPEmbedder.textScale.score(cosine: 0.25) > 0.85)
    }

    @Test("reprocess-all re-embeds a team's stale images with the new model, with progress")
    func reprocessAll() async throws {
        let before = try TestAPI(metadata: .sqlite)
        let (admin, other, member) = try await before.run { (client) async throws in
            let admin = try await client.member(email: "root@example.com", isAdmin: true)
            let member = try await client.member(of: admin.team, email: "ann@example.com")
            let other = try await client.member(email: "bob@example.com", isAdmin: true)
            _ = try await client.uploadProcessed("sunset.jpg", key: admin.key)
            _ = try await client.uploadProcessed("lake.png", key: member.key)
            _ = try await client.uploadProcessed("forest.webp", key: other.key)
            return (admin, other, member)
        }
        // The same data, reopened by a process that embeds with CLIP.
        let embedder = try TinyCLIP.embedder()
        let after = try TestAPI(embedder: embedder, reopening: before)
        try await after.run { (client) async throws in
            let stale = try await client.reprocessProgress(key: admin.key).decode(EmbeddingSummary.self)
            #expect(
                stale
                    == EmbeddingSummary(
                        model: embedder.modelID, total: 2, current: 0, stale: 2, pending: 0, processing: 0, failed: 0))
            let empty = try await client.search("?q=sunset&similarity_threshold=0&mode=semantic", key: admin.key)
                .decode(SearchReply.self)
            #expect(empty.mode == "semantic" && empty.total == 0)
            let staleImage = try #require(
                try await client.listImages(key: admin.key).decode(ListReply<ImageRecord>.self).items.first)
            let staleQuery = try await client.search(
                json: #"{"image_id": "\#(staleImage.id.lowercasedString)"}"#, key: admin.key)
            #expect(staleQuery.status == .conflict)
            #expect(String(decoding: staleQuery.body, as: UTF8.self).contains("reprocess-all"))

            #expect(try await client.reprocessAll(key: member.key).status == .forbidden)
            #expect(try await client.reprocessProgress(key: member.key).status == .forbidden)
            let bad = try await client.reprocessAll("?scope=everything", key: admin.key)
            #expect(bad.status == .unprocessableContent || bad.status == .badRequest)
            #expect(try await client.reprocessProgress(key: admin.key).decode(EmbeddingSummary.self) == stale)

            let started = try await client.reprocessAll(key: admin.key)
            #expect(started.status == .accepted)
            let body = try JSONSerialization.jsonObject(with: started.body) as? [String: Any]
            #expect(body?["queued"] as? Int == 2 && body?["scope"] as? String == "stale")
            let queued = try await client.reprocessProgress(key: admin.key).decode(EmbeddingSummary.self)
            #expect(queued.pending == 2 && queued.stale == 0)

            try await client.deliver()
            let done = try await client.reprocessProgress(key: admin.key).decode(EmbeddingSummary.self)
            #expect(done.current == 2 && done.total == 2 && done.pending == 0)
            let found = try await client.search("?q=sunset&similarity_threshold=0", key: admin.key)
                .decode(SearchReply.self)
            #expect(Set(found.filenames) == ["sunset.jpg", "lake.png"])

            // Nothing stale is left; `all` re-embeds everything again. The other team is untouched.
            let again = try await client.reprocessAll(key: admin.key)
            #expect((try JSONSerialization.jsonObject(with: again.body) as? [String: Any])?["queued"] as? Int == 0)
            let all = try await client.reprocessAll("?scope=all", key: admin.key)
            #expect((try JSONSerialization.jsonObject(with: all.body) as? [String: Any])?["queued"] as? Int == 2)
            let otherTeam = try await client.reprocessProgress(key: other.key).decode(EmbeddingSummary.self)
            #expect(otherTeam.total == 1 && otherTeam.stale == 1)
        }
    }
}

@Suite("Choosing the embedder")
struct EmbedderChoiceTests {
    let logger = Logger(label: "test")

    func settings(_ provider: EmbeddingProvider, directory: String) -> ImageSettings {
        ImageSettings(blobDirectory: "/tmp", embeddingProvider: provider, clipModelDirectory: directory, clipThreads: 1)
    }

    @Test("auto uses CLIP when the directory holds a model and the visual features when it is absent")
    func automatic() throws {
        let clip = try ImageHost.makeEmbedder(
            settings(.automatic, directory: TinyCLIP.directory.path), logger: logger)
        #expect(clip.supportsText && clip.modelID.hasPrefix("clip/clip-tiny@"))
        let absent = try ImageHost.makeEmbedder(
            settings(.automatic, directory: "/nonexistent/clip-model"), logger: logger)
        #expect(absent is VisualFeaturesEmbedder)
    }

    @Test("a broken model stops the process instead of falling back; clip without a model too")
    func brokenModel() throws {
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("clip-broken-\(UUID())")
        try FileManager.default.copyItem(at: TinyCLIP.directory, to: broken)
        defer { try? FileManager.default.removeItem(at: broken) }
        try FileManager.default.removeItem(at: broken.appendingPathComponent("merges.txt"))
        #expect(throws: CLIPModelError.self) {
            try ImageHost.makeEmbedder(self.settings(.automatic, directory: broken.path), logger: self.logger)
        }
        #expect(throws: CLIPModelError.self) {
            try ImageHost.makeEmbedder(self.settings(.clip, directory: "/nonexistent"), logger: self.logger)
        }
    }
}
