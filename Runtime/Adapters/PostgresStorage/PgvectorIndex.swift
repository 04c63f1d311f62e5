import Foundation
import ImageAPICore
import Locking
import Logging
import PostgresNIO

/// A table that holds another vector length for a model than its embedder makes: the process
/// must not start on vectors it cannot search.
public struct PgvectorDimensionMismatch: VectorShapeMismatch, Equatable {
    /// The embedder's model.
    public let model: String
    /// The length the table holds for it.
    public let stored: Int
    /// The embedder's length.
    public let expected: Int

    /// Describes a mismatch.
    public init(model: String, stored: Int, expected: Int) {
        self.model = model
        self.stored = stored
        self.expected = expected
    }

    /// Names both lengths.
    public var description: String {
        "the vectors table holds \(model)'s vectors with \(stored) dimensions, but the embedder makes \(expected)"
    }
}

/// The vector index in PostgreSQL with pgvector (`VECTOR_BACKEND=pgvector`), shared by every
/// process on every machine.
///
/// One `vectors` table holds every model's vectors (an untyped `vector` column) beside the
/// payload searches filter on; ``prepare(model:dimensions:)`` records the model's length and
/// builds an HNSW index (cosine) over that model's rows alone, an expression index on the column
/// cast to its length, as pgvector recommends for vectors of several lengths in one column.
///
/// A search counts the rows its team, model and filter leave. Up to ``exactSearchLimit`` of them
/// it ranks them all (exact, as the embedded index does); past it, it walks the HNSW index with
/// iterative scans (`hnsw.iterative_scan = relaxed_order`), so that a filter that passes few rows
/// still fills the page, and counts the matches above the threshold exactly (measuring every
/// candidate's distance, unless there is no threshold).
public final class PgvectorIndex: VectorIndex, Sendable {
    /// The database.
    let database: PostgresDatabase
    /// Up to how many candidate rows a search ranks them all instead of walking the HNSW index.
    public let exactSearchLimit: Int
    /// Each model's recorded vector length, as read or recorded by this process (a length never
    /// changes once recorded), so that writing a vector costs no extra round trip.
    private let lengths = Locked<[String: Int]>([:])

    /// The index's migrations.
    static let migrations = PostgresMigrations(
        component: "vectors", history: "vector_migrations",
        steps: [
            (
                "pgvector, the vectors table and its models",
                [
                    // In `public`, which every schema's search path ends with.
                    "CREATE EXTENSION IF NOT EXISTS vector SCHEMA public",
                    "CREATE TABLE vector_models (model text PRIMARY KEY, dimensions integer NOT NULL)",
                    """
                    CREATE TABLE vectors (
                        image_id uuid PRIMARY KEY,
                        team_id uuid NOT NULL,
                        model text NOT NULL,
                        collection_id uuid,
                        tags text[] NOT NULL,
                        created_at timestamptz NOT NULL,
                        embedding vector NOT NULL
                    )
                    """,
                    // Inline, not in TOAST (vectors of 512 numbers pass its 2 KB threshold):
                    // measuring every candidate then reads the rows alone.
                    "ALTER TABLE vectors ALTER COLUMN embedding SET STORAGE MAIN",
                    "CREATE INDEX vectors_by_team ON vectors (team_id, model, collection_id)",
                ]
            )
        ])

