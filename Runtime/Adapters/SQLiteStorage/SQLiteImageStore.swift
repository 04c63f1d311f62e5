import Foundation
import GRDB
import ImageAPICore
import RuntimeSupport

/// Images, their full-text index and the transactional outbox, in the metadata database.
extension SQLiteMetadataStore: ImageStore {
    /// Stores the image, its text-index row and its processing message in one transaction; a
    /// second copy of a team's bytes is stored only when duplicates are allowed, and marked so
    /// that the unique index on (team, digest) covers the first copy alone.
    public func insertImage(_ image: ImageRecord, publishing message: OutboxMessage, allowDuplicate: Bool) async throws
    {
        try await pool.write { db in
            let existing = try String.fetchOne(
                db, sql: "SELECT id FROM images WHERE team_id = ? AND sha256 = ? ORDER BY number LIMIT 1",
                arguments: [image.teamID.lowercasedString, image.sha256])
            if let existing, !allowDuplicate, let existingID = ImageID(existing) {
                throw DuplicateImageError(existingImageID: existingID)
            }
            try db.execute(
                sql: """
                    INSERT INTO images (
                        id, team_id, uploader_id, collection_id, filename, content_type, format, file_size,
                        width, height, orientation, sha256, description, tags, exif, embedding_status,
                        embedding_error, embedding_attempts, embedding_model, embedding_dimensions, embedded_at,
                        phash, created_at, updated_at, is_duplicate)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    image.id.lowercasedString, image.teamID.lowercasedString, image.uploaderID.lowercasedString,
                    image.collectionID?.lowercasedString, image.filename, image.contentType, image.format,
                    image.fileSize, image.width, image.height, image.orientation, image.sha256, image.description,
                    try Self.json(image.tags), try Self.json(image.exif), image.embeddingStatus.rawValue,
                    image.embeddingError, image.embeddingAttempts, image.embeddingModel, image.embeddingDimensions,
                    image.embeddedAt, image.phash?.hex, image.createdAt, image.updatedAt, existing != nil,
                ])
            try Self.indexText(of: image, number: db.lastInsertedRowID, db)
            try Self.enqueue(message, at: image.createdAt, db)
        }
    }

    /// Reads one of a team's images.
    public func image(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM images WHERE id = ? AND team_id = ?",
                arguments: [id.lowercasedString, teamID.lowercasedString]
            ).map(Self.image)
        }
    }

    /// Reads several of a team's images.
    public func images(ids: [ImageID], teamID: TeamID) async throws -> [ImageRecord] {
        guard !ids.isEmpty else { return [] }
        return try await pool.read { db in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
            var arguments: StatementArguments = [teamID.lowercasedString]
            arguments += StatementArguments(ids.map(\.lowercasedString))
            return try Row.fetchAll(
                db, sql: "SELECT * FROM images WHERE team_id = ? AND id IN (\(marks))", arguments: arguments
            ).map(Self.image)
        }
    }

    /// Lists a team's images, newest first, with the total.
    public func images(teamID: TeamID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord> {
        try await pool.read { db in
            let (conditions, arguments) = Self.conditions(teamID: teamID, filter: filter)
            let total = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM images WHERE \(conditions)", arguments: arguments)
            var pageArguments = arguments
            pageArguments += [page.limit, page.skip]
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM images WHERE \(conditions)
                    ORDER BY created_at DESC, number DESC LIMIT ? OFFSET ?
                    """,
                arguments: pageArguments)
            return Page(items: try rows.map(Self.image), total: total ?? 0)
        }
    }

