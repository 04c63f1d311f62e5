import Foundation
import Logging
import PostgresNIO

/// A store's versioned migrations, applied in order and recorded in a history table of the
/// store's own. Never edit a shipped migration: add one.
struct PostgresMigrations: Sendable {
    /// The advisory-lock key migrations hold with their schema's hash (any constant: it names
    /// this application's lock).
    static let lock: Int32 = 0x696D_6170

    /// What is migrated, for logs (`metadata`, `vectors`).
    let component: String
    /// The table recording the versions applied (a constant of this module).
    let history: String
    /// The migrations, oldest first, each as its statements (the extended query protocol takes
    /// one statement at a time); the version is the position plus one.
    let steps: [(name: String, statements: [String])]
}

/// The metadata store's schema.
enum PostgresSchema {
    /// The metadata store's migrations.
    static let metadata = PostgresMigrations(component: "metadata", history: "schema_migrations", steps: migrations)

    static let migrations: [(name: String, statements: [String])] = [
        (
            "teams, users, api keys, images, outbox, dead letters, bootstrap keys",
            [
                """
                CREATE TABLE teams (
                    id uuid PRIMARY KEY,
                    name text NOT NULL,
                    description text,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE INDEX teams_by_creation ON teams (created_at, id)
                """,
                """
                CREATE TABLE users (
                    id uuid PRIMARY KEY,
                    email text NOT NULL,
                    name text NOT NULL,
                    team_id uuid NOT NULL CONSTRAINT users_team_id_fkey REFERENCES teams (id) ON DELETE RESTRICT,
                    is_admin boolean NOT NULL,
                    is_active boolean NOT NULL,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE UNIQUE INDEX users_email_unique ON users (lower(email))
                """,
                """
                CREATE INDEX users_by_team ON users (team_id, created_at, id)
                """,
                """
                CREATE INDEX users_by_creation ON users (created_at, id)
                """,
                """
                CREATE TABLE api_keys (
                    id uuid PRIMARY KEY,
                    name text NOT NULL,
                    description text,
                    prefix text NOT NULL,
                    user_id uuid NOT NULL CONSTRAINT api_keys_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
                    team_id uuid NOT NULL CONSTRAINT api_keys_team_id_fkey REFERENCES teams (id) ON DELETE RESTRICT,
                    secret_hash bytea NOT NULL,
                    created_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL,
                    last_used_at timestamptz,
                    is_active boolean NOT NULL
                )
                """,
                """
                CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at, id)
                """,
                """
                CREATE TABLE bootstrap_keys (
                    key_id uuid PRIMARY KEY,
                    secret_hash bytea NOT NULL,
                    registered_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE images (
                    number bigserial PRIMARY KEY,
                    id uuid NOT NULL UNIQUE,
                    team_id uuid NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
                    uploader_id uuid NOT NULL,
                    collection_id uuid,
                    filename text NOT NULL,
                    content_type text NOT NULL,
                    format text NOT NULL,
                    file_size bigint NOT NULL,
                    width integer NOT NULL,
                    height integer NOT NULL,
                    orientation integer,
                    sha256 text NOT NULL,
                    description text,
                    tags text[] NOT NULL,
                    exif text NOT NULL,
                    search_text tsvector NOT NULL,
                    embedding_status text NOT NULL,
                    embedding_error text,
                    embedding_attempts integer NOT NULL,
                    embedding_model text,
                    embedding_dimensions integer,
                    embedded_at timestamptz,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL,
                    is_duplicate boolean NOT NULL
                )
                """,
                """
                CREATE INDEX images_by_team ON images (team_id, created_at DESC, number DESC)
                """,
                """
                CREATE INDEX images_by_collection ON images (team_id, collection_id, created_at DESC, number DESC)
                """,
                """
                CREATE INDEX images_by_hash ON images (team_id, sha256, number)
                """,
                """
                CREATE UNIQUE INDEX images_unique_content ON images (team_id, sha256) WHERE NOT is_duplicate
                """,
                """
                CREATE INDEX images_by_tag ON images USING gin (tags)
                """,
                """
                CREATE INDEX images_text ON images USING gin (search_text)
                """,
                """
                CREATE TABLE outbox (
                    sequence bigserial PRIMARY KEY,
                    message_id text NOT NULL UNIQUE,
                    topic text NOT NULL,
                    data bytea NOT NULL,
                    attributes text NOT NULL,
                    published_at timestamptz NOT NULL,
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL,
                    last_error text
                )
                """,
                """
                CREATE INDEX outbox_due ON outbox (next_attempt_at, sequence)
                """,
                """
                -- Every committed message wakes the relays listening on the channel.
                CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('\(PostgresMetadataStore.outboxChannel)', current_schema());
                    RETURN NULL;
                END
                $$
                """,
                """
                CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
                    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()
                """,
                """
                CREATE TABLE dead_letters (
                    message_id text PRIMARY KEY,
                    topic text NOT NULL,
                    data bytea NOT NULL,
                    attempts integer NOT NULL,
                    last_error text NOT NULL,
                    source text NOT NULL,
                    dead_at timestamptz NOT NULL,
                    team_id uuid
                )
                """,
                """
                CREATE INDEX dead_letters_by_team ON dead_letters (team_id, dead_at, message_id)
                """,
            ]
        ),
        ("perceptual hashes", ["ALTER TABLE images ADD COLUMN phash text"]),
        (
            "named collections",
            [
                """
                CREATE TABLE collections (
                    id uuid PRIMARY KEY,
                    team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                    name text NOT NULL,
                    name_key text NOT NULL,
                    description text,
                    cover_image_id uuid,
                    created_at timestamptz NOT NULL,
                    updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE UNIQUE INDEX collections_unique_name ON collections (team_id, name_key)
                """,
            ]
        ),
    ]

}

extension PostgresMigrations {
    /// Creates the schema when missing and applies the steps not yet applied to it, in one
    /// transaction holding the schema's migration lock: of several processes starting together,
    /// the first migrates and the others then find nothing left to do.
    func apply(on connection: PostgresConnection, schema: String, logger: Logger) async throws {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(Self.lock), hashtext(\(schema)))", logger: logger)
            // The name is checked (PostgresSettings): plain lower-case letters, digits and '_'.
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TABLE IF NOT EXISTS \(history) (
                            version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                        """), logger: logger)
            let applied = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT version FROM \(history)"), logger: logger
            ).collect().map { try $0.decode(Int.self) }
            for (index, step) in steps.enumerated() where !applied.contains(index + 1) {
                logger.notice(
                    "Migrating the PostgreSQL schema",
                    metadata: [
                        "component": .string(component), "version": "\(index + 1)", "migration": .string(step.name),
                    ])
                for statement in step.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                var record = PostgresQuery(unsafeSQL: "INSERT INTO \(history) (version, name) VALUES ($1, $2)")
                record.binds.append(index + 1)
                record.binds.append(step.name)
                try await connection.query(record, logger: logger)
            }
            try await connection.query("COMMIT", logger: logger)
        } catch {
            await PostgresDatabase.rollBack(connection, logger: logger)
            throw error
        }
    }
}