    /// Creates the index; nothing connects until the first call.
    /// - Parameters:
    ///   - settings: Where to connect (a database with pgvector installed, or a role that may
    ///     install it).
    ///   - exactSearchLimit: Up to how many candidates a search is exact (default 10,000).
    ///   - leaseTimeout: How long a call waits for a connection before answering 503.
    ///   - logger: Where migrations log.
    public init(
        settings: PostgresSettings, exactSearchLimit: Int = 10_000, leaseTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "pgvector")
    ) {
        self.database = PostgresDatabase(
            settings: settings, migrations: Self.migrations, role: "vector index", leaseTimeout: leaseTimeout,
            logger: logger)
        self.exactSearchLimit = exactSearchLimit
    }

    /// Closes the connection pool.
    public func shutdown() { database.shutdown() }

    /// Runs `body` with an index, and closes its pool afterwards: for tools and tests.
    /// - Parameters:
    ///   - settings: Where to connect.
    ///   - exactSearchLimit: Up to how many candidates a search is exact.
    ///   - body: The work.
    /// - Returns: What `body` returns.
    public static func withIndex<T: Sendable>(
        _ settings: PostgresSettings, exactSearchLimit: Int = 10_000, _ body: (PgvectorIndex) async throws -> T
    ) async throws -> T {
        let index = PgvectorIndex(settings: settings, exactSearchLimit: exactSearchLimit)
        defer { index.shutdown() }
        return try await body(index)
    }

    // MARK: Models

    /// Records the model's vector length and builds its HNSW index, once; throws
    /// ``PgvectorDimensionMismatch`` when the model is recorded with another length.
    public func prepare(model: String, dimensions: Int) async throws {
        if lengths.withLock({ $0[model] }) == dimensions { return }
        try await database.transaction { [logger = database.logger] connection in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(PostgresMigrations.lock), hashtext(\(model)))", logger: logger)
            let stored = try await connection.query(
                "SELECT dimensions FROM vector_models WHERE model = \(model)", logger: logger
            ).collect().first?.decode(Int.self)
            if let stored {
                guard stored == dimensions else {
                    throw PgvectorDimensionMismatch(model: model, stored: stored, expected: dimensions)
                }
                return
            }
            try await connection.query(
                "INSERT INTO vector_models (model, dimensions) VALUES (\(model), \(dimensions))", logger: logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE INDEX \(Self.indexName(model)) ON vectors
                        USING hnsw ((embedding::vector(\(dimensions))) vector_cosine_ops)
                        WHERE model = \(Self.literal(model))
                        """), logger: logger)
        }
        lengths.withLock { $0[model] = dimensions }
    }

    /// The length recorded for a model, recording (and indexing) the given one when none is.
    private func dimensions(of model: String, recording length: Int) async throws -> Int {
        if let known = lengths.withLock({ $0[model] }) { return known }
        if let stored = try await database.rows("SELECT dimensions FROM vector_models WHERE model = \(model)")
            .first?.decode(Int.self)
        {
            lengths.withLock { $0[model] = stored }
            return stored
        }
        try await prepare(model: model, dimensions: length)
        return length
    }

    // MARK: Vectors

    /// Adds or replaces an image's vector (its model recorded with the vector's length if it is new).
    public func upsert(_ entry: VectorEntry) async throws {
        try await upsert(contentsOf: [entry])
    }

    /// Adds or replaces many vectors, up to 1,000 a statement (loading an index, as tools do).
    public func upsert(contentsOf entries: [VectorEntry]) async throws {
        for start in stride(from: 0, to: entries.count, by: 1000) {
            let batch = entries[start..<min(start + 1000, entries.count)]
            var statement = PostgresQuery(unsafeSQL: "")
            var rows: [String] = []
            for entry in batch {
                let length = try await dimensions(of: entry.model, recording: entry.vector.count)
                guard length == entry.vector.count else {
                    throw PgvectorDimensionMismatch(model: entry.model, stored: length, expected: entry.vector.count)
                }
                let first = statement.binds.count + 1
                statement.binds.append(entry.imageID.uuid)
                statement.binds.append(entry.teamID.uuid)
                statement.binds.append(entry.model)
                statement.binds.append(entry.collectionID)
                statement.binds.append(entry.tags)
                statement.binds.append(entry.createdAt)
                statement.binds.append(Self.text(entry.vector))
                rows.append(
                    "(" + (first..<first + 6).map { "$\($0)" }.joined(separator: ", ") + ", $\(first + 6)::vector)")
            }
            statement.sql = """
                INSERT INTO vectors (image_id, team_id, model, collection_id, tags, created_at, embedding)
                VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (image_id) DO UPDATE SET team_id = excluded.team_id, model = excluded.model,
                    collection_id = excluded.collection_id, tags = excluded.tags, created_at = excluded.created_at,
                    embedding = excluded.embedding
                """
            _ = try await database.rows(statement)
        }
    }

    /// Removes an image's vector.
    public func delete(imageID: ImageID) async throws {
        _ = try await database.rows("DELETE FROM vectors WHERE image_id = \(imageID.uuid)")
    }

    /// Removes every vector of a team, or of one of its collections.
    @discardableResult
    public func deleteAll(teamID: TeamID, collectionID: UUID?) async throws -> Int {
        try await database.rows(
            """
            WITH deleted AS (
                DELETE FROM vectors WHERE team_id = \(teamID.uuid)
                    AND (\(collectionID)::uuid IS NULL OR collection_id = \(collectionID))
                RETURNING 1)
            SELECT count(*) FROM deleted
            """
        ).first?.decode(Int.self) ?? 0
    }

    /// Changes an image's collection and tags.
    public func updatePayload(imageID: ImageID, collectionID: UUID?, tags: [String]) async throws {
        _ = try await database.rows(
            "UPDATE vectors SET collection_id = \(collectionID), tags = \(tags) WHERE image_id = \(imageID.uuid)")
    }

    /// One of a team's stored vectors.
    public func vector(imageID: ImageID, teamID: TeamID) async throws -> [Float]? {
        try await database.rows(
            "SELECT embedding::text FROM vectors WHERE image_id = \(imageID.uuid) AND team_id = \(teamID.uuid)"
        ).first.map { try Self.vector(try $0.decode(String.self)) }
    }

    // MARK: Search

    /// The page of the team's nearest vectors of the model that pass the filter and the
    /// threshold, and how many pass in all.
    public func search(_ query: VectorQuery) async throws -> VectorMatches {
        let length = query.vector.count
        // The binds of the conditions come first; the query vector and the bounds after them.
        var conditions = PostgresQuery(unsafeSQL: "")
        func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            conditions.binds.append(value)
            return "$\(conditions.binds.count)"
        }
        conditions.sql = "model = \(Self.literal(query.model)) AND team_id = \(bind(query.teamID.uuid))"
        if let collection = query.filter.collectionID { conditions.sql += " AND collection_id = \(bind(collection))" }
        if !query.filter.tags.isEmpty { conditions.sql += " AND tags @> \(bind(query.filter.tags))" }
        if let from = query.filter.uploadedFrom { conditions.sql += " AND created_at >= \(bind(from))" }
        if let to = query.filter.uploadedTo { conditions.sql += " AND created_at <= \(bind(to))" }
        if let excluded = query.excluding { conditions.sql += " AND image_id <> \(bind(excluded.uuid))" }
        let candidates =
            try await database.rows(
                PostgresQuery(
                    unsafeSQL: "SELECT count(*) FROM vectors WHERE \(conditions.sql)", binds: conditions.binds)
            ).first?.decode(Int.self) ?? 0
        guard candidates > 0 else { return VectorMatches(hits: [], total: 0) }

        let vector = bind(Self.text(query.vector))
        let largest = bind(1 - Double(query.minimumCosine))
        var ranked = conditions
        // Cast to the model's length, as the model's HNSW index is built, so that the planner can use it.
        let distance = "embedding::vector(\(length)) <=> \(vector)::vector(\(length))"
        let wanted = query.skip + query.limit
        if candidates <= exactSearchLimit {
            // Every candidate ranked; `OFFSET 0` keeps the planner from using the HNSW index.
            ranked.sql = """
                SELECT image_id, distance, count(*) OVER () AS total FROM (
                    SELECT image_id, \(distance) AS distance FROM vectors WHERE \(conditions.sql) OFFSET 0) AS scored
                WHERE distance <= \(largest) ORDER BY distance, image_id LIMIT \(query.limit) OFFSET \(query.skip)
                """
            let rows = try await database.rows(ranked)
            if let first = rows.first {
                return VectorMatches(
                    hits: try rows.map(Self.hit), total: try first.makeRandomAccess()["total"].decode(Int.self))
            }
            return VectorMatches(hits: [], total: try await count(conditions, vector: vector, largest: largest))
        }
        ranked.sql = """
            SELECT image_id, distance FROM (
                SELECT image_id, \(distance) AS distance FROM vectors WHERE \(conditions.sql)
                ORDER BY \(distance) LIMIT \(wanted)) AS nearest
            WHERE distance <= \(largest)
            """
        let nearest = try await database.transaction { [logger = database.logger, ranked] connection in
            // Iterative scans keep walking the graph until `wanted` rows pass the filter.
            try await connection.query("SET LOCAL hnsw.iterative_scan = relaxed_order", logger: logger)
            try await connection.query(
                PostgresQuery(unsafeSQL: "SET LOCAL hnsw.ef_search = \(min(1000, max(40, wanted)))"), logger: logger)
            return try await connection.query(ranked, logger: logger).collect()
        }
        let hits = try nearest.map(Self.hit).sorted { $0.cosine > $1.cosine }
        // Without a threshold every candidate matches: no distance needs measuring to count them.
        let total =
            query.minimumCosine <= -1
            ? candidates : try await count(conditions, vector: vector, largest: largest)
        return VectorMatches(hits: Array(hits.dropFirst(query.skip).prefix(query.limit)), total: total)
    }

    /// How many candidates lie within `largest` cosine distance of `vector` (every one of them
    /// measured; no cast to the model's length, which only the HNSW index needs).
    private func count(_ conditions: PostgresQuery, vector: String, largest: String) async throws -> Int {
        try await database.rows(
            PostgresQuery(
                unsafeSQL:
                    "SELECT count(*) FROM vectors WHERE \(conditions.sql) AND embedding <=> \(vector)::vector <= \(largest)",
                binds: conditions.binds)
        ).first?.decode(Int.self) ?? 0
    }

    // MARK: Helpers

    /// The HNSW index of a model: `vectors_hnsw_` and the model id's 64-bit FNV-1a hash in hex
    /// (model ids hold characters an identifier may not).
    static func indexName(_ model: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in model.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "vectors_hnsw_" + String(hash, radix: 16)
    }

    /// A model id as an SQL string literal (in the HNSW index's predicate, and in the searches that
    /// must match it): quotes doubled.
    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// A vector as pgvector's text form, `[x,y,…]` (each number written to round-trip exactly).
    static func text(_ vector: [Float]) -> String {
        "[" + vector.map { "\($0)" }.joined(separator: ",") + "]"
    }

    /// A vector read from its text form.
    static func vector(_ text: String) throws -> [Float] {
        let numbers = text.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")).split(separator: ",")
        return try numbers.map { number in
            guard let value = Float(number.trimmingCharacters(in: .whitespaces)) else {
                throw PostgresStoreError("a stored vector holds '\(number)', which is not a number")
            }
            return value
        }
    }

    static func hit(_ row: PostgresRow) throws -> VectorHit {
        let columns = row.makeRandomAccess()
        return VectorHit(
            imageID: ImageID(uuid: try columns["image_id"].decode(UUID.self)),
            cosine: Float(1 - (try columns["distance"].decode(Double.self))))
    }
}