    /// Finds a team's image by content hash (the oldest, when duplicates were allowed).
    public func image(sha256: String, teamID: TeamID) async throws -> ImageRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM images WHERE team_id = ? AND sha256 = ? ORDER BY number LIMIT 1",
                arguments: [teamID.lowercasedString, sha256]
            ).map(Self.image)
        }
    }

    /// Updates description, tags and collection, and the text index with them.
    public func updateImage(_ image: ImageRecord) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE images SET description = ?, tags = ?, collection_id = ?, updated_at = ?
                    WHERE id = ? AND team_id = ?
                    """,
                arguments: [
                    image.description, try Self.json(image.tags), image.collectionID?.lowercasedString,
                    image.updatedAt, image.id.lowercasedString, image.teamID.lowercasedString,
                ])
            guard db.changesCount > 0,
                let number = try Int64.fetchOne(
                    db, sql: "SELECT number FROM images WHERE id = ?", arguments: [image.id.lowercasedString])
            else { return false }
            try db.execute(sql: "DELETE FROM images_text WHERE rowid = ?", arguments: [number])
            try Self.indexText(of: image, number: number, db)
            return true
        }
    }

    /// The perceptual hashes of a team's images.
    public func perceptualHashes(teamID: TeamID) async throws -> [HashedImage] {
        try await pool.read { db in
            // The instant as seconds since 1970, computed by SQLite: reading 100,000 dates as text
            // costs more than the rest of the read.
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT id, phash, (julianday(created_at) - 2440587.5) * 86400.0 FROM images
                    WHERE team_id = ? AND phash IS NOT NULL
                    """,
                arguments: [teamID.lowercasedString])
            var hashes: [HashedImage] = []
            while let row = try rows.next() {
                guard let hash = PerceptualHash(hex: row[1] as String), let id = ImageID(row[0] as String) else {
                    throw DatabaseError(message: "an image's id or perceptual hash does not parse")
                }
                hashes.append(
                    HashedImage(
                        id: id, hash: hash,
                        createdAt: Date(timeIntervalSince1970: row[2] as Double)))
            }
            return hashes
        }
    }

    /// Deletes an image's metadata and text-index row.
    public func deleteImage(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await pool.write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM images WHERE id = ? AND team_id = ?",
                    arguments: [id.lowercasedString, teamID.lowercasedString])
            else { return nil }
            let number: Int64 = row["number"]
            try db.execute(sql: "DELETE FROM images_text WHERE rowid = ?", arguments: [number])
            try db.execute(sql: "DELETE FROM images WHERE number = ?", arguments: [number])
            return try Self.image(row)
        }
    }

    /// Starts a processing attempt unless the image is gone, already embedded with `model`, or
    /// out of attempts.
    public func beginProcessing(
        id: ImageID, teamID: TeamID, model: String, maxAttempts: Int, at date: Date
    ) async throws
        -> ProcessingStart
    {
        try await pool.write { db in
            let key: StatementArguments = [id.lowercasedString, teamID.lowercasedString]
            guard
                let row = try Row.fetchOne(db, sql: "SELECT * FROM images WHERE id = ? AND team_id = ?", arguments: key)
            else { return .missing }
            let start = try Self.image(row).startingProcessing(model: model, maxAttempts: maxAttempts, at: date)
            if case .started(let image) = start {
                try db.execute(
                    sql: """
                        UPDATE images SET embedding_status = ?, embedding_attempts = ?, updated_at = ?
                        WHERE id = ? AND team_id = ?
                        """,
                    arguments: [image.embeddingStatus.rawValue, image.embeddingAttempts, image.updatedAt] + key)
            }
            return start
        }
    }

    /// Marks the image embedded.
    public func completeProcessing(
        id: ImageID, teamID: TeamID, model: String, dimensions: Int, perceptualHash: PerceptualHash?, at date: Date
    )
        async throws
    {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE images SET embedding_status = 'success', embedding_error = NULL, embedding_model = ?,
                    embedding_dimensions = ?, embedded_at = ?, phash = ?, updated_at = ? WHERE id = ? AND team_id = ?
                    """,
                arguments: [
                    model, dimensions, date, perceptualHash?.hex, date, id.lowercasedString, teamID.lowercasedString,
                ])
        }
    }

    /// Records a failed attempt: `pending` while attempts remain, `failed` after the last.
    public func failProcessing(id: ImageID, teamID: TeamID, error: String, final: Bool, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE images SET embedding_status = ?, embedding_error = ?, updated_at = ?
                    WHERE id = ? AND team_id = ?
                    """,
                arguments: [
                    ImageRecord.statusAfterFailure(final: final).rawValue, ImageRecord.storedEmbeddingError(error),
                    date,
                    id.lowercasedString, teamID.lowercasedString,
                ])
        }
    }

    /// Postpones the attempt and publishes the next delivery, due at `dueAt`, in one transaction.
    public func postponeProcessing(
        id: ImageID, teamID: TeamID, waitingFor reason: String, at date: Date, publishing message: OutboxMessage,
        dueAt: Date
    ) async throws -> ImageRecord? {
        try await pool.write { db in
            let key: StatementArguments = [id.lowercasedString, teamID.lowercasedString]
            guard
                let row = try Row.fetchOne(db, sql: "SELECT * FROM images WHERE id = ? AND team_id = ?", arguments: key)
            else { return nil }
            var image = try Self.image(row)
            image.markPostponed(waitingFor: reason, at: date)
            try db.execute(
                sql: """
                    UPDATE images SET embedding_status = ?, embedding_attempts = ?, embedding_error = ?, updated_at = ?
                    WHERE id = ? AND team_id = ?
                    """,
                arguments: [
                    image.embeddingStatus.rawValue, image.embeddingAttempts, image.embeddingError, image.updatedAt,
                ] + key)
            try Self.enqueue(message, at: date, due: dueAt, db)
            return image
        }
    }

    /// Sets the image pending again and publishes its processing message, in one transaction.
    public func requeueImage(
        id: ImageID, teamID: TeamID, at date: Date, publishing message: OutboxMessage
    ) async throws
        -> ImageRecord?
    {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE images SET embedding_status = 'pending', embedding_error = NULL, embedding_attempts = 0,
                    updated_at = ? WHERE id = ? AND team_id = ?
                    """,
                arguments: [date, id.lowercasedString, teamID.lowercasedString])
            guard db.changesCount > 0 else { return nil }
            try Self.enqueue(message, at: date, db)
            return try Row.fetchOne(
                db, sql: "SELECT * FROM images WHERE id = ?", arguments: [id.lowercasedString]
            ).map(Self.image)
        }
    }

    /// Queues a team's stale and failed images (or all of them) for re-embedding, in one
    /// transaction with their outbox messages.
    public func requeueImages(
        teamID: TeamID, notEmbeddedWith model: String, includeCurrent: Bool, reason: String, at date: Date
    ) async throws -> Int {
        try await pool.write { db in
            let team = teamID.lowercasedString
            let ids = try Row.fetchAll(
                db, sql: "SELECT id, embedding_status, embedding_model FROM images WHERE team_id = ? ORDER BY number",
                arguments: [team]
            ).filter { row in
                ImageRecord.needsReembedding(
                    status: try Self.status(row), embeddedWith: row["embedding_model"], model: model,
                    includeCurrent: includeCurrent)
            }.map { row -> String in row["id"] }
            for id in ids {
                try db.execute(
                    sql: """
                        UPDATE images SET embedding_status = 'pending', embedding_error = NULL,
                        embedding_attempts = 0, updated_at = ? WHERE id = ?
                        """,
                    arguments: [date, id])
                guard let imageID = ImageID(id) else { continue }
                try Self.enqueue(
                    .processing(ImageProcessingRequest(imageID: imageID, teamID: teamID, reason: reason)), at: date, db)
            }
            return ids.count
        }
    }

    /// Counts a team's images by embedding state against the current model.
    public func embeddingSummary(teamID: TeamID, model: String) async throws -> EmbeddingSummary {
        try await pool.read { db in
            var summary = EmbeddingSummary(
                model: model, total: 0, current: 0, stale: 0, pending: 0, processing: 0, failed: 0)
            let groups = try Row.fetchAll(
                db,
                sql: """
                    SELECT embedding_status, embedding_model, COUNT(*) AS count FROM images WHERE team_id = ?
                    GROUP BY embedding_status, embedding_model
                    """,
                arguments: [teamID.lowercasedString])
            for group in groups {
                summary.add(group["count"], status: try Self.status(group), embeddedWith: group["embedding_model"])
            }
            return summary
        }
    }

    /// Full-text search: every image matching any query word, with the share of words it matches
    /// and its BM25 relevance, best first.
    public func searchText(
        _ words: [String], teamID: TeamID, filter: ImageFilter, limit: Int
    ) async throws
        -> [TextMatch]
    {
        let terms = words.map(Self.ftsTerm).filter { !$0.isEmpty }
        guard !terms.isEmpty, limit > 0 else { return [] }
        return try await pool.read { db in
            let (conditions, filterArguments) = Self.conditions(teamID: teamID, filter: filter, table: "images")
            // Rank by BM25 over any word, then count, per image, how many words it contains.
            var arguments: StatementArguments = [terms.joined(separator: " OR ")]
            arguments += filterArguments
            arguments += [limit]
            let ranked = try Row.fetchAll(
                db,
                sql: """
                    SELECT images.*, -bm25(images_text) AS relevance FROM images_text
                    JOIN images ON images.number = images_text.rowid
                    WHERE images_text MATCH ? AND \(conditions)
                    ORDER BY relevance DESC, images.number DESC LIMIT ?
                    """,
                arguments: arguments)
            // Coverage from the rows read, as the index tokenised them (one FTS5 query per word
            // restricted to these rows reads each word's whole posting list: seconds for a word
            // that every image of a large library holds).
            let prefixes = words.map(Self.folded).filter { !$0.isEmpty }
            return try ranked.map { row in
                let image = try Self.image(row)
                let tokens = Self.indexedTokens(of: image)
                let held = prefixes.filter { prefix in tokens.contains { $0.hasPrefix(prefix) } }.count
                return TextMatch(
                    image: image, coverage: Double(held) / Double(max(1, prefixes.count)), weight: row["relevance"])
            }
        }
    }

    // MARK: Helpers

    /// A query word as an FTS5 prefix term: quoted (so operators in user text are literal).
    static func ftsTerm(_ word: String) -> String {
        let cleaned = word.replacingOccurrences(of: "\"", with: "").trimmingCharacters(in: .whitespaces)
        return cleaned.isEmpty ? "" : "\"\(cleaned)\"*"
    }

    static func conditions(
        teamID: TeamID, filter: ImageFilter, table: String = "images"
    ) -> (
        String, StatementArguments
    ) {
        var clauses = ["\(table).team_id = ?"]
        var arguments: StatementArguments = [teamID.lowercasedString]
        if let collection = filter.collectionID {
            clauses.append("\(table).collection_id = ?")
            arguments += [collection.lowercasedString]
        }
        for tag in filter.tags {
            clauses.append("EXISTS (SELECT 1 FROM json_each(\(table).tags) WHERE json_each.value = ?)")
            arguments += [tag]
        }
        if let from = filter.uploadedFrom {
            clauses.append("\(table).created_at >= ?")
            arguments += [from]
        }
        if let to = filter.uploadedTo {
            clauses.append("\(table).created_at <= ?")
            arguments += [to]
        }
        if let status = filter.embeddingStatus {
            clauses.append("\(table).embedding_status = ?")
            arguments += [status.rawValue]
        }
        return (clauses.joined(separator: " AND "), arguments)
    }

    static func indexText(of image: ImageRecord, number: Int64, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO images_text (rowid, filename, description, tags, exif) VALUES (?, ?, ?, ?, ?)",
            arguments: [
                number, Self.searchableFilename(image.filename), image.description ?? "",
                image.tags.joined(separator: " "), image.exif.values.sorted().joined(separator: " "),
            ])
    }

    /// The tokens the text index holds for an image, as its `unicode61 remove_diacritics 2`
    /// tokenizer makes them: runs of letters and digits, lower case, without diacritics.
    static func indexedTokens(of image: ImageRecord) -> Set<String> {
        let text = [image.filename, image.description ?? ""] + image.tags + Array(image.exif.values)
        return Set(text.flatMap { folded($0).split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init) })
    }

    /// Lower case without diacritics, as the index folds text.
    static func folded(_ text: String) -> String {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).lowercased()
    }

    /// `red_car-at.night.jpg` → `red car at night jpg`, so the words of a file name are found.
    static func searchableFilename(_ filename: String) -> String {
        filename.map { $0.isLetter || $0.isNumber ? $0 : " " }.reduce(into: "") { $0.append($1) }
    }

    static func enqueue(_ message: OutboxMessage, at date: Date, due: Date? = nil, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO outbox (message_id, topic, data, attributes, published_at, attempts, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, 0, ?)
                """,
            arguments: [
                message.messageID, message.topic, message.data, try json(message.attributes), date, due ?? date,
            ])
    }

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONCoding.makeEncoder().encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONCoding.makeDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// The `embedding_status` column of a row.
    static func status(_ row: Row) throws -> EmbeddingStatus {
        let text: String = row["embedding_status"]
        guard let status = EmbeddingStatus(rawValue: text) else {
            throw DatabaseError(message: "embedding_status holds '\(text)', which is not a status")
        }
        return status
    }

    static func image(_ row: Row) throws -> ImageRecord {
        var image = ImageRecord(
            id: try MetadataRows.id(row, "id"), teamID: try MetadataRows.id(row, "team_id"),
            uploaderID: try MetadataRows.id(row, "uploader_id"),
            collectionID: (row["collection_id"] as String?).flatMap(UUID.init(uuidString:)),
            filename: row["filename"], contentType: row["content_type"], format: row["format"],
            fileSize: row["file_size"], width: row["width"], height: row["height"], orientation: row["orientation"],
            sha256: row["sha256"], description: row["description"],
            tags: try decodeJSON([String].self, row["tags"]), exif: try decodeJSON([String: String].self, row["exif"]),
            createdAt: row["created_at"])
        image.embeddingStatus = try status(row)
        image.embeddingError = row["embedding_error"]
        image.embeddingAttempts = row["embedding_attempts"]
        image.embeddingModel = row["embedding_model"]
        image.embeddingDimensions = row["embedding_dimensions"]
        image.embeddedAt = row["embedded_at"]
        image.phash = (row["phash"] as String?).flatMap { PerceptualHash(hex: $0) }
        image.updatedAt = row["updated_at"]
        return image
    }
}
