import Foundation
import ImageAPICore

/// Every metadata port in one actor's memory: teams, users, keys, images with their outbox,
/// the outbox read as a queue, and dead letters.
///
/// Not durable: everything is gone when the process ends. For tests and demos
/// (`METADATA_BACKEND=memory`). Each image method runs on the actor, so each is one
/// transaction. Units of work on teams, users and keys run one at a time on a copy of them,
/// which replaces the stored ones when the work succeeds; every other write of those waits for
/// the unit of work before it.
public actor MemoryMetadataStore: MetadataStore, ImageStore, OutboxQueue, DeadLetterQueue {
    private var metadata = MemoryMetadataState()
    private var transactionOpen = false
    private var waitingTransactions: [CheckedContinuation<Void, Never>] = []
    /// Images with the order they were inserted in (the tie-breaker of every image ordering).
    private var imagesByID: [ImageID: StoredImage] = [:]
    private var nextImageNumber = 0
    private var outbox: [String: OutboxEntry] = [:]
    private var nextOutboxSequence = 0
    private var deadLettersByID: [String: DeadLetter] = [:]
    private var collectionsByID: [UUID: ImageCollection] = [:]

    private struct StoredImage {
        var record: ImageRecord
        var number: Int
    }

    private struct OutboxEntry {
        var message: OutboxMessage
        var sequence: Int
        var publishedAt: Date
        var attempts: Int
        var nextAttemptAt: Date
        var lastError: String?
    }

    /// Creates an empty store.
    public init() {}

    /// Always ready: the store is this process's memory.
    public func checkReady() async throws {}

    // MARK: Units of work

    /// Runs `body` alone (units of work queue in the order they arrive) on a copy of the teams,
    /// users and keys, which replaces them when `body` returns and is dropped when it throws.
    public func withTransaction<T: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> T
    )
        async throws -> T
    {
        await beginTransaction()
        defer { endTransaction() }
        let transaction = MemoryMetadataTransaction(state: metadata) { teamID in await self.imageCount(teamID: teamID) }
        let result = try await body(transaction)
        metadata = transaction.state
        return result
    }

    /// One write of teams, users or keys outside a unit of work: queued behind those running.
    private func writeMetadata<T>(_ change: (inout MemoryMetadataState) throws -> T) async rethrows -> T {
        await beginTransaction()
        defer { endTransaction() }
        return try change(&metadata)
    }

    private func beginTransaction() async {
        guard transactionOpen else {
            transactionOpen = true
            return
        }
        await withCheckedContinuation { waitingTransactions.append($0) }
    }

    /// Hands the turn to the next unit of work waiting, if any.
    private func endTransaction() {
        if waitingTransactions.isEmpty {
            transactionOpen = false
        } else {
            waitingTransactions.removeFirst().resume()
        }
    }

    private func imageCount(teamID: TeamID) -> Int {
        imagesByID.values.count { $0.record.teamID == teamID }
    }

    // MARK: Teams

    /// Stores a new team.
    public func insertTeam(_ team: Team) async throws {
        try await writeMetadata { try $0.insert(team) }
    }

    /// Reads a team.
    public func team(id: TeamID) async throws -> Team? { metadata.teams[id] }

    /// Lists teams, oldest first (then by id).
    public func teams(_ page: PageRequest) async throws -> Page<Team> {
        Self.page(
            metadata.teams.values.sorted {
                ($0.createdAt, $0.id.lowercasedString) < ($1.createdAt, $1.id.lowercasedString)
            }, page)
    }

    /// Replaces a team's fields.
    public func updateTeam(_ team: Team) async throws -> Bool {
        await writeMetadata { metadata in
            guard metadata.teams[team.id] != nil else { return false }
            metadata.teams[team.id] = team
            return true
        }
    }

    // MARK: Users

    /// Reads a user.
    public func user(id: UserID) async throws -> User? { metadata.users[id] }

    /// Reads a user by e-mail (compared without case).
    public func user(email: String) async throws -> User? { metadata.user(email: email) }

    /// Lists users, optionally of one team, oldest first (then by id).
    public func users(teamID: TeamID?, _ page: PageRequest) async throws -> Page<User> {
        Self.page(
            metadata.users.values.filter { teamID == nil || $0.teamID == teamID }
                .sorted { ($0.createdAt, $0.id.lowercasedString) < ($1.createdAt, $1.id.lowercasedString) }, page)
    }

    // MARK: API keys

    /// Reads a key.
    public func apiKey(id: APIKeyID) async throws -> APIKey? { metadata.keys[id] }

    /// Lists a user's keys, oldest first (then by id).
    public func apiKeys(userID: UserID, _ page: PageRequest) async throws -> Page<APIKey> {
        Self.page(
            metadata.keys.values.filter { $0.userID == userID }
                .sorted { ($0.createdAt, $0.id.lowercasedString) < ($1.createdAt, $1.id.lowercasedString) }, page)
    }

    /// Marks a key revoked.
    public func revokeAPIKey(id: APIKeyID) async throws -> Bool {
        await writeMetadata { metadata in
            guard metadata.keys[id] != nil else { return false }
            metadata.keys[id]?.isActive = false
            return true
        }
    }

    /// Records when a key last authenticated a request.
    public func recordAPIKeyUse(id: APIKeyID, at date: Date) async throws {
        await writeMetadata { $0.keys[id]?.lastUsedAt = date }
    }

    // MARK: Administrators

    /// The secret hash of a bootstrap key registered once.
    public func bootstrapKeyHash(id: APIKeyID) async throws -> Data? { metadata.bootstrapKeys[id] }

    /// Records a bootstrap key; the first record stays.
    public func recordBootstrapKey(id: APIKeyID, secretHash: Data, at date: Date) async throws {
        await writeMetadata { metadata in
            if metadata.bootstrapKeys[id] == nil { metadata.bootstrapKeys[id] = secretHash }
        }
    }

    // MARK: Images

    /// Stores an image and its processing message together; a second copy of a team's bytes
    /// only when duplicates are allowed.
    public func insertImage(_ image: ImageRecord, publishing message: OutboxMessage, allowDuplicate: Bool) async throws
    {
        if !allowDuplicate, let existing = firstImage(sha256: image.sha256, teamID: image.teamID) {
            throw DuplicateImageError(existingImageID: existing.id)
        }
        guard imagesByID[image.id] == nil else {
            throw MemoryStoreError.duplicateID("image", image.id.lowercasedString)
        }
        nextImageNumber += 1
        imagesByID[image.id] = StoredImage(record: image, number: nextImageNumber)
        enqueue(message, at: image.createdAt)
    }

    /// One of a team's images.
    public func image(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        imagesByID[id].flatMap { $0.record.teamID == teamID ? $0.record : nil }
    }

    /// Several of a team's images.
    public func images(ids: [ImageID], teamID: TeamID) async throws -> [ImageRecord] {
        Set(ids).compactMap { id in imagesByID[id].flatMap { $0.record.teamID == teamID ? $0.record : nil } }
    }

    /// A page of a team's images, newest first (then last inserted first).
    public func images(teamID: TeamID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord> {
        Self.page(
            imagesByID.values.filter { $0.record.teamID == teamID && filter.admits($0.record) }
                .sorted { ($0.record.createdAt, $0.number) > ($1.record.createdAt, $1.number) }.map(\.record), page)
    }

    /// A team's oldest image with these bytes.
    public func image(sha256: String, teamID: TeamID) async throws -> ImageRecord? {
        firstImage(sha256: sha256, teamID: teamID)
    }

    /// Replaces description, tags, collection and updated-at.
    public func updateImage(_ image: ImageRecord) async throws -> Bool {
        guard var stored = imagesByID[image.id], stored.record.teamID == image.teamID else { return false }
        stored.record.description = image.description
        stored.record.tags = image.tags
        stored.record.collectionID = image.collectionID
        stored.record.updatedAt = image.updatedAt
        imagesByID[image.id] = stored
        return true
    }

    /// The perceptual hashes of a team's images.
    public func perceptualHashes(teamID: TeamID) async throws -> [HashedImage] {
        imagesByID.values.compactMap { stored in
            guard stored.record.teamID == teamID, let hash = stored.record.phash else { return nil }
            return HashedImage(id: stored.record.id, hash: hash, createdAt: stored.record.createdAt)
        }
    }

    /// Deletes an image's metadata.
    public func deleteImage(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        guard let stored = imagesByID[id], stored.record.teamID == teamID else { return nil }
        imagesByID[id] = nil
        return stored.record
    }

    /// Starts an attempt unless the image is gone, done with `model`, or out of attempts.
    public func beginProcessing(
        id: ImageID, teamID: TeamID, model: String, maxAttempts: Int, at date: Date
    ) async throws -> ProcessingStart {
        guard var stored = imagesByID[id], stored.record.teamID == teamID else { return .missing }
        let start = stored.record.startingProcessing(model: model, maxAttempts: maxAttempts, at: date)
        if case .started(let image) = start {
            stored.record = image
            imagesByID[id] = stored
        }
        return start
    }

    /// Marks the image embedded.
    public func completeProcessing(
        id: ImageID, teamID: TeamID, model: String, dimensions: Int, perceptualHash: PerceptualHash?, at date: Date
    ) async throws {
        modifyImage(id: id, teamID: teamID) {
            $0.markEmbedded(model: model, dimensions: dimensions, perceptualHash: perceptualHash, at: date)
        }
    }

    /// Records a failed attempt.
    public func failProcessing(id: ImageID, teamID: TeamID, error: String, final: Bool, at date: Date) async throws {
        modifyImage(id: id, teamID: teamID) { $0.markFailed(error: error, final: final, at: date) }
    }

    /// Postpones the attempt and publishes the next delivery, due at `dueAt`.
    public func postponeProcessing(
        id: ImageID, teamID: TeamID, waitingFor reason: String, at date: Date, publishing message: OutboxMessage,
        dueAt: Date
    ) async throws -> ImageRecord? {
        guard imagesByID[id]?.record.teamID == teamID else { return nil }
        modifyImage(id: id, teamID: teamID) { $0.markPostponed(waitingFor: reason, at: date) }
        enqueue(message, at: date, due: dueAt)
        return imagesByID[id]?.record
    }

    /// Sets the image pending again and publishes its message.
    public func requeueImage(
        id: ImageID, teamID: TeamID, at date: Date, publishing message: OutboxMessage
    ) async throws -> ImageRecord? {
        guard imagesByID[id]?.record.teamID == teamID else { return nil }
        modifyImage(id: id, teamID: teamID) { $0.markQueued(at: date) }
        enqueue(message, at: date)
        return imagesByID[id]?.record
    }

    /// Queues a team's stale and failed images (or all of them) for re-embedding.
    public func requeueImages(
        teamID: TeamID, notEmbeddedWith model: String, includeCurrent: Bool, reason: String, at date: Date
    ) async throws -> Int {
        let chosen = imagesByID.values.filter { stored in
            stored.record.teamID == teamID
                && ImageRecord.needsReembedding(
                    status: stored.record.embeddingStatus, embeddedWith: stored.record.embeddingModel, model: model,
                    includeCurrent: includeCurrent)
        }.sorted { $0.number < $1.number }
        for stored in chosen {
            modifyImage(id: stored.record.id, teamID: teamID) { $0.markQueued(at: date) }
            enqueue(
                .processing(ImageProcessingRequest(imageID: stored.record.id, teamID: teamID, reason: reason)), at: date
            )
        }
        return chosen.count
    }

    /// Counts a team's images by embedding state against `model`.
    public func embeddingSummary(teamID: TeamID, model: String) async throws -> EmbeddingSummary {
        var summary = EmbeddingSummary(
            model: model, total: 0, current: 0, stale: 0, pending: 0, processing: 0, failed: 0)
        for stored in imagesByID.values where stored.record.teamID == teamID {
            summary.add(1, status: stored.record.embeddingStatus, embeddedWith: stored.record.embeddingModel)
        }
        return summary
    }

    /// Full-text search over file name, description, tags and EXIF text: every image with a word
    /// starting with a query word, with the share of query words it matches and a BM25 relevance.
    public func searchText(
        _ words: [String], teamID: TeamID, filter: ImageFilter, limit: Int
    ) async throws
        -> [TextMatch]
    {
        let terms = words.map { TextIndex.words(in: $0) }.filter { !$0.isEmpty }.map { $0.joined(separator: " ") }
        guard !terms.isEmpty, limit > 0 else { return [] }
        // Each of the team's images is split into words once; relevance counts over the whole team.
        let team = imagesByID.values.filter { $0.record.teamID == teamID }
            .map { (stored: $0, words: TextIndex.words(of: $0.record)) }
        let scorer = TextIndex.BM25(terms: terms, documents: team.map(\.words))
        let documents = team.filter { filter.admits($0.stored.record) }
        var matches: [(match: TextMatch, number: Int)] = []
        for (stored, words) in documents {
            let matched = terms.filter { term in words.contains { $0.hasPrefix(term) } }
            guard !matched.isEmpty else { continue }
            matches.append(
                (
                    TextMatch(
                        image: stored.record, coverage: Double(matched.count) / Double(terms.count),
                        weight: scorer.score(words)), stored.number
                ))
        }
        return
            matches.sorted { ($0.match.weight, $0.number) > ($1.match.weight, $1.number) }.prefix(limit).map(\.match)
    }

    private func firstImage(sha256: String, teamID: TeamID) -> ImageRecord? {
        imagesByID.values.filter { $0.record.teamID == teamID && $0.record.sha256 == sha256 }
            .min { $0.number < $1.number }?.record
    }

    // MARK: Collections

    /// Stores a new collection; a name the team already has (case aside) is refused.
    public func insertCollection(_ collection: ImageCollection) async throws {
        try refuseTakenName(collection)
        collectionsByID[collection.id] = collection
    }

    /// One of a team's collections.
    public func collection(id: UUID, teamID: TeamID) async throws -> ImageCollection? {
        collectionsByID[id].flatMap { $0.teamID == teamID ? $0 : nil }
    }

    /// Every named collection of a team.
    public func collections(teamID: TeamID) async throws -> [ImageCollection] {
        collectionsByID.values.filter { $0.teamID == teamID }
    }

    /// Replaces a collection's fields.
    public func updateCollection(_ collection: ImageCollection) async throws -> Bool {
        guard collectionsByID[collection.id]?.teamID == collection.teamID else { return false }
        try refuseTakenName(collection)
        collectionsByID[collection.id] = collection
        return true
    }

    /// Clears the label from the team's images and deletes the collection.
    public func deleteCollection(id: UUID, teamID: TeamID, at date: Date) async throws -> [ImageRecord] {
        var cleared: [ImageRecord] = []
        for (imageID, stored) in imagesByID where stored.record.teamID == teamID && stored.record.collectionID == id {
            modifyImage(id: imageID, teamID: teamID) { image in
                image.collectionID = nil
                image.updatedAt = date
            }
            if let image = imagesByID[imageID]?.record { cleared.append(image) }
        }
        if collectionsByID[id]?.teamID == teamID { collectionsByID[id] = nil }
        return cleared
    }

    /// Every label the team's images carry, counted, with the newest image of each.
    public func collectionLabels(teamID: TeamID) async throws -> [CollectionLabel] {
        var labels: [UUID: (count: Int, newest: StoredImage)] = [:]
        for stored in imagesByID.values where stored.record.teamID == teamID {
            guard let label = stored.record.collectionID else { continue }
            let newest = labels[label].map { current in
                (stored.record.createdAt, stored.number) > (current.newest.record.createdAt, current.newest.number)
                    ? stored : current.newest
            }
            labels[label] = ((labels[label]?.count ?? 0) + 1, newest ?? stored)
        }
        return labels.map {
            CollectionLabel(id: $0.key, imageCount: $0.value.count, newestImageID: $0.value.newest.record.id)
        }
    }

    private func refuseTakenName(_ collection: ImageCollection) throws {
        if let holder = collectionsByID.values.first(where: {
            $0.teamID == collection.teamID && $0.nameKey == collection.nameKey && $0.id != collection.id
        }) {
            throw CollectionNameTakenError(existingCollectionID: holder.id)
        }
    }

    private func modifyImage(id: ImageID, teamID: TeamID, _ change: (inout ImageRecord) -> Void) {
        guard var stored = imagesByID[id], stored.record.teamID == teamID else { return }
        change(&stored.record)
        imagesByID[id] = stored
    }

    // MARK: Outbox and dead letters

    private func enqueue(_ message: OutboxMessage, at date: Date, due: Date? = nil) {
        nextOutboxSequence += 1
        outbox[message.messageID] = OutboxEntry(
            message: message, sequence: nextOutboxSequence, publishedAt: date, attempts: 0, nextAttemptAt: due ?? date)
    }

    /// Claims due messages, counting an attempt and hiding each until `leaseUntil`.
    public func claimDueMessages(now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMessage] {
        let due = outbox.values.filter { $0.nextAttemptAt <= now }
            .sorted { ($0.nextAttemptAt, $0.sequence) < ($1.nextAttemptAt, $1.sequence) }.prefix(max(0, limit))
        return due.map { entry in
            outbox[entry.message.messageID]?.attempts += 1
            outbox[entry.message.messageID]?.nextAttemptAt = leaseUntil
            return QueuedMessage(message: entry.message, publishedAt: entry.publishedAt, attempts: entry.attempts + 1)
        }
    }

    /// Removes a delivered message.
    public func acknowledge(messageID: String) async throws {
        outbox[messageID] = nil
    }

    /// Records a failed delivery and when to try again.
    public func scheduleRetry(messageID: String, error: String, at date: Date) async throws {
        outbox[messageID]?.lastError = String(error.prefix(2000))
        outbox[messageID]?.nextAttemptAt = date
    }

    /// Moves a message to the dead letters.
    public func moveToDeadLetters(messageID: String, error: String, at date: Date) async throws {
        guard let entry = outbox.removeValue(forKey: messageID) else { return }
        deadLettersByID[messageID] = DeadLetter(
            messageID: messageID, topic: entry.message.topic, data: entry.message.data, attempts: entry.attempts,
            lastError: error, source: "delivery", deadAt: date)
    }

    /// When the next message falls due.
    public func nextDueDate() async throws -> Date? { outbox.values.map(\.nextAttemptAt).min() }

    /// How many messages wait, and when the oldest was published.
    public func backlog() async throws -> OutboxBacklog {
        OutboxBacklog(messages: outbox.count, oldestPublishedAt: outbox.values.map(\.publishedAt).min())
    }

    /// Adds or replaces a dead letter.
    public func deadLetter(_ letter: DeadLetter) async throws {
        deadLettersByID[letter.messageID] = letter
    }

    /// A page of a team's dead letters, oldest first.
    public func deadLetters(teamID: TeamID, _ page: PageRequest) async throws -> Page<DeadLetter> {
        Self.page(
            deadLettersByID.values.filter { $0.teamID == teamID }
                .sorted { ($0.deadAt, $0.messageID) < ($1.deadAt, $1.messageID) }, page)
    }

    /// One dead letter.
    public func deadLetter(messageID: String) async throws -> DeadLetter? { deadLettersByID[messageID] }

    /// Removes a dead letter.
    public func removeDeadLetter(messageID: String) async throws -> Bool {
        deadLettersByID.removeValue(forKey: messageID) != nil
    }

    // MARK: Helpers

    private static func page<Item: Sendable>(_ sorted: [Item], _ request: PageRequest) -> Page<Item> {
        let start = min(sorted.count, request.skip)
        let end = min(sorted.count, start + request.limit)
        return Page(items: Array(sorted[start..<end]), total: sorted.count)
    }
}

/// Why the in-memory store refused a write that a database would refuse with a key violation.
public enum MemoryStoreError: Error, Equatable, CustomStringConvertible {
    /// A record of this kind with this id exists.
    case duplicateID(String, String)

    /// A short explanation.
    public var description: String {
        switch self {
        case .duplicateID(let kind, let id): "a \(kind) with id \(id) already exists"
        }
    }
}
