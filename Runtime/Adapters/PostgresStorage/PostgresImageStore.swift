import Foundation
import ImageAPICore
import PostgresNIO
import RuntimeSupport

/// Images, their full-text index (a `tsvector` column with a GIN index) and the transactional
/// outbox, in the metadata database.
extension PostgresMetadataStore: ImageStore {
    /// Stores the image and its processing message in one transaction. A team's bytes are kept
    /// once: the first copy holds the unique index on (team, digest); a second is refused, naming
    /// the first, unless duplicates are allowed, when it is stored marked as a copy. Of two
    /// uploads racing with the same bytes, the unique index lets one through.
    public func insertImage(_ image: ImageRecord, publishing message: OutboxMessage, allowDuplicate: Bool) async throws
    {
        for attempt in 1...3 {
            do {
                try await transaction { [logger] connection in
                    let holder = try await connection.query(
                        """
                        SELECT id FROM images WHERE team_id = \(image.teamID.uuid) AND sha256 = \(image.sha256)
                        ORDER BY number LIMIT 1
                        """, logger: logger
                    ).collect().first?.decode(UUID.self)
                    if let holder, !allowDuplicate { throw DuplicateImageError(existingImageID: ImageID(uuid: holder)) }
                    try await connection.query(try Self.insert(image, isDuplicate: holder != nil), logger: logger)
                    try await connection.query(try Self.enqueue(message, at: image.createdAt), logger: logger)
                }
                return
            } catch let error as PSQLError where Self.violation(error)?.constraint == "images_unique_content" {
                // Another upload of these bytes committed between the check and the insert.
                if !allowDuplicate, let holder = try await self.image(sha256: image.sha256, teamID: image.teamID) {
                    throw DuplicateImageError(existingImageID: holder.id)
                }
                if attempt == 3 { throw error }
            }
        }
    }

    /// Reads one of a team's images.
    public func image(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await rows("SELECT * FROM images WHERE id = \(id.uuid) AND team_id = \(teamID.uuid)").first.map(Self.image)
    }

    /// Reads several of a team's images.
    public func images(ids: [ImageID], teamID: TeamID) async throws -> [ImageRecord] {
        guard !ids.isEmpty else { return [] }
        return try await rows(
            "SELECT * FROM images WHERE team_id = \(teamID.uuid) AND id = ANY(\(ids.map(\.uuid)))"
        ).map(Self.image)
    }

    /// Lists a team's images, newest first, with the total.
    public func images(teamID: TeamID, filter: ImageFilter, _ page: PageRequest) async throws -> Page<ImageRecord> {
        try await self.page(
            "images", where: Self.conditions(teamID: teamID, filter: filter), orderBy: "created_at DESC, number DESC",
            page, Self.image)
    }

    /// Finds a team's image by content hash (the oldest, when duplicates were allowed).
    public func image(sha256: String, teamID: TeamID) async throws -> ImageRecord? {
        try await rows(
            "SELECT * FROM images WHERE team_id = \(teamID.uuid) AND sha256 = \(sha256) ORDER BY number LIMIT 1"
        ).first.map(Self.image)
    }

    /// Updates description, tags and collection, and the text index with them.
    public func updateImage(_ image: ImageRecord) async throws -> Bool {
        try await !rows(
            """
            UPDATE images SET description = \(image.description), tags = \(image.tags),
                collection_id = \(image.collectionID), updated_at = \(image.updatedAt),
                search_text = to_tsvector('simple', \(Self.searchableText(of: image)))
            WHERE id = \(image.id.uuid) AND team_id = \(image.teamID.uuid) RETURNING id
            """
        ).isEmpty
    }

    /// The perceptual hashes of a team's images.
    public func perceptualHashes(teamID: TeamID) async throws -> [HashedImage] {
        try await rows(
            "SELECT id, phash, created_at FROM images WHERE team_id = \(teamID.uuid) AND phash IS NOT NULL"
        ).compactMap { row in
            let (id, phash, createdAt) = try row.decode((UUID, String, Date).self)
            return PerceptualHash(hex: phash).map { HashedImage(id: ImageID(uuid: id), hash: $0, createdAt: createdAt) }
        }
    }

    /// Deletes an image's metadata (its text index goes with the row).
    public func deleteImage(id: ImageID, teamID: TeamID) async throws -> ImageRecord? {
        try await rows("DELETE FROM images WHERE id = \(id.uuid) AND team_id = \(teamID.uuid) RETURNING *").first.map(
            Self.image)
    }

