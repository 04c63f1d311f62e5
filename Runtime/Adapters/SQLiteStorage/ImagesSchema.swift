extension SQLiteMetadataStore {
    /// Migration v2: images with their full-text index, the outbox and dead letters of the local
    /// Pub/Sub. (Databases migrated before the vector index had its own target also got its
    /// `vectors` and `vector_changes` tables here; the `EmbeddedVectorIndex` target now creates
    /// them itself, `IF NOT EXISTS`, when it opens the file.)
    static let imagesSchema = """
        CREATE TABLE images (
            number INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE RESTRICT,
            uploader_id TEXT NOT NULL,
            collection_id TEXT,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            format TEXT NOT NULL,
            file_size INTEGER NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            orientation INTEGER,
            sha256 TEXT NOT NULL,
            description TEXT,
            tags TEXT NOT NULL,
            exif TEXT NOT NULL,
            embedding_status TEXT NOT NULL,
            embedding_error TEXT,
            embedding_attempts INTEGER NOT NULL,
            embedding_model TEXT,
            embedding_dimensions INTEGER,
            embedded_at DATETIME,
            created_at DATETIME NOT NULL,
            updated_at DATETIME NOT NULL
        );
        CREATE INDEX images_by_team ON images(team_id, created_at DESC, number DESC);
        CREATE INDEX images_by_collection ON images(team_id, collection_id, created_at DESC, number DESC);
        CREATE INDEX images_by_hash ON images(team_id, sha256);
        -- rowid = images.number; kept in step by the store inside the same transactions.
        CREATE VIRTUAL TABLE images_text USING fts5(
            filename, description, tags, exif, tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TABLE outbox (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            topic TEXT NOT NULL,
            data BLOB NOT NULL,
            attributes TEXT NOT NULL,
            published_at DATETIME NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DATETIME NOT NULL,
            last_error TEXT
        );
        CREATE INDEX outbox_due ON outbox(next_attempt_at, sequence);
        CREATE TABLE dead_letters (
            message_id TEXT PRIMARY KEY NOT NULL,
            topic TEXT NOT NULL,
            data BLOB NOT NULL,
            attempts INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            source TEXT NOT NULL,
            dead_at DATETIME NOT NULL
        );
        """
}
