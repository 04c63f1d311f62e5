import Foundation
import ImageAPICore

/// Images, their text-search words and the transactional outbox, as Firestore documents.
extension FirestoreMetadataStore: ImageStore {
    /// The most images one transaction of ``requeueImages(teamID:notEmbeddedWith:includeCurrent:reason:at:)``
    /// may queue: each is two writes (the image and its message), and a transaction holds at most 500.
    public static let largestRequeueBatch = 250
    /// The most candidates a text search reads before ranking them (the newest that hold any
    /// query word).
    static let textSearchCandidates = 1000

    /// Stores the image, its digest's reservation (for the team's first copy of these bytes) and
    /// its processing message in one transaction.
    public func insertImage(_ image: ImageRecord, publishing message: OutboxMessage, allowDuplicate: Bool) async throws
    {
        let digest = FirestoreCollection.digest(image.sha256, teamID: image.teamID)
        try await client.withTransaction { transaction in
            if let holder = try await transaction.document(digest) {
                guard allowDuplicate else {
                    throw DuplicateImageError(existingImageID: try FieldReader(document: holder).identifier("image_id"))
                }
            } else {
                transaction.write(.create(digest, ["image_id": .id(image.id), "team_id": .id(image.teamID)]))
            }
            transaction.write(.create(FirestoreCollection.image(image.id), FirestoreRecords.fields(image)))
            transaction.write(
                .create(
                    FirestoreCollection.outboxMessage(message.messageID),
                    FirestoreRecords.fields(message, at: image.createdAt)))
        }
        countEnqueued(1)
    }

    /// Reads one of a team's images.
    public func image(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await client.document(FirestoreCollection.image(id)).map(FirestoreRecords.image).flatMap {
            $0.teamID == teamID ? $0 : nil
        }
    }

    /// Reads several of a team's images in one call.
    public func images(ids: [ImageID], teamID: TeamID) async throws -> [ImageRecord] {
        let found = try await client.documents(ids.map(FirestoreCollection.image))
        return try ids.compactMap { id -> ImageRecord? in
            guard case let document?? = found[FirestoreCollection.image(id)] else { return nil }
            return try FirestoreRecords.image(document)
        }.filter { $0.teamID == teamID }
    }

    /// The query of a team's images passing a filter, newest first, and whether it holds the
    /// whole filter: Firestore takes one `array-contains` per query, so tags past the first are
    /// checked on the documents read.
    func imageQuery(teamID: TeamID, filter: ImageFilter) -> (query: FirestoreQuery, complete: Bool) {
        var query = FirestoreQuery(collection: FirestoreCollection.images)
        query.filters = [.init("team_id", .equal, .id(teamID))]
        if let collection = filter.collectionID {
            query.filters.append(.init("collection_id", .equal, .string(collection.lowercasedString)))
        }
        if let status = filter.embeddingStatus {
            query.filters.append(.init("embedding_status", .equal, .string(status.rawValue)))
        }
        if let tag = filter.tags.first { query.filters.append(.init("tags", .arrayContains, .string(tag))) }
        if let from = filter.uploadedFrom {
            query.filters.append(.init("created_at", .greaterThanOrEqual, .timestamp(from)))
        }
        if let to = filter.uploadedTo { query.filters.append(.init("created_at", .lessThanOrEqual, .timestamp(to))) }
        query.orderBy = [("created_at", false), ("__name__", false)]
        return (query, filter.tags.count <= 1)
    }

