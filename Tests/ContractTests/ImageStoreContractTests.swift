import Foundation
import GRDB
import ImageAPICore
import Testing

@testable import SQLiteStorage

/// The contract of the image-store port (with its outbox and text search) and of the outbox
/// queue and dead letters, run against every backend in ``MetadataBackend``.
@Suite("Image store contract")
struct ImageStoreContractTests {
    @Test("an image and its processing message are stored together", arguments: MetadataBackend.allCases)
    func imageWithItsMessage(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            let image = Make.image(team: team, at: 5)
            let message = Make.message(for: image)
            try await store.insertImage(image, publishing: message, allowDuplicate: false)
            #expect(try await store.image(id: image.id, teamID: team.id) == image)
            let claimed = try await store.claimDueMessages(now: Make.date(5), leaseUntil: Make.date(65), limit: 10)
            #expect(claimed.map(\.message) == [message])
            #expect(claimed.first?.attempts == 1)
            #expect(claimed.first?.publishedAt == Make.date(5))
        }
    }

    @Test(
        "a team's second copy of the same bytes is refused, naming the first, and publishes nothing",
        arguments: MetadataBackend.allCases)
    func duplicates(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            let other = Make.team("Other")
            try await store.insertTeam(team)
            try await store.insertTeam(other)
            let first = Make.image(team: team, sha256: "same", at: 1)
            try await store.insertImage(first, publishing: Make.message(for: first), allowDuplicate: false)
            let second = Make.image(team: team, sha256: "same", at: 2)
            await #expect(throws: DuplicateImageError(existingImageID: first.id)) {
                try await store.insertImage(second, publishing: Make.message(for: second), allowDuplicate: false)
            }
            #expect(try await store.image(id: second.id, teamID: team.id) == nil)
            #expect(
                try await store.claimDueMessages(now: Make.date(9), leaseUntil: Make.date(99), limit: 10).count == 1)

            // Another team may hold the same bytes; with duplicates allowed, so may this one.
            let elsewhere = Make.image(team: other, sha256: "same", at: 3)
            try await store.insertImage(elsewhere, publishing: Make.message(for: elsewhere), allowDuplicate: false)
            let allowed = Make.image(team: team, sha256: "same", at: 4)
            try await store.insertImage(allowed, publishing: Make.message(for: allowed), allowDuplicate: true)
            #expect(try await store.image(sha256: "same", teamID: team.id)?.id == first.id)
            #expect(try await store.image(sha256: "same", teamID: other.id)?.id == elsewhere.id)
        }
    }

    @Test("of 20 concurrent inserts of the same bytes exactly one is stored", arguments: MetadataBackend.allCases)
    func concurrentDuplicates(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            let stored = try await Make.contendedInserts([store], team: team)
            #expect(stored == 1)
            #expect(try await store.images(teamID: team.id, filter: ImageFilter(), PageRequest()).total == 1)
        }
    }

    @Test(
        "listings are newest first, filtered, paged, with totals, and never show another team's images",
        arguments: MetadataBackend.allCases)
    func listings(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            let other = Make.team("Other")
            try await store.insertTeam(team)
            try await store.insertTeam(other)
            let collection = UUID()
            var images: [ImageRecord] = []
            for index in 0..<6 {
                let image = Make.image(
                    team: team, tags: index.isMultiple(of: 2) ? ["even", "all"] : ["all"],
                    collection: index < 3 ? collection : nil, at: index * 10)
                images.append(image)
                try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            }
            let foreign = Make.image(team: other, tags: ["all"], at: 100)
            try await store.insertImage(foreign, publishing: Make.message(for: foreign), allowDuplicate: false)

            let all = try await store.images(teamID: team.id, filter: ImageFilter(), PageRequest(skip: 1, limit: 2))
            #expect(all.total == 6)
            #expect(all.items.map(\.id) == [images[4].id, images[3].id])
            let even = try await store.images(
                teamID: team.id, filter: ImageFilter(tags: ["even", "all"]), PageRequest())
            #expect(even.items.map(\.id) == [images[4].id, images[2].id, images[0].id])
            let inCollection = try await store.images(
                teamID: team.id, filter: ImageFilter(collectionID: collection), PageRequest())
            #expect(Set(inCollection.items.map(\.id)) == Set(images[0..<3].map(\.id)))
            let window = try await store.images(
                teamID: team.id, filter: ImageFilter(uploadedFrom: Make.date(10), uploadedTo: Make.date(30)),
                PageRequest())
            #expect(window.items.map(\.id) == [images[3].id, images[2].id, images[1].id])
            #expect(window.total == 3)

            // The processing state, alone and beside the other filters.
            for (image, succeeds) in [(images[2], true), (images[1], false)] {
                _ = try await store.beginProcessing(
                    id: image.id, teamID: team.id, model: "m", maxAttempts: 1, at: Make.date(50))
                if succeeds {
                    try await store.completeProcessing(
                        id: image.id, teamID: team.id, model: "m", dimensions: 4, perceptualHash: nil, at: Make.date(51)
                    )
                } else {
                    try await store.failProcessing(
                        id: image.id, teamID: team.id, error: "e", final: true, at: Make.date(51))
                }
            }
            func ids(_ filter: ImageFilter) async throws -> [ImageID] {
                try await store.images(teamID: team.id, filter: filter, PageRequest()).items.map(\.id)
            }
            #expect(try await ids(ImageFilter(embeddingStatus: .success)) == [images[2].id])
            #expect(try await ids(ImageFilter(embeddingStatus: .failed)) == [images[1].id])
            #expect(try await ids(ImageFilter(embeddingStatus: .processing)).isEmpty)
            #expect(try await ids(ImageFilter(collectionID: collection, embeddingStatus: .pending)) == [images[0].id])
            #expect(
                try await ids(ImageFilter(tags: ["even"], embeddingStatus: .pending)) == [images[4].id, images[0].id])
            let pendingPage = try await store.images(
                teamID: team.id, filter: ImageFilter(embeddingStatus: .pending), PageRequest(skip: 1, limit: 2))
            #expect(pendingPage.total == 4 && pendingPage.items.map(\.id) == [images[4].id, images[3].id])
            #expect(try await store.image(id: foreign.id, teamID: team.id) == nil)
            #expect(
                try await store.images(ids: [foreign.id, images[0].id], teamID: team.id).map(\.id) == [images[0].id])
        }
    }

    @Test("editable fields are updated; a delete leaves nothing behind", arguments: MetadataBackend.allCases)
    func updateAndDelete(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            var image = Make.image(team: team, filename: "harbour.jpg")
            try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            image.description = "boats at dusk"
            image.tags = ["sea"]
            image.collectionID = UUID()
            image.updatedAt = Make.date(30)
            image.filename = "ignored.jpg"
            #expect(try await store.updateImage(image))
            let updated = try #require(try await store.image(id: image.id, teamID: team.id))
            #expect(updated.description == "boats at dusk" && updated.tags == ["sea"])
            #expect(updated.collectionID == image.collectionID && updated.updatedAt == Make.date(30))
            #expect(updated.filename == "harbour.jpg")
            #expect(try await store.searchText(["boats"], teamID: team.id, filter: ImageFilter(), limit: 10).count == 1)

            #expect(try await store.deleteImage(id: image.id, teamID: TeamID()) == nil)
            #expect(try await store.deleteImage(id: image.id, teamID: team.id)?.id == image.id)
            #expect(try await store.image(id: image.id, teamID: team.id) == nil)
            #expect(try await store.images(teamID: team.id, filter: ImageFilter(), PageRequest()).total == 0)
            #expect(try await store.searchText(["boats"], teamID: team.id, filter: ImageFilter(), limit: 10).isEmpty)
            #expect(try await store.image(sha256: image.sha256, teamID: team.id) == nil)
            #expect(try await store.updateImage(image) == false)
        }
    }

    @Test(
        "processing: attempts are counted up to the limit, never past it, and requeueing starts over",
        arguments: MetadataBackend.allCases)
    func processingStateMachine(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            let image = Make.image(team: team)
            try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            let id = image.id
            // A start instant with a fraction of a millisecond: the pipeline recognises its own
            // start by it, within 2 ms, after a try whose answer was lost.
            let startedAt = Make.date(1).addingTimeInterval(0.123_456)
            func begin() async throws -> ProcessingStart {
                try await store.beginProcessing(id: id, teamID: team.id, model: "m1", maxAttempts: 2, at: startedAt)
            }
            guard case .started(let first) = try await begin() else { Issue.record("not started"); return }
            #expect(first.embeddingStatus == .processing && first.embeddingAttempts == 1)
            let read = try #require(try await store.image(id: id, teamID: team.id))
            #expect(read.embeddingStatus == .processing && abs(read.updatedAt.timeIntervalSince(startedAt)) < 0.002)
            try await store.failProcessing(id: id, teamID: team.id, error: "boom", final: false, at: Make.date(2))
            #expect(try await store.image(id: id, teamID: team.id)?.embeddingStatus == .pending)
            guard case .started(let second) = try await begin() else { Issue.record("not restarted"); return }
            #expect(second.embeddingAttempts == 2)
            try await store.failProcessing(
                id: id, teamID: team.id, error: String(repeating: "x", count: 5000), final: true, at: Make.date(3))
            let failed = try #require(try await store.image(id: id, teamID: team.id))
            #expect(failed.embeddingStatus == .failed && failed.embeddingError?.count == 2000)
            guard case .exhausted(let spent) = try await begin() else { Issue.record("not exhausted"); return }
            #expect(spent.embeddingAttempts == 2)

            let requeued = try await store.requeueImage(
                id: id, teamID: team.id, at: Make.date(4), publishing: Make.message(for: image))
            #expect(requeued?.embeddingStatus == .pending && requeued?.embeddingAttempts == 0)
            #expect(requeued?.embeddingError == nil)
            #expect(
                try await store.requeueImage(
                    id: id, teamID: TeamID(), at: Make.date(4), publishing: Make.message(for: image))
                    == nil)
            guard case .started = try await begin() else { Issue.record("not started after requeue"); return }
            try await store.completeProcessing(
                id: id, teamID: team.id, model: "m1", dimensions: 4, perceptualHash: PerceptualHash(bits: 0xfa3),
                at: Make.date(5))
            let done = try #require(try await store.image(id: id, teamID: team.id))
            #expect(done.embeddingStatus == .success && done.embeddingModel == "m1" && done.embeddingDimensions == 4)
            #expect(done.embeddedAt == Make.date(5) && done.phash == PerceptualHash(bits: 0xfa3))
            guard case .alreadyDone = try await begin() else { Issue.record("not already done"); return }
            #expect(
                try await store.beginProcessing(
                    id: ImageID(), teamID: team.id, model: "m1", maxAttempts: 2, at: Make.date(6))
                    == .missing)
        }
    }

    @Test(
        "perceptual hashes are kept with the image and listed for its team only, unhashed images left out",
        arguments: MetadataBackend.allCases)
    func perceptualHashes(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            let other = Make.team("Other")
            try await store.insertTeam(team)
            try await store.insertTeam(other)
            var expected: [HashedImage] = []
            for (index, owner) in [team, team, other, team].enumerated() {
                let image = Make.image(team: owner, at: index)
                try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
                guard index < 3 else { continue }  // the last stays unhashed
                // The top bit set: a hash that does not fit a signed 64-bit integer.
                let hash = PerceptualHash(bits: 0x8000_0000_0000_0000 | UInt64(index))
                try await store.completeProcessing(
                    id: image.id, teamID: owner.id, model: "m", dimensions: 4, perceptualHash: hash, at: Make.date(9))
                if owner.id == team.id {
                    expected.append(HashedImage(id: image.id, hash: hash, createdAt: image.createdAt))
                }
                #expect(try await store.image(id: image.id, teamID: owner.id)?.phash?.hex == hash.hex)
            }
            let listed = try await store.perceptualHashes(teamID: team.id).sorted { $0.createdAt < $1.createdAt }
            #expect(listed.map(\.id) == expected.map(\.id) && listed.map(\.hash) == expected.map(\.hash))
            // The instant to the millisecond, which every backend keeps.
            #expect(zip(listed, expected).allSatisfy { abs($0.createdAt.timeIntervalSince($1.createdAt)) < 0.001 })
            #expect(try await store.perceptualHashes(teamID: TeamID()).isEmpty)
        }
    }

    @Test(
        "postponing gives the attempt back, says what it waits for, and publishes the next delivery for later, together",
        arguments: MetadataBackend.allCases)
    func postponement(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            let image = Make.image(team: team)
            let upload = Make.message(for: image)
            try await store.insertImage(image, publishing: upload, allowDuplicate: false)
            _ = try await store.claimDueMessages(now: Make.date(0), leaseUntil: Make.date(60), limit: 10)
            try await store.acknowledge(messageID: upload.messageID)
            guard
                case .started = try await store.beginProcessing(
                    id: image.id, teamID: team.id, model: "m1", maxAttempts: 3, at: Make.date(1))
            else { Issue.record("not started"); return }
            let next = Make.message(for: image)
            let postponed = try #require(
                try await store.postponeProcessing(
                    id: image.id, teamID: team.id, waitingFor: "the vector index is unreachable", at: Make.date(2),
                    publishing: next, dueAt: Make.date(12)))
            #expect(postponed.embeddingStatus == .pending && postponed.embeddingAttempts == 0)
            let stored = try #require(try await store.image(id: image.id, teamID: team.id))
            #expect(stored.embeddingStatus == .pending && stored.embeddingAttempts == 0)
            #expect(stored.embeddingError?.contains("the vector index is unreachable") == true)
            // The next delivery is in the outbox, due later, not now.
            #expect(try await store.nextDueDate() == Make.date(12))
            #expect(try await store.claimDueMessages(now: Make.date(11), leaseUntil: Make.date(70), limit: 10).isEmpty)
            let due = try await store.claimDueMessages(now: Make.date(12), leaseUntil: Make.date(72), limit: 10)
            #expect(due.map(\.message.messageID) == [next.messageID] && due.first?.message.data == next.data)
            try await store.acknowledge(messageID: next.messageID)
            // Another team's id, or none: nothing changes and nothing is published.
            #expect(
                try await store.postponeProcessing(
                    id: image.id, teamID: TeamID(), waitingFor: "x", at: Make.date(3),
                    publishing: Make.message(for: image),
                    dueAt: Make.date(13)) == nil)
            #expect(
                try await store.postponeProcessing(
                    id: ImageID(), teamID: team.id, waitingFor: "x", at: Make.date(3),
                    publishing: Make.message(for: image),
                    dueAt: Make.date(13)) == nil)
            #expect(
                try await store.claimDueMessages(now: Make.date(100), leaseUntil: Make.date(160), limit: 10).isEmpty)
        }
    }

    @Test(
        "re-embedding picks stale and failed images (or all), leaves queued ones, and counts by state",
        arguments: MetadataBackend.allCases)
    func reembedding(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            var images: [ImageRecord] = []
            for index in 0..<5 {
                let image = Make.image(team: team, at: index)
                images.append(image)
                try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            }
            for (index, model) in [(0, "current"), (1, "old")] {
                _ = try await store.beginProcessing(
                    id: images[index].id, teamID: team.id, model: model, maxAttempts: 3, at: Make.date(10))
                try await store.completeProcessing(
                    id: images[index].id, teamID: team.id, model: model, dimensions: 4, perceptualHash: nil,
                    at: Make.date(11))
            }
            _ = try await store.beginProcessing(
                id: images[2].id, teamID: team.id, model: "current", maxAttempts: 3, at: Make.date(10))
            try await store.failProcessing(
                id: images[2].id, teamID: team.id, error: "bad", final: true, at: Make.date(11))
            _ = try await store.beginProcessing(
                id: images[3].id, teamID: team.id, model: "current", maxAttempts: 3, at: Make.date(10))
            #expect(
                try await store.embeddingSummary(teamID: team.id, model: "current")
                    == EmbeddingSummary(
                        model: "current", total: 5, current: 1, stale: 1, pending: 1, processing: 1, failed: 1))
            _ = try await store.claimDueMessages(now: Make.date(100), leaseUntil: Make.date(200), limit: 100)
            for message in try await store.claimDueMessages(now: Make.date(300), leaseUntil: Make.date(400), limit: 100)
            {
                try await store.acknowledge(messageID: message.message.messageID)
            }

            let queued = try await store.requeueImages(
                teamID: team.id, notEmbeddedWith: "current", includeCurrent: false, reason: "model", at: Make.date(20))
            #expect(queued == 2)
            let messages = try await store.claimDueMessages(now: Make.date(20), leaseUntil: Make.date(80), limit: 100)
            #expect(
                Set(messages.compactMap { $0.message.attributes["image_id"] })
                    == Set([images[1].id, images[2].id].map(\.lowercasedString)))
            #expect(
                try await store.embeddingSummary(teamID: team.id, model: "current")
                    == EmbeddingSummary(
                        model: "current", total: 5, current: 1, stale: 0, pending: 3, processing: 1, failed: 0))
            #expect(
                try await store.requeueImages(
                    teamID: team.id, notEmbeddedWith: "current", includeCurrent: true, reason: "all", at: Make.date(30))
                    == 1)
        }
    }

    @Test(
        "text search finds word prefixes in names, descriptions and tags, ranks fuller matches first, within the team and filter",
        arguments: MetadataBackend.allCases)
    func textSearch(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            let other = Make.team("Other")
            try await store.insertTeam(team)
            try await store.insertTeam(other)
            let both = Make.image(team: team, filename: "red_car-at.night.jpg", at: 1)
            let red = Make.image(team: team, filename: "apple.jpg", description: "A red apple", at: 2)
            let tagged = Make.image(team: team, filename: "x.jpg", tags: ["cars"], collection: UUID(), at: 3)
            let unrelated = Make.image(team: team, filename: "sea.jpg", description: "waves", at: 4)
            let foreign = Make.image(team: other, filename: "red_car.jpg", at: 5)
            for image in [both, red, tagged, unrelated, foreign] {
                try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            }
            let matches = try await store.searchText(["red", "car"], teamID: team.id, filter: ImageFilter(), limit: 10)
            #expect(Set(matches.map(\.image.id)) == Set([both.id, red.id, tagged.id]))
            let coverage = Dictionary(uniqueKeysWithValues: matches.map { ($0.image.id, $0.coverage) })
            #expect(coverage[both.id] == 1 && coverage[red.id] == 0.5 && coverage[tagged.id] == 0.5)
            #expect(matches.allSatisfy { $0.weight > 0 })
            let ranked = matches.sorted { $0.coverage > $1.coverage }
            #expect(ranked.first?.image.id == both.id)
            let filtered = try await store.searchText(
                ["car"], teamID: team.id, filter: ImageFilter(collectionID: tagged.collectionID), limit: 10)
            #expect(filtered.map(\.image.id) == [tagged.id])
            #expect(try await store.searchText(["red"], teamID: team.id, filter: ImageFilter(), limit: 1).count == 1)
            #expect(try await store.searchText(["zebra"], teamID: team.id, filter: ImageFilter(), limit: 10).isEmpty)
            #expect(try await store.searchText([], teamID: team.id, filter: ImageFilter(), limit: 10).isEmpty)
        }
    }

    @Test(
        "the outbox leases claims, retries when told, and moves given-up messages to the dead letters",
        arguments: MetadataBackend.allCases)
    func outboxQueue(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            try await store.insertTeam(team)
            let images = (0..<2).map { Make.image(team: team, at: $0) }
            let messages = images.map(Make.message(for:))
            for (image, message) in zip(images, messages) {
                try await store.insertImage(image, publishing: message, allowDuplicate: false)
            }
            #expect(try await store.nextDueDate() == Make.date(0))
            #expect(try await store.backlog() == OutboxBacklog(messages: 2, oldestPublishedAt: Make.date(0)))
            let first = try await store.claimDueMessages(now: Make.date(0), leaseUntil: Make.date(60), limit: 10)
            #expect(first.map(\.message.messageID) == [messages[0].messageID])
            // Claimed messages are hidden until their lease ends.
            let second = try await store.claimDueMessages(now: Make.date(1), leaseUntil: Make.date(61), limit: 10)
            #expect(second.map(\.message.messageID) == [messages[1].messageID])
            #expect(try await store.claimDueMessages(now: Make.date(2), leaseUntil: Make.date(62), limit: 10).isEmpty)
            try await store.acknowledge(messageID: messages[1].messageID)
            // Leased messages still wait.
            #expect(try await store.backlog() == OutboxBacklog(messages: 1, oldestPublishedAt: Make.date(0)))
            try await store.scheduleRetry(messageID: messages[0].messageID, error: "503", at: Make.date(10))
            #expect(try await store.nextDueDate() == Make.date(10))
            let retried = try await store.claimDueMessages(now: Make.date(10), leaseUntil: Make.date(70), limit: 10)
            #expect(retried.map(\.attempts) == [2])
            try await store.moveToDeadLetters(messageID: messages[0].messageID, error: "gave up", at: Make.date(11))
            #expect(try await store.nextDueDate() == nil)
            #expect(try await store.backlog() == OutboxBacklog(messages: 0, oldestPublishedAt: nil))
            let dead = try await store.deadLetters(teamID: team.id, PageRequest()).items
            #expect(dead.map(\.messageID) == [messages[0].messageID])
            #expect(dead.first?.teamID == team.id)
            #expect(try await store.deadLetters(teamID: TeamID(), PageRequest()).total == 0)
            #expect(dead.first?.attempts == 2 && dead.first?.lastError == "gave up" && dead.first?.source == "delivery")
            #expect(dead.first?.data == messages[0].data)
        }
    }

    @Test(
        "dead letters are one per message id, listed by team oldest first in pages, with bounded payloads",
        arguments: MetadataBackend.allCases)
    func deadLetters(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let (team, other) = (TeamID(), TeamID())
            func payload(_ team: TeamID, padding: Int = 0) throws -> Data {
                var data = try JSONEncoder().encode(
                    ImageProcessingRequest(imageID: ImageID(), teamID: team, reason: "upload"))
                // Whitespace after the JSON: the team is read from the whole payload, before it is cut.
                data.append(Data(repeating: 0x20, count: padding))
                return data
            }
            func letter(
                _ id: String, _ team: TeamID, attempts: Int = 1, at day: Int, padding: Int = 0
            ) throws -> DeadLetter {
                DeadLetter(
                    messageID: id, topic: ImageProcessingRequest.topic, data: try payload(team, padding: padding),
                    attempts: attempts, lastError: "e", source: "handler", deadAt: Make.date(day))
            }
            try await store.deadLetter(try letter("b", team, attempts: 3, at: 2, padding: 100_000))
            try await store.deadLetter(try letter("a", team, at: 5))
            try await store.deadLetter(try letter("a", team, attempts: 2, at: 1))
            try await store.deadLetter(try letter("c", team, at: 3))
            try await store.deadLetter(try letter("x", other, at: 0))
            try await store.deadLetter(
                DeadLetter(
                    messageID: "n", topic: "other-topic", data: Data([1]), attempts: 1, lastError: "e",
                    source: "handler",
                    deadAt: Make.date(0)))
            let all = try await store.deadLetters(teamID: team, PageRequest())
            #expect(all.items.map(\.messageID) == ["a", "b", "c"] && all.total == 3)
            #expect(all.items.first?.attempts == 2)
            #expect(all.items[1].data.count == DeadLetter.maximumStoredBytes && all.items[1].teamID == team)
            let second = try await store.deadLetters(teamID: team, PageRequest(skip: 1, limit: 1))
            #expect(second.items.map(\.messageID) == ["b"] && second.total == 3)
            #expect(try await store.deadLetters(teamID: other, PageRequest()).items.map(\.messageID) == ["x"])
            #expect(try await store.deadLetter(messageID: "n")?.teamID == nil)
            #expect(try await store.deadLetter(messageID: "b")?.attempts == 3)
            #expect(try await store.deadLetter(messageID: "zz") == nil)
            #expect(try await store.removeDeadLetter(messageID: "a"))
            #expect(try await store.removeDeadLetter(messageID: "a") == false)
            #expect(try await store.deadLetters(teamID: team, PageRequest()).items.map(\.messageID) == ["b", "c"])
        }
    }
}

