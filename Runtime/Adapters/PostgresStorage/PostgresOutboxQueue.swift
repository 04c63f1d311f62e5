import Foundation
import ImageAPICore
import PostgresNIO

/// The outbox as a queue any number of relays share, and the dead letters beside it.
///
/// A claim locks the due rows it takes with `FOR UPDATE SKIP LOCKED`, so concurrent claims
/// (of this process or another) pass over each other's rows instead of waiting for them or
/// taking them too: each delivery attempt belongs to one relay.
extension PostgresMetadataStore: OutboxQueue, DeadLetterQueue {
    /// Claims due messages, counting an attempt and hiding each until `leaseUntil`.
    public func claimDueMessages(now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMessage] {
        let rows = try await rows(
            """
            UPDATE outbox SET attempts = attempts + 1, next_attempt_at = \(leaseUntil)
            WHERE sequence IN (
                SELECT sequence FROM outbox WHERE next_attempt_at <= \(now)
                ORDER BY next_attempt_at, sequence LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING sequence, message_id, topic, data, attributes, published_at, attempts
            """)
        return try rows.map { row in
            let (sequence, messageID, topic, data, attributes, publishedAt, attempts) = try row.decode(
                (Int64, String, String, Data, String, Date, Int).self)
            let message = OutboxMessage(
                topic: topic, messageID: messageID, data: data,
                attributes: try Self.decodeJSON([String: String].self, attributes))
            return (sequence, QueuedMessage(message: message, publishedAt: publishedAt, attempts: attempts))
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Removes a delivered message.
    public func acknowledge(messageID: String) async throws {
        _ = try await rows("DELETE FROM outbox WHERE message_id = \(messageID)")
    }

    /// Records a failed delivery and the time of the next one.
    public func scheduleRetry(messageID: String, error: String, at date: Date) async throws {
        _ = try await rows(
            """
            UPDATE outbox SET last_error = \(String(error.prefix(DeadLetter.maximumErrorLength))), next_attempt_at = \(date)
            WHERE message_id = \(messageID)
            """)
    }

    /// Moves a message from the outbox to the dead letters, in one transaction.
    public func moveToDeadLetters(messageID: String, error: String, at date: Date) async throws {
        try await transaction { [logger] connection in
            guard
                let row = try await connection.query(
                    "DELETE FROM outbox WHERE message_id = \(messageID) RETURNING topic, data, attempts",
                    logger: logger
                ).collect().first
            else { return }
            let (topic, data, attempts) = try row.decode((String, Data, Int).self)
            let letter = DeadLetter(
                messageID: messageID, topic: topic, data: data, attempts: attempts, lastError: error,
                source: "delivery", deadAt: date)
            try await connection.query(try Self.upsert(letter), logger: logger)
        }
    }

    /// When the next message falls due.
    public func nextDueDate() async throws -> Date? {
        try await rows("SELECT min(next_attempt_at) FROM outbox").first?.decode(Date?.self)
    }

    /// How many messages wait, and when the oldest was published.
    public func backlog() async throws -> OutboxBacklog {
        let row = try await rows("SELECT count(*)::bigint, min(published_at) FROM outbox").first
        let (count, oldest) = try row?.decode((Int, Date?).self) ?? (0, nil)
        return OutboxBacklog(messages: count, oldestPublishedAt: oldest)
    }

    /// The outbox notifications (`NOTIFY`, sent when any process commits a message) heard so
    /// far; 0 when the store does not listen.
    public var enqueuedHere: Int { outboxChanges.count }

    /// One second when relays are woken by `NOTIFY` (the poll then only finds retries falling
    /// due and leases running out); 50 ms when they poll.
    public var idlePollInterval: Duration { listens ? .seconds(1) : .milliseconds(50) }

    /// Waits for a `NOTIFY` (or this process's own enqueue), at most ``idlePollInterval``.
    public func waitForNewMessages(after seen: Int) async throws {
        await outboxChanges.wait(after: seen, timeout: idlePollInterval)
        try Task.checkCancellation()
    }

    /// Listens on the outbox channel on a connection of its own, counting every notification
    /// in ``enqueuedHere``; reconnects after a second when the connection is lost. Runs until
    /// cancelled.
    func listenForMessages() async {
        while !Task.isCancelled {
            do {
                try await prepared()
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.outboxChannel) { notifications in
                        // Messages committed while nobody listened are found by the poll this prompts.
                        outboxChanges.signal()
                        for try await notification in notifications where notification.payload == settings.schema {
                            outboxChanges.signal()
                        }
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning(
                    "Lost the outbox notification channel; relays poll until it is back",
                    metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Adds or replaces a dead letter.
    public func deadLetter(_ letter: DeadLetter) async throws {
        _ = try await rows(try Self.upsert(letter))
    }

    /// A page of a team's dead letters, oldest first.
    public func deadLetters(teamID: TeamID, _ page: PageRequest) async throws -> Page<DeadLetter> {
        try await self.page(
            "dead_letters", where: "team_id = \(teamID.uuid)", orderBy: "dead_at, message_id", page, Self.deadLetter)
    }

    /// One dead letter.
    public func deadLetter(messageID: String) async throws -> DeadLetter? {
        try await rows("SELECT * FROM dead_letters WHERE message_id = \(messageID)").first.map(Self.deadLetter)
    }

    /// Removes a dead letter.
    public func removeDeadLetter(messageID: String) async throws -> Bool {
        try await !rows("DELETE FROM dead_letters WHERE message_id = \(messageID) RETURNING message_id").isEmpty
    }

    static func upsert(_ letter: DeadLetter) throws -> PostgresQuery {
        try """
        INSERT INTO dead_letters (message_id, topic, data, attempts, last_error, source, dead_at, team_id)
        VALUES (\(letter.messageID), \(letter.topic), \(letter.data), \(letter.attempts), \(letter.lastError),
                \(letter.source), \(letter.deadAt), \(letter.teamID?.uuid))
        ON CONFLICT (message_id) DO UPDATE SET topic = excluded.topic, data = excluded.data,
            attempts = excluded.attempts, last_error = excluded.last_error, source = excluded.source,
            dead_at = excluded.dead_at, team_id = excluded.team_id
        """
    }

    static func deadLetter(_ row: PostgresRow) throws -> DeadLetter {
        let row = row.makeRandomAccess()
        return DeadLetter(
            messageID: try row["message_id"].decode(String.self), topic: try row["topic"].decode(String.self),
            data: try row["data"].decode(Data.self), attempts: try row["attempts"].decode(Int.self),
            lastError: try row["last_error"].decode(String.self), source: try row["source"].decode(String.self),
            deadAt: try row["dead_at"].decode(Date.self),
            teamID: try row["team_id"].decode(UUID?.self).map(TeamID.init(uuid:)))
    }
}
