import Foundation
import ImageAPICore

/// The outbox as a durable queue of documents, and the dead letters beside it.
extension FirestoreMetadataStore: OutboxQueue, DeadLetterQueue {
    /// Outbox messages this process has committed: its relay takes them at once.
    public var enqueuedHere: Int { enqueued.load(ordering: .relaxed) }

    /// 1 s: every poll of Firestore is a billed read (one even when nothing is due), so a relay
    /// with nothing to do asks once a second, and at once when this process enqueues.
    public var idlePollInterval: Duration { .seconds(1) }

    /// Counts messages this process committed to the outbox.
    func countEnqueued(_ count: Int) {
        if count > 0 { enqueued.add(count, ordering: .relaxed) }
    }

    /// The outbox's due messages, first due first.
    private func dueQuery(now: Date, limit: Int) -> FirestoreQuery {
        var query = FirestoreQuery(collection: FirestoreCollection.outbox)
        query.filters = [.init("next_attempt_at", .lessThanOrEqual, .timestamp(now))]
        query.orderBy = [("next_attempt_at", true), ("__name__", true)]
        query.limit = limit
        return query
    }

    /// Claims due messages without a transaction: each claim is a write conditioned on the
    /// message being unchanged since the query read it, so of relays that read the same message
    /// one claims it and the others' writes fail and skip it (no relay holds a lock while
    /// another polls). Each claim counts an attempt and hides the message until `leaseUntil`.
    public func claimDueMessages(now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMessage] {
        let due = try await client.run(dueQuery(now: now, limit: limit))
        return try await withThrowingTaskGroup(of: QueuedMessage?.self) { group in
            for document in due {
                group.addTask { try await self.claim(document, leaseUntil: leaseUntil) }
            }
            var claimed: [QueuedMessage] = []
            for try await message in group { if let message { claimed.append(message) } }
            return claimed.sorted { $0.publishedAt < $1.publishedAt }
        }
    }

    /// Claims one message read by the due query, or `nil` when another relay changed it first.
    private func claim(_ document: FirestoreDocument, leaseUntil: Date) async throws -> QueuedMessage? {
        guard let path = client.path(of: document) else { return nil }
        var claimed = try FirestoreRecords.queuedMessage(document)
        claimed.attempts += 1
        var fields = document.fields
        fields["attempts"] = .integer(Int64(claimed.attempts))
        fields["next_attempt_at"] = .timestamp(leaseUntil)
        do {
            try await client.commit([
                FirestoreWrite(path, .set(FirestoreDocument(fields: fields)), precondition: .unchanged(since: document))
            ])
            return claimed
        } catch let error as FirestoreError where ["FAILED_PRECONDITION", "NOT_FOUND", "ABORTED"].contains(error.code) {
            return nil
        }
    }

    /// Removes a delivered message.
    public func acknowledge(messageID: String) async throws {
        try await client.commit([FirestoreWrite(FirestoreCollection.outboxMessage(messageID), .delete)])
    }

    /// Records a failed delivery and the time of the next one.
    public func scheduleRetry(messageID: String, error: String, at date: Date) async throws {
        _ = try await updating(
            FirestoreCollection.outboxMessage(messageID),
            ["last_error": .string(String(error.prefix(2000))), "next_attempt_at": .timestamp(date)])
    }

    /// Moves a message from the outbox to the dead letters, in one transaction.
    public func moveToDeadLetters(messageID: String, error: String, at date: Date) async throws {
        try await client.withTransaction { transaction in
            let path = FirestoreCollection.outboxMessage(messageID)
            guard let document = try await transaction.document(path) else { return }
            let queued = try FirestoreRecords.queuedMessage(document)
            let letter = DeadLetter(
                messageID: messageID, topic: queued.message.topic, data: queued.message.data,
                attempts: queued.attempts, lastError: error, source: "delivery", deadAt: date)
            transaction.write(
                FirestoreWrite(
                    FirestoreCollection.deadLetter(letter.messageID),
                    .set(FirestoreDocument(fields: FirestoreRecords.fields(letter)))))
            transaction.write(FirestoreWrite(path, .delete))
        }
    }

    /// When the next message falls due.
    public func nextDueDate() async throws -> Date? {
        var query = FirestoreQuery(collection: FirestoreCollection.outbox)
        query.orderBy = [("next_attempt_at", true)]
        query.limit = 1
        guard let first = try await client.run(query).first else { return nil }
        return try FieldReader(document: first).date("next_attempt_at")
    }

    /// How many messages wait (a count aggregation), and when the oldest was published.
    public func backlog() async throws -> OutboxBacklog {
        var query = FirestoreQuery(collection: FirestoreCollection.outbox)
        query.orderBy = [("published_at", true)]
        query.limit = 1
        let oldest = try await client.run(query).first.map { try FieldReader(document: $0).date("published_at") }
        return OutboxBacklog(messages: try await client.count(query), oldestPublishedAt: oldest)
    }

    /// Adds or replaces a dead letter.
    public func deadLetter(_ letter: DeadLetter) async throws {
        try await client.commit([
            FirestoreWrite(
                FirestoreCollection.deadLetter(letter.messageID),
                .set(FirestoreDocument(fields: FirestoreRecords.fields(letter))))
        ])
    }

    /// A page of a team's dead letters, oldest first.
    public func deadLetters(teamID: TeamID, _ page: PageRequest) async throws -> Page<DeadLetter> {
        var query = FirestoreQuery(collection: FirestoreCollection.deadLetters)
        query.filters = [.init("team_id", .equal, .id(teamID))]
        query.orderBy = [("dead_at", true), ("__name__", true)]
        return try await self.page(query, page, FirestoreRecords.deadLetter)
    }

    /// One dead letter.
    public func deadLetter(messageID: String) async throws -> DeadLetter? {
        try await client.document(FirestoreCollection.deadLetter(messageID)).map(FirestoreRecords.deadLetter)
    }

    /// Removes a dead letter.
    public func removeDeadLetter(messageID: String) async throws -> Bool {
        let path = FirestoreCollection.deadLetter(messageID)
        do {
            try await client.commit([FirestoreWrite(path, .delete, precondition: .exists(true))])
            return true
        } catch let error as FirestoreError where error.code == "NOT_FOUND" {
            return false
        }
    }
}
