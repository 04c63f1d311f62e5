import Foundation
import GRDB
import ImageAPICore
import Locking
import VectorMath

/// The embedded vector index: vectors stored in SQLite, searched in memory.
///
/// Each process keeps the vectors in contiguous `Float32` matrices, one per team and model, and
/// scores a query with one BLAS product (exact cosine: vectors are stored L2-normalised).
/// Every write also appends to `vector_changes`; before each search the process reads the
/// changes past the last sequence it applied, so a vector written by another process (a
/// separately started Search binary) is seen at once. When the change log has been trimmed past
/// what a process saw, it reloads everything.
///
/// The last ``rememberedAnswers`` answers are remembered with the change they were computed at:
/// the same query asked again before any write (in any process) is answered without a scan, and
/// any write makes every remembered answer unusable, so an answer is never stale.
public final class SQLiteVectorIndex: VectorIndex {
    /// How many change-log entries are kept for other processes to catch up from.
    public static let retainedChanges = 10_000

    /// How many recent answers are remembered.
    public static let rememberedAnswers = 64

    private let pool: DatabasePool
    private let state: Locked<State>
    private let answers = Locked(RecentAnswers(capacity: SQLiteVectorIndex.rememberedAnswers))

    /// How many searches were answered from memory, without a scan.
    public var answeredFromMemory: Int { answers.withLock { $0.reused } }

    struct Bucket: Hashable, Sendable {
        var teamID: TeamID
        var model: String
    }

    /// A stored row as this process holds it: where its vector is, and what it is filtered by.
    struct Stored: Sendable {
        var bucket: Bucket
        var vector: [Float]
        var payload: VectorPayload
    }

    struct State: Sendable {
        var matrices: [Bucket: VectorMatrix<ImageID>] = [:]
        var payloads: [ImageID: (bucket: Bucket, payload: VectorPayload)] = [:]
        var lastSequence: Int64 = 0

        mutating func apply(_ imageID: ImageID, _ stored: Stored) {
            remove(imageID)
            matrices[stored.bucket, default: VectorMatrix(dimensions: stored.vector.count)].upsert(
                imageID, stored.vector)
            payloads[imageID] = (stored.bucket, stored.payload)
        }

        mutating func remove(_ imageID: ImageID) {
            guard let (bucket, _) = payloads.removeValue(forKey: imageID) else { return }
            matrices[bucket]?.remove(imageID)
            if matrices[bucket]?.count == 0 { matrices[bucket] = nil }
        }
    }

    /// Opens the index in a SQLite file (by default the metadata database's file, beside its
    /// tables), creates its tables when missing and loads every vector into memory.
    /// - Parameter path: The database file.
    /// - Throws: When the file cannot be opened or read.
    public init(path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        self.pool = try DatabasePool(path: path, configuration: configuration)
        self.state = Locked(State())
        try pool.write { db in
            try db.execute(sql: Self.schema)
            // Databases from before the index kept tags and upload times: add the columns; their
            // rows stay NULL there (unknown) until the image is embedded or updated again.
            let columns = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(vectors)").map { $0["name"] as String })
            if !columns.contains("tags") { try db.execute(sql: "ALTER TABLE vectors ADD COLUMN tags TEXT") }
            if !columns.contains("created_at") {
                try db.execute(sql: "ALTER TABLE vectors ADD COLUMN created_at DATETIME")
            }
        }
        try pool.read { db in try self.reload(db) }
    }

    /// The index's tables. Written with `IF NOT EXISTS`: databases made before the index had its
    /// own target got the same tables from the metadata store's second migration.
    static let schema = """
        CREATE TABLE IF NOT EXISTS vectors (
            image_id TEXT PRIMARY KEY NOT NULL,
            team_id TEXT NOT NULL,
            collection_id TEXT,
            tags TEXT, -- a JSON array; NULL for rows written before tags were kept
            created_at DATETIME,
            model TEXT NOT NULL,
            dimensions INTEGER NOT NULL,
            vector BLOB NOT NULL,
            updated_at DATETIME NOT NULL
        );
        CREATE INDEX IF NOT EXISTS vectors_by_team ON vectors(team_id, collection_id);
        -- Every vector write appends the image id here, so each process can bring its in-memory
        -- copy up to date by reading what changed since the last sequence it saw.
        CREATE TABLE IF NOT EXISTS vector_changes (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT,
            image_id TEXT NOT NULL
        );
        """

    /// How many vectors this process holds in memory.
    public var count: Int { state.withLock { $0.payloads.count } }

    /// Adds or replaces an image's vector.
    public func upsert(_ entry: VectorEntry) async throws {
        try await upsert(contentsOf: [entry])
    }