@Suite("SQLite metadata upgrades")
struct SQLiteMetadataUpgradeTests {
    @Test("dead letters written before they were kept by team are listed for their team after the upgrade")
    func deadLettersGetTheirTeam() async throws {
        try await TemporaryFolder.with { folder in
            let path = folder.appendingPathComponent("metadata.sqlite").path
            let team = TeamID()
            do {
                let queue = try DatabaseQueue(path: path)
                try SQLiteMetadataStore.migrator.migrate(
                    queue, upTo: "v3: unique image content per team, consumed bootstrap keys")
                let payload = try JSONEncoder().encode(
                    ImageProcessingRequest(imageID: ImageID(), teamID: team, reason: "upload"))
                try await queue.write { db in
                    try db.execute(
                        sql: "INSERT INTO dead_letters VALUES (?, ?, ?, 3, 'e', 'handler', ?)",
                        arguments: ["old", ImageProcessingRequest.topic, payload, Date()])
                    try db.execute(
                        sql: "INSERT INTO dead_letters VALUES ('odd', 'other-topic', x'00', 1, 'e', 'handler', ?)",
                        arguments: [Date()])
                }
            }
            let store = try SQLiteMetadataStore(path: path)
            let listed = try await store.deadLetters(teamID: team, PageRequest())
            #expect(listed.items.map(\.messageID) == ["old"] && listed.total == 1)
            #expect(try await store.deadLetter(messageID: "odd")?.teamID == nil)
        }
    }
}