    /// Lists a team's images, newest first, with the total (a count aggregation; with more than
    /// one tag in the filter, counted over the documents read).
    public func images(teamID: TeamID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord> {
        let (query, complete) = imageQuery(teamID: teamID, filter: filter)
        if complete { return try await self.page(query, page, FirestoreRecords.image) }
        let matching = try await client.run(query).map(FirestoreRecords.image).filter(filter.admits)
        return Page(items: Array(matching.dropFirst(page.skip).prefix(page.limit)), total: matching.count)
    }

    /// Finds a team's image by content hash (the oldest, when duplicates were allowed).
    public func image(sha256: String, teamID: TeamID) async throws -> ImageRecord? {
        var query = FirestoreQuery(collection: FirestoreCollection.images)
        query.filters = [.init("team_id", .equal, .id(teamID)), .init("sha256", .equal, .string(sha256))]
        query.orderBy = [("created_at", true), ("__name__", true)]
        query.limit = 1
        return try await client.run(query).first.map(FirestoreRecords.image)
    }

    /// Updates description, tags and collection, and the search words with them.
    public func updateImage(_ image: ImageRecord) async throws -> Bool {
        try await client.withTransaction { transaction in
            let path = FirestoreCollection.image(image.id)
            guard let document = try await transaction.document(path),
                var stored = try? FirestoreRecords.image(document), stored.teamID == image.teamID
            else { return false }
            stored.description = image.description
            stored.tags = image.tags
            stored.collectionID = image.collectionID
            stored.updatedAt = image.updatedAt
            transaction.write(.replace(path, FirestoreRecords.fields(stored)))
            return true
        }
    }

    /// The perceptual hashes of a team's images: its documents read with those fields only.
    public func perceptualHashes(teamID: TeamID) async throws -> [HashedImage] {
        var query = FirestoreQuery(collection: FirestoreCollection.images)
        query.filters = [.init("team_id", .equal, .id(teamID))]
        query.fields = ["id", "phash", "created_at"]
        return try await client.run(query).compactMap { document in
            let fields = FieldReader(document: document)
            guard let hash = try fields.optionalString("phash").flatMap({ PerceptualHash(hex: $0) }) else { return nil }
            return HashedImage(id: try fields.identifier("id"), hash: hash, createdAt: try fields.date("created_at"))
        }
    }

    /// Deletes an image's document; the digest's reservation passes to the team's next oldest
    /// copy of the bytes, or goes.
    public func deleteImage(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await client.withTransaction { transaction in
            let path = FirestoreCollection.image(id)
            guard let document = try await transaction.document(path) else { return nil }
            let image = try FirestoreRecords.image(document)
            guard image.teamID == teamID else { return nil }
            let digest = FirestoreCollection.digest(image.sha256, teamID: teamID)
            if let holder = try await transaction.document(digest),
                try FieldReader(document: holder).string("image_id") == id.lowercasedString
            {
                var copies = FirestoreQuery(collection: FirestoreCollection.images)
                copies.filters = [
                    .init("team_id", .equal, .id(teamID)), .init("sha256", .equal, .string(image.sha256)),
                ]
                copies.orderBy = [("created_at", true), ("__name__", true)]
                copies.limit = 2
                if let next = try await transaction.run(copies).map(FirestoreRecords.image).first(where: { $0.id != id }
                ) {
                    transaction.write(.replace(digest, ["image_id": .id(next.id), "team_id": .id(teamID)]))
                } else {
                    transaction.write(FirestoreWrite(digest, .delete))
                }
            }
            transaction.write(FirestoreWrite(path, .delete))
            return image
        }
    }

    // MARK: Processing

    /// Reads a team's image in a transaction, applies `change` and writes what it returns.
    private func changing<T: Sendable>(
        id: ImageID, teamID: TeamID,
        _ change: @Sendable (ImageRecord, FirestoreTransaction) throws -> (ImageRecord?, T)
    ) async throws -> T? {
        try await client.withTransaction { transaction in
            let path = FirestoreCollection.image(id)
            guard let document = try await transaction.document(path) else { return nil }
            let image = try FirestoreRecords.image(document)
            guard image.teamID == teamID else { return nil }
            let (changed, result) = try change(image, transaction)
            if let changed { transaction.write(.replace(path, FirestoreRecords.fields(changed))) }
            return result
        }
    }

    /// Starts a processing attempt unless the image is gone, already embedded with `model`, or
    /// out of attempts.
    public func beginProcessing(
        id: ImageID, teamID: TeamID, model: String, maxAttempts: Int, at date: Date
    ) async throws -> ProcessingStart {
        try await changing(id: id, teamID: teamID) { image, _ in
            let start = image.startingProcessing(model: model, maxAttempts: maxAttempts, at: date)
            if case .started(let started) = start { return (started, start) }
            return (nil, start)
        } ?? .missing
    }

    /// Marks the image embedded.
    public func completeProcessing(
        id: ImageID, teamID: TeamID, model: String, dimensions: Int, perceptualHash: PerceptualHash?, at date: Date
    ) async throws {
        _ = try await changing(id: id, teamID: teamID) { image, _ in
            var done = image
            done.markEmbedded(model: model, dimensions: dimensions, perceptualHash: perceptualHash, at: date)
            return (done, ())
        }
    }

    /// Records a failed attempt: `pending` while attempts remain, `failed` after the last.
    public func failProcessing(id: ImageID, teamID: TeamID, error: String, final: Bool, at date: Date) async throws {
        _ = try await changing(id: id, teamID: teamID) { image, _ in
            var failed = image
            failed.markFailed(error: error, final: final, at: date)
            return (failed, ())
        }
    }

    /// Postpones the attempt and publishes the next delivery, due at `dueAt`, in one transaction.
    public func postponeProcessing(
        id: ImageID, teamID: TeamID, waitingFor reason: String, at date: Date, publishing message: OutboxMessage,
        dueAt: Date
    ) async throws -> ImageRecord? {
        let postponed = try await changing(id: id, teamID: teamID) { image, transaction in
            var waiting = image
            waiting.markPostponed(waitingFor: reason, at: date)
            transaction.write(
                .create(
                    FirestoreCollection.outboxMessage(message.messageID),
                    FirestoreRecords.fields(message, at: date, due: dueAt)))
            return (waiting, waiting)
        }
        countEnqueued(postponed == nil ? 0 : 1)
        return postponed
    }

    /// Sets the image pending again and publishes its processing message, in one transaction.
    public func requeueImage(
        id: ImageID, teamID: TeamID, at date: Date, publishing message: OutboxMessage
    ) async throws -> ImageRecord? {
        let requeued = try await changing(id: id, teamID: teamID) { image, transaction in
            var queued = image
            queued.markQueued(at: date)
            transaction.write(
                .create(
                    FirestoreCollection.outboxMessage(message.messageID), FirestoreRecords.fields(message, at: date)))
            return (queued, queued)
        }
        countEnqueued(requeued == nil ? 0 : 1)
        return requeued
    }

    /// Queues a team's stale and failed images (or all of them) for re-embedding, in batches of
    /// ``requeueBatch`` images (at most ``largestRequeueBatch``), each one transaction with the batch's messages. A crash between
    /// batches loses nothing: the images not yet queued are still stale, and asking again queues
    /// them.
    public func requeueImages(
        teamID: TeamID, notEmbeddedWith model: String, includeCurrent: Bool, reason: String, at date: Date
    ) async throws -> Int {
        var query = FirestoreQuery(collection: FirestoreCollection.images)
        query.filters = [
            .init("team_id", .equal, .id(teamID)),
            .init(
                "embedding_status", .in,
                .strings([EmbeddingStatus.success.rawValue, EmbeddingStatus.failed.rawValue])),
        ]
        query.orderBy = [("__name__", true)]
        query.limit = requeueBatch
        var queued = 0
        while true {
            let candidates = try await client.run(query)
            guard let last = candidates.last else { return queued }
            query.startAfter = client.path(of: last)
            let paths = try candidates.map(FirestoreRecords.image).filter { image in
                ImageRecord.needsReembedding(
                    status: image.embeddingStatus, embeddedWith: image.embeddingModel, model: model,
                    includeCurrent: includeCurrent)
            }.map { FirestoreCollection.image($0.id) }
            if paths.isEmpty {
                if candidates.count < requeueBatch { return queued }
                continue
            }
            let batch = try await client.withTransaction { transaction in
                var count = 0
                for case (_, let document?) in try await transaction.documents(paths) {
                    // Read again inside the transaction: processing may have moved on since.
                    let image = try FirestoreRecords.image(document)
                    guard
                        ImageRecord.needsReembedding(
                            status: image.embeddingStatus, embeddedWith: image.embeddingModel, model: model,
                            includeCurrent: includeCurrent)
                    else { continue }
                    var queued = image
                    queued.markQueued(at: date)
                    transaction.write(.replace(FirestoreCollection.image(image.id), FirestoreRecords.fields(queued)))
                    let message = OutboxMessage.processing(
                        ImageProcessingRequest(imageID: image.id, teamID: teamID, reason: reason))
                    transaction.write(
                        .create(
                            FirestoreCollection.outboxMessage(message.messageID),
                            FirestoreRecords.fields(message, at: date)))
                    count += 1
                }
                return count
            }
            countEnqueued(batch)
            queued += batch
            if candidates.count < requeueBatch { return queued }
        }
    }

    /// Counts a team's images by embedding state against the current model: five count
    /// aggregations run together, no image read.
    public func embeddingSummary(teamID: TeamID, model: String) async throws -> EmbeddingSummary {
        let client = self.client
        @Sendable func count(_ status: EmbeddingStatus, model: String? = nil) async throws -> Int {
            var query = FirestoreQuery(collection: FirestoreCollection.images)
            query.filters = [
                .init("team_id", .equal, .id(teamID)), .init("embedding_status", .equal, .string(status.rawValue)),
            ]
            if let model { query.filters.append(.init("embedding_model", .equal, .string(model))) }
            return try await client.count(query)
        }
        // The five counts in parallel: one round trip's time.
        async let pending = count(.pending)
        async let processing = count(.processing)
        async let failed = count(.failed)
        async let embedded = count(.success)
        async let current = count(.success, model: model)
        let counts = try await (pending, processing, failed, embedded, current)
        return EmbeddingSummary(
            model: model, total: counts.0 + counts.1 + counts.2 + counts.3, current: counts.4,
            stale: counts.3 - counts.4, pending: counts.0, processing: counts.1, failed: counts.2)
    }

    // MARK: Text search

    /// Text search on each image's words: the newest ``textSearchCandidates`` images holding a
    /// prefix of any query word (`array-contains-any`, so at most 30 words are looked up), ranked
    /// by the share of query words each holds. Every match has the same weight: Firestore has no
    /// term statistics, so relevance is the domain's `0.7 × coverage + 0.3`.
    public func searchText(
        _ words: [String], teamID: TeamID, filter: ImageFilter, limit: Int
    ) async throws -> [TextMatch] {
        let terms = Array(
            words.map { SearchWords.normalised($0) }.filter { !$0.isEmpty }.prefix(SearchWords.maximumQueryWords))
        guard !terms.isEmpty, limit > 0 else { return [] }
        var lookups: [String] = []
        for term in terms {
            for word in term where !lookups.contains(SearchWords.lookup(word)) {
                lookups.append(SearchWords.lookup(word))
            }
        }
        // The filter but its tags (one `array-contains` kind per query: the words take it).
        var (query, _) = imageQuery(
            teamID: teamID,
            filter: ImageFilter(
                collectionID: filter.collectionID, uploadedFrom: filter.uploadedFrom, uploadedTo: filter.uploadedTo))
        query.filters.append(
            .init("search_prefixes", .arrayContainsAny, .strings(Array(lookups.prefix(SearchWords.maximumQueryWords)))))
        query.limit = Self.textSearchCandidates
        var matches: [TextMatch] = []
        for document in try await client.run(query) {
            let image = try FirestoreRecords.image(document)
            guard filter.admits(image) else { continue }
            let stored = try FieldReader(document: document).strings("search_words")
            let held = terms.filter { term in term.allSatisfy { word in stored.contains { $0.hasPrefix(word) } } }
            guard !held.isEmpty else { continue }
            matches.append(TextMatch(image: image, coverage: Double(held.count) / Double(terms.count), weight: 1))
        }
        // Fuller matches first; the newest first among equals (the query's order, kept by a stable sort).
        let ranked = matches.enumerated().sorted { left, right in
            left.element.coverage != right.element.coverage
                ? left.element.coverage > right.element.coverage : left.offset < right.offset
        }
        return ranked.prefix(limit).map(\.element)
    }
}