    /// Adds or replaces many vectors in one transaction.
    public func upsert(contentsOf entries: [VectorEntry]) async throws {
        try await pool.write { db in
            let statement = try db.makeStatement(
                sql: """
                    INSERT OR REPLACE INTO vectors
                        (image_id, team_id, collection_id, tags, created_at, model, dimensions, vector, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            let now = Date()
            for entry in entries {
                let blob = entry.vector.withUnsafeBufferPointer { Data(buffer: $0) }
                try statement.execute(arguments: [
                    entry.imageID.lowercasedString, entry.teamID.lowercasedString,
                    entry.collectionID?.lowercasedString, try Self.encode(entry.tags), entry.createdAt, entry.model,
                    entry.vector.count, blob, now,
                ])
                try Self.recordChange(entry.imageID, db)
            }
        }
        try await catchUp()
    }

    /// Removes an image's vector.
    public func delete(imageID: ImageID) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM vectors WHERE image_id = ?", arguments: [imageID.lowercasedString])
            if db.changesCount > 0 { try Self.recordChange(imageID, db) }
        }
        try await catchUp()
    }

    /// Removes a team's vectors, or one collection's.
    @discardableResult
    public func deleteAll(teamID: TeamID, collectionID: UUID?) async throws -> Int {
        let removed = try await pool.write { db in
            var sql = "DELETE FROM vectors WHERE team_id = ?"
            var arguments: StatementArguments = [teamID.lowercasedString]
            if let collectionID {
                sql += " AND collection_id = ?"
                arguments += [collectionID.lowercasedString]
            }
            let ids = try String.fetchAll(
                db, sql: sql.replacingOccurrences(of: "DELETE", with: "SELECT image_id"), arguments: arguments)
            try db.execute(sql: sql, arguments: arguments)
            for id in ids { try Self.recordChange(id, db) }
            return ids.count
        }
        try await catchUp()
        return removed
    }

    /// Changes the collection and tags an image's vector is filtered by.
    public func updatePayload(imageID: ImageID, collectionID: UUID?, tags: [String]) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE vectors SET collection_id = ?, tags = ? WHERE image_id = ?",
                arguments: [collectionID?.lowercasedString, try Self.encode(tags), imageID.lowercasedString])
            if db.changesCount > 0 { try Self.recordChange(imageID, db) }
        }
        try await catchUp()
    }

    /// Reads one of a team's stored vectors.
    public func vector(imageID: ImageID, teamID: TeamID) async throws -> [Float]? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM vectors WHERE image_id = ? AND team_id = ?",
                arguments: [imageID.lowercasedString, teamID.lowercasedString]
            ).map { try Self.stored($0).vector }
        }
    }

    /// Exact cosine ranking of a team's vectors of one model, filtered in memory, after catching
    /// up with other processes: one page and the number of all matches.
    public func search(_ query: VectorQuery) async throws -> VectorMatches {
        try await catchUp()
        let bucket = Bucket(teamID: query.teamID, model: query.model)
        // Copy out (copy-on-write: no vector is copied) and score outside the lock.
        let (matrix, payloads, sequence) = state.withLock { state in
            (state.matrices[bucket], state.payloads, state.lastSequence)
        }
        if let known = answers.withLock({ $0.answer(to: query, at: sequence) }) { return known }
        let matches = Self.scan(query, matrix: matrix, payloads: payloads)
        answers.withLock { $0.remember(matches, for: query, at: sequence) }
        return matches
    }

    private static func scan(
        _ query: VectorQuery, matrix: VectorMatrix<ImageID>?,
        payloads: [ImageID: (bucket: Bucket, payload: VectorPayload)]
    ) -> VectorMatches {
        guard let matrix, matrix.dimensions == query.vector.count else { return VectorMatches(hits: [], total: 0) }
        // Nothing to filter beyond team and model (the bucket): no payload is looked up.
        let unfiltered = query.filter == ImageFilter() && query.excluding == nil
        let ranked = matrix.page(
            query.vector, skip: query.skip, limit: query.limit, minimumScore: query.minimumCosine
        ) { imageID in
            if unfiltered { return true }
            guard let stored = payloads[imageID] else { return false }
            return query.admits(teamID: query.teamID, model: query.model, imageID: imageID, payload: stored.payload)
        }
        return VectorMatches(
            hits: ranked.page.map { VectorHit(imageID: $0.key, cosine: $0.score) }, total: ranked.total)
    }

    // MARK: Keeping the in-memory copy current

    /// Applies every change recorded since the last one this process saw.
    func catchUp() async throws {
        let seen = state.withLock { $0.lastSequence }
        try await pool.read { db in
            let bounds = try Row.fetchOne(
                db, sql: "SELECT MIN(sequence) AS low, MAX(sequence) AS high FROM vector_changes")
            let high: Int64 = bounds?["high"] ?? 0
            guard high > seen else { return }
            let low: Int64 = bounds?["low"] ?? 0
            if low > seen + 1 {
                try self.reload(db)
                return
            }
            let changed = try String.fetchAll(
                db, sql: "SELECT DISTINCT image_id FROM vector_changes WHERE sequence > ? AND sequence <= ?",
                arguments: [seen, high])
            var current: [String: Stored] = [:]
            for chunk in stride(from: 0, to: changed.count, by: 500) {
                let ids = Array(changed[chunk..<min(chunk + 500, changed.count)])
                let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
                for row in try Row.fetchAll(
                    db, sql: "SELECT * FROM vectors WHERE image_id IN (\(marks))", arguments: StatementArguments(ids))
                {
                    current[row["image_id"]] = try Self.stored(row)
                }
            }
            self.state.withLock { state in
                guard state.lastSequence < high else { return }
                for id in changed {
                    guard let uuid = ImageID(id) else { continue }
                    if let stored = current[id] {
                        state.apply(uuid, stored)
                    } else {
                        state.remove(uuid)
                    }
                }
                state.lastSequence = high
            }
        }
    }

    private func reload(_ db: Database) throws {
        var fresh = State()
        fresh.lastSequence = try Int64.fetchOne(db, sql: "SELECT MAX(sequence) FROM vector_changes") ?? 0
        let rows = try Row.fetchCursor(db, sql: "SELECT * FROM vectors")
        while let row = try rows.next() {
            fresh.apply(try Self.id(row, "image_id"), try Self.stored(row))
        }
        state.withLock { $0 = fresh }
    }

    private static func recordChange(_ imageID: ImageID, _ db: Database) throws {
        try recordChange(imageID.lowercasedString, db)
    }

    private static func recordChange(_ imageID: String, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO vector_changes (image_id) VALUES (?)", arguments: [imageID])
        let sequence = db.lastInsertedRowID
        if sequence % 1000 == 0 {
            try db.execute(
                sql: "DELETE FROM vector_changes WHERE sequence <= ?", arguments: [sequence - Int64(retainedChanges)])
        }
    }

    private static func stored(_ row: Row) throws -> Stored {
        let blob: Data = row["vector"]
        let dimensions: Int = row["dimensions"]
        guard blob.count == dimensions * MemoryLayout<Float>.size else {
            throw DatabaseError(message: "vector of \(row["image_id"] as String) has \(blob.count) bytes")
        }
        let vector = blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let tags = try (row["tags"] as String?).map { text in
            Set(try JSONDecoder().decode([String].self, from: Data(text.utf8)))
        }
        return Stored(
            bucket: Bucket(teamID: try id(row, "team_id"), model: row["model"]), vector: vector,
            payload: VectorPayload(
                collectionID: (row["collection_id"] as String?).flatMap(UUID.init(uuidString:)), tags: tags,
                createdAt: row["created_at"]))
    }

    private static func encode(_ tags: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(tags), as: UTF8.self)
    }

    private static func id<ID: TypedIdentifier>(_ row: Row, _ column: String) throws -> ID {
        let text: String = row[column]
        guard let id = ID(text) else {
            throw DatabaseError(message: "column \(column) holds '\(text)', which is not a UUID")
        }
        return id
    }
}

/// The last answers of an index, each with the change it was computed at.
struct RecentAnswers: Sendable {
    private struct Entry: Sendable {
        var query: VectorQuery
        var sequence: Int64
        var matches: VectorMatches
    }

    let capacity: Int
    private var entries: [Entry] = []
    /// How many answers were given again.
    private(set) var reused = 0

    init(capacity: Int) { self.capacity = capacity }

    /// The answer remembered for this query at this change, if any (then the most recent).
    mutating func answer(to query: VectorQuery, at sequence: Int64) -> VectorMatches? {
        guard let index = entries.lastIndex(where: { $0.sequence == sequence && $0.query == query }) else {
            return nil
        }
        let entry = entries.remove(at: index)
        entries.append(entry)
        reused += 1
        return entry.matches
    }

    /// Remembers an answer; answers computed before this change are forgotten, then the oldest.
    mutating func remember(_ matches: VectorMatches, for query: VectorQuery, at sequence: Int64) {
        entries.removeAll { $0.sequence < sequence }
        entries.append(Entry(query: query, sequence: sequence, matches: matches))
        if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
    }
}
