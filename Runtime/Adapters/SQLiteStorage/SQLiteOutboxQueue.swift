import Foundation
import GRDB
import ImageAPICore

/// The outbox as the emulator's durable Pub/Sub topic, and the dead-letter table beside it.
extension SQLiteMetadataStore: OutboxQueue, DeadLetterQueue {
    /// Claims due messages, counting an attempt and hiding each until `leaseUntil`.
    public func claimDueMessages(now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMessage] {
        try await pool.write { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM outbox WHERE next_attempt_at <= ? ORDER BY next_attempt_at, sequence LIMIT ?",
                arguments: [now, limit])
            return try rows.map { row in
                let sequence: Int64 = row["sequence"]
                let attempts = (row["attempts"] as Int) + 1
                try db.execute(
                    sql: "UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE sequence = ?",
                    arguments: [attempts, leaseUntil, sequence])
                return QueuedMessage(
                    message: OutboxMessage(
                        topic: row["topic"], messageID: row["message_id"], data: row["data"],
                        attributes: try Self.decodeJSON([String: String].self, row["attributes"])),
                    publishedAt: row["published_at"], attempts: attempts)
            }
        }
    }

    /// Removes a delivered message.
    public func acknowledge(messageID: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM outbox WHERE message_id = ?", arguments: [messageID])
        }
    }

    /// Records a failed delivery and the time of the next one.
    public func scheduleRetry(messageID: String, error: String, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE message_id = ?",
                arguments: [String(error.prefix(2000)), date, messageID])
        }
    }

    /// Moves a message from the outbox to the dead letters, in one transaction.
    public func moveToDeadLetters(messageID: String, error: String, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO dead_letters
                        (message_id, topic, data, attempts, last_error, source, dead_at, team_id)
                    SELECT message_id, topic, substr(data, 1, ?), attempts, ?, 'delivery', ?,
                        \(SQLiteMetadataStore.teamOfPayload) FROM outbox
                    WHERE message_id = ?
                    """,
                arguments: [DeadLetter.maximumStoredBytes, String(error.prefix(2000)), date, messageID])
            try db.execute(sql: "DELETE FROM outbox WHERE message_id = ?", arguments: [messageID])
        }
    }

    /// When the next message falls due.
    public func nextDueDate() async throws -> Date? {
        try await pool.read { db in try Date.fetchOne(db, sql: "SELECT MIN(next_attempt_at) FROM outbox") }
    }

    /// How many messages wait, and when the oldest was published.
    public func backlog() async throws -> OutboxBacklog {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), MIN(published_at) FROM outbox")
            return OutboxBacklog(messages: row?[0] ?? 0, oldestPublishedAt: row?[1])
        }
    }

    /// Adds or replaces a dead letter.
    public func deadLetter(_ letter: DeadLetter) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO dead_letters
                        (message_id, topic, data, attempts, last_error, source, dead_at, team_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    letter.messageID, letter.topic, letter.data, letter.attempts, String(letter.lastError.prefix(2000)),
                    letter.source, letter.deadAt, letter.teamID?.lowercasedString,
                ])
        }
    }

    /// A page of a team's dead letters, oldest first.
    public func deadLetters(teamID: TeamID, _ page: PageRequest) async throws -> Page<DeadLetter> {
        try await pool.read { db in
            let team = teamID.lowercasedString
            let items = try Row.fetchAll(
                db,
                sql: "SELECT * FROM dead_letters WHERE team_id = ? ORDER BY dead_at, message_id LIMIT ? OFFSET ?",
                arguments: [team, page.limit, page.skip]
            ).map(Self.deadLetter)
            let total = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM dead_letters WHERE team_id = ?", arguments: [team])
            return Page(items: items, total: total ?? 0)
        }
    }

    /// One dead letter.
    public func deadLetter(messageID: String) async throws -> DeadLetter? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dead_letters WHERE message_id = ?", arguments: [messageID])
                .map(Self.deadLetter)
        }
    }

    /// Removes a dead letter.
    public func removeDeadLetter(messageID: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM dead_letters WHERE message_id = ?", arguments: [messageID])
            return db.changesCount > 0
        }
    }

    private static func deadLetter(_ row: Row) -> DeadLetter {
        DeadLetter(
            messageID: row["message_id"], topic: row["topic"], data: row["data"], attempts: row["attempts"],
            lastError: row["last_error"], source: row["source"], deadAt: row["dead_at"],
            teamID: (row["team_id"] as String?).flatMap { TeamID($0) })
    }
}