    /// Starts a processing attempt unless the image is gone, already embedded with `model`, or
    /// out of attempts: the row is locked while the domain decides.
    public func beginProcessing(
        id: ImageID, teamID: TeamID, model: String, maxAttempts: Int, at date: Date
    ) async throws
        -> ProcessingStart
    {
        try await transaction { [logger] connection in
            guard
                let row = try await connection.query(
                    "SELECT * FROM images WHERE id = \(id.uuid) AND team_id = \(teamID.uuid) FOR UPDATE", logger: logger
                ).collect().first
            else { return .missing }
            let start = try Self.image(row).startingProcessing(model: model, maxAttempts: maxAttempts, at: date)
            if case .started(let image) = start {
                try await connection.query(
                    """
                    UPDATE images SET embedding_status = \(image.embeddingStatus.rawValue),
                        embedding_attempts = \(image.embeddingAttempts), updated_at = \(image.updatedAt)
                    WHERE id = \(id.uuid)
                    """, logger: logger)
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
        _ = try await rows(
            """
            UPDATE images SET embedding_status = 'success', embedding_error = NULL, embedding_model = \(model),
                embedding_dimensions = \(dimensions), embedded_at = \(date), phash = \(perceptualHash?.hex),
                updated_at = \(date)
            WHERE id = \(id.uuid) AND team_id = \(teamID.uuid)
            """)
    }

    /// Records a failed attempt: `pending` while attempts remain, `failed` after the last.
    public func failProcessing(id: ImageID, teamID: TeamID, error: String, final: Bool, at date: Date) async throws {
        _ = try await rows(
            """
            UPDATE images SET embedding_status = \(ImageRecord.statusAfterFailure(final: final).rawValue),
                embedding_error = \(ImageRecord.storedEmbeddingError(error)), updated_at = \(date)
            WHERE id = \(id.uuid) AND team_id = \(teamID.uuid)
            """)
    }

    /// Postpones the attempt and publishes the next delivery, due at `dueAt`, in one transaction:
    /// the row is locked while the domain decides.
    public func postponeProcessing(
        id: ImageID, teamID: TeamID, waitingFor reason: String, at date: Date, publishing message: OutboxMessage,
        dueAt: Date
    ) async throws -> ImageRecord? {
        try await transaction { [logger] connection in
            guard
                let row = try await connection.query(
                    "SELECT * FROM images WHERE id = \(id.uuid) AND team_id = \(teamID.uuid) FOR UPDATE", logger: logger
                ).collect().first
            else { return nil }
            var image = try Self.image(row)
            image.markPostponed(waitingFor: reason, at: date)
            try await connection.query(
                """
                UPDATE images SET embedding_status = \(image.embeddingStatus.rawValue),
                    embedding_attempts = \(image.embeddingAttempts), embedding_error = \(image.embeddingError),
                    updated_at = \(image.updatedAt)
                WHERE id = \(id.uuid)
                """, logger: logger)
            try await connection.query(try Self.enqueue(message, at: date, due: dueAt), logger: logger)
            return image
        }
    }

    /// Sets the image pending again and publishes its processing message, in one transaction.
    public func requeueImage(
        id: ImageID, teamID: TeamID, at date: Date, publishing message: OutboxMessage
    ) async throws
        -> ImageRecord?
    {
        try await transaction { [logger] connection in
            guard
                let row = try await connection.query(
                    """
                    UPDATE images SET embedding_status = 'pending', embedding_error = NULL, embedding_attempts = 0,
                        updated_at = \(date)
                    WHERE id = \(id.uuid) AND team_id = \(teamID.uuid) RETURNING *
                    """, logger: logger
                ).collect().first
            else { return nil }
            try await connection.query(try Self.enqueue(message, at: date), logger: logger)
            return try Self.image(row)
        }
    }

    /// Queues a team's stale and failed images (or all of them) for re-embedding, in one
    /// transaction with their outbox messages.
    public func requeueImages(
        teamID: TeamID, notEmbeddedWith model: String, includeCurrent: Bool, reason: String, at date: Date
    ) async throws -> Int {
        try await transaction { [logger] connection in
            let candidates = try await connection.query(
                """
                SELECT id, embedding_status, embedding_model FROM images WHERE team_id = \(teamID.uuid)
                ORDER BY number FOR UPDATE
                """, logger: logger
            ).collect()
            var ids: [UUID] = []
            for row in candidates {
                let (id, status, embeddedWith) = try row.decode((UUID, String, String?).self)
                if ImageRecord.needsReembedding(
                    status: try Self.status(status), embeddedWith: embeddedWith, model: model,
                    includeCurrent: includeCurrent)
                {
                    ids.append(id)
                }
            }
            guard !ids.isEmpty else { return 0 }
            try await connection.query(
                """
                UPDATE images SET embedding_status = 'pending', embedding_error = NULL, embedding_attempts = 0,
                    updated_at = \(date)
                WHERE id = ANY(\(ids))
                """, logger: logger)
            for id in ids {
                let request = ImageProcessingRequest(imageID: ImageID(uuid: id), teamID: teamID, reason: reason)
                try await connection.query(try Self.enqueue(.processing(request), at: date), logger: logger)
            }
            return ids.count
        }
    }

    /// Counts a team's images by embedding state against the current model.
    public func embeddingSummary(teamID: TeamID, model: String) async throws -> EmbeddingSummary {
        var summary = EmbeddingSummary(
            model: model, total: 0, current: 0, stale: 0, pending: 0, processing: 0, failed: 0)
        let groups = try await rows(
            """
            SELECT embedding_status, embedding_model, count(*) FROM images WHERE team_id = \(teamID.uuid)
            GROUP BY embedding_status, embedding_model
            """)
        for group in groups {
            let (status, embeddedWith, count) = try group.decode((String, String?, Int).self)
            summary.add(count, status: try Self.status(status), embeddedWith: embeddedWith)
        }
        return summary
    }

    /// Full-text search: every image matching any query word as a prefix, with the share of
    /// words it matches and its `ts_rank`, best first.
    public func searchText(
        _ words: [String], teamID: TeamID, filter: ImageFilter, limit: Int
    ) async throws
        -> [TextMatch]
    {
        let terms = words.compactMap(Self.prefixQuery)
        guard !terms.isEmpty, limit > 0 else { return [] }
        let any = terms.map { "(\($0))" }.joined(separator: " | ")
        var query = Self.conditions(teamID: teamID, filter: filter)
        let filterBinds = query.binds.count
        query.binds.append(any)
        query.binds.append(terms)
        query.binds.append(limit)
        let (anyTerm, eachTerm, limitBind) = ("$\(filterBinds + 1)", "$\(filterBinds + 2)", "$\(filterBinds + 3)")
        query.sql = """
            SELECT images.*, ts_rank(search_text, to_tsquery('simple', \(anyTerm))) AS relevance,
                (SELECT count(*) FROM unnest(\(eachTerm)::text[]) AS term
                 WHERE search_text @@ to_tsquery('simple', term)) AS matched
            FROM images WHERE \(query.sql) AND search_text @@ to_tsquery('simple', \(anyTerm))
            ORDER BY relevance DESC, number DESC LIMIT \(limitBind)
            """
        return try await rows(query).map { row in
            let columns = row.makeRandomAccess()
            return TextMatch(
                image: try Self.image(row),
                coverage: Double(try columns["matched"].decode(Int.self)) / Double(terms.count),
                weight: Double(try columns["relevance"].decode(Float.self)))
        }
    }

    // MARK: Statements

    static func insert(_ image: ImageRecord, isDuplicate: Bool) throws -> PostgresQuery {
        """
        INSERT INTO images (
            id, team_id, uploader_id, collection_id, filename, content_type, format, file_size, width, height,
            orientation, sha256, description, tags, exif, search_text, embedding_status, embedding_error,
            embedding_attempts, embedding_model, embedding_dimensions, embedded_at, phash, created_at, updated_at,
            is_duplicate)
        VALUES (
            \(image.id.uuid), \(image.teamID.uuid), \(image.uploaderID.uuid), \(image.collectionID), \(image.filename),
            \(image.contentType), \(image.format), \(image.fileSize), \(image.width), \(image.height),
            \(image.orientation), \(image.sha256), \(image.description), \(image.tags), \(try json(image.exif)),
            to_tsvector('simple', \(searchableText(of: image))), \(image.embeddingStatus.rawValue),
            \(image.embeddingError), \(image.embeddingAttempts), \(image.embeddingModel), \(image.embeddingDimensions),
            \(image.embeddedAt), \(image.phash?.hex), \(image.createdAt), \(image.updatedAt), \(isDuplicate))
        """
    }

    static func enqueue(_ message: OutboxMessage, at date: Date, due: Date? = nil) throws -> PostgresQuery {
        try """
        INSERT INTO outbox (message_id, topic, data, attributes, published_at, attempts, next_attempt_at)
        VALUES (\(message.messageID), \(message.topic), \(message.data), \(try json(message.attributes)), \(date), 0,
                \(due ?? date))
        """
    }

    /// The listing's conditions: the team, then the filter's collection, tags (all of them),
    /// upload dates and processing state, as a condition whose binds come first in the query it joins.
    static func conditions(teamID: TeamID, filter: ImageFilter) -> PostgresQuery {
        var query = PostgresQuery(unsafeSQL: "")
        func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            query.binds.append(value)
            return "$\(query.binds.count)"
        }
        query.sql = "team_id = \(bind(teamID.uuid))"
        if let collection = filter.collectionID { query.sql += " AND collection_id = \(bind(collection))" }
        if !filter.tags.isEmpty { query.sql += " AND tags @> \(bind(filter.tags))" }
        if let from = filter.uploadedFrom { query.sql += " AND created_at >= \(bind(from))" }
        if let to = filter.uploadedTo { query.sql += " AND created_at <= \(bind(to))" }
        if let status = filter.embeddingStatus { query.sql += " AND embedding_status = \(bind(status.rawValue))" }
        return query
    }

    /// What the text index holds for an image: the words of its file name, description, tags
    /// and EXIF values, everything but letters and digits turned into spaces (so that
    /// `red_car-at.night.jpg` gives `red car at night jpg`, and no text reads as a host or path
    /// to PostgreSQL's parser).
    static func searchableText(of image: ImageRecord) -> String {
        let text =
            [image.filename, image.description ?? "", image.tags.joined(separator: " ")]
            + image.exif.values.sorted()
        return words(text.joined(separator: " ")).joined(separator: " ")
    }

    /// The letter-and-digit runs of a text.
    static func words(_ text: String) -> [String] {
        text.split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }

    /// A query word as a `tsquery` prefix match: each of its letter-and-digit runs as a prefix,
    /// all of them (`red-car` → `'red':* & 'car':*`); `nil` for a word with none.
    static func prefixQuery(_ word: String) -> String? {
        let parts = words(word)
        guard !parts.isEmpty else { return nil }
        return parts.map { "'\($0)':*" }.joined(separator: " & ")
    }

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONCoding.makeEncoder().encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONCoding.makeDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// An `embedding_status` value.
    static func status(_ text: String) throws -> EmbeddingStatus {
        guard let status = EmbeddingStatus(rawValue: text) else {
            throw PostgresStoreError("embedding_status holds '\(text)', which is not a status")
        }
        return status
    }

    static func image(_ row: PostgresRow) throws -> ImageRecord {
        let row = row.makeRandomAccess()
        var image = ImageRecord(
            id: ImageID(uuid: try row["id"].decode(UUID.self)),
            teamID: TeamID(uuid: try row["team_id"].decode(UUID.self)),
            uploaderID: UserID(uuid: try row["uploader_id"].decode(UUID.self)),
            collectionID: try row["collection_id"].decode(UUID?.self),
            filename: try row["filename"].decode(String.self),
            contentType: try row["content_type"].decode(String.self), format: try row["format"].decode(String.self),
            fileSize: try row["file_size"].decode(Int.self), width: try row["width"].decode(Int.self),
            height: try row["height"].decode(Int.self), orientation: try row["orientation"].decode(Int?.self),
            sha256: try row["sha256"].decode(String.self), description: try row["description"].decode(String?.self),
            tags: try row["tags"].decode([String].self),
            exif: try decodeJSON([String: String].self, try row["exif"].decode(String.self)),
            createdAt: try row["created_at"].decode(Date.self))
        image.embeddingStatus = try status(try row["embedding_status"].decode(String.self))
        image.embeddingError = try row["embedding_error"].decode(String?.self)
        image.embeddingAttempts = try row["embedding_attempts"].decode(Int.self)
        image.embeddingModel = try row["embedding_model"].decode(String?.self)
        image.embeddingDimensions = try row["embedding_dimensions"].decode(Int?.self)
        image.embeddedAt = try row["embedded_at"].decode(Date?.self)
        image.phash = try row["phash"].decode(String?.self).flatMap { PerceptualHash(hex: $0) }
        image.updatedAt = try row["updated_at"].decode(Date.self)
        return image
    }
}

/// A stored value the store cannot read back.
struct PostgresStoreError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
