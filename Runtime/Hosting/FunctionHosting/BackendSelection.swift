import FunctionsFramework

/// Which backend serves each group of ports, read from `METADATA_BACKEND`, `BLOB_BACKEND`,
/// `VECTOR_BACKEND` and `EVENTS_BACKEND`. An unknown value stops the process with one line naming
/// the accepted values (exit 78).
public struct BackendSelection: Sendable, Equatable {
    /// Where teams, users, keys, images, the outbox and dead letters are kept.
    public enum Metadata: String, Sendable, CaseIterable {
        /// The backend's name for people: `SQLite`, `memory`, `Firestore`, `PostgreSQL`.
        public var displayName: String {
            switch self {
            case .sqlite: "SQLite"
            case .memory: "memory"
            case .firestore: "Firestore"
            case .postgres: "PostgreSQL"
            }
        }

        /// One SQLite file under `DATA_DIR` (the default): durable, shared by processes on one machine.
        case sqlite
        /// This process's memory: nothing survives a restart and nothing is shared with another
        /// process. For tests and demos with the emulator.
        case memory
        /// A Firestore database (`FIRESTORE_PROJECT_ID`, `FIRESTORE_DATABASE_NAME`, or on
        /// `FIRESTORE_EMULATOR_HOST`), shared by every process.
        case firestore
        /// A PostgreSQL database (`DATABASE_URL`), shared by every process on every machine.
        case postgres
    }

    /// Where image bytes are kept.
    public enum Blobs: String, Sendable, CaseIterable {
        /// Files under `DATA_DIR/blobs` (the default).
        case filesystem
        /// In this process only (tests and demos): lost when it stops.
        case memory
        /// A Cloud Storage bucket, `GCS_BUCKET_NAME` (through `STORAGE_EMULATOR_HOST` for now).
        case gcs
    }

    /// Where vectors are kept and searched.
    public enum Vectors: String, Sendable, CaseIterable {
        /// In the SQLite file, searched in each process's memory (the default).
        case embedded
        /// This process's memory only: not durable, not shared. For tests and demos.
        case memory
        /// A Qdrant server or cluster (`QDRANT_HOST`, `QDRANT_PORT`, …), shared by every process.
        case qdrant
        /// PostgreSQL with pgvector (`VECTOR_DATABASE_URL`, default `DATABASE_URL`), shared by
        /// every process.
        case pgvector
    }

    /// How processing events travel from the outbox to ProcessEmbedding.
    public enum Events: String, Sendable, CaseIterable {
        /// The local Pub/Sub: the outbox pushed over HTTP, with retries and dead letters (the default).
        case local
        /// A Pub/Sub topic (`PUBSUB_TOPIC` of `GOOGLE_CLOUD_PROJECT`, or on `PUBSUB_EMULATOR_HOST`): the
        /// outbox relay publishes there, and Pub/Sub's push subscription delivers.
        case pubsub
    }

    /// `METADATA_BACKEND`.
    public var metadata: Metadata
    /// `BLOB_BACKEND`.
    public var blobs: Blobs
    /// `VECTOR_BACKEND`.
    public var vectors: Vectors
    /// `EVENTS_BACKEND`.
    public var events: Events

    /// Creates a selection; the defaults are the embedded backends.
    public init(
        metadata: Metadata = .sqlite, blobs: Blobs = .filesystem, vectors: Vectors = .embedded, events: Events = .local
    ) {
        self.metadata = metadata
        self.blobs = blobs
        self.vectors = vectors
        self.events = events
    }

    /// Reads the four variables.
    /// - Parameter variables: The process's configuration variables.
    /// - Throws: ``ConfigurationError`` naming the variable and the accepted values.
    public init(_ variables: EnvironmentVariables) throws {
        func read<Choice: RawRepresentable & CaseIterable>(
            _ name: String, _ defaultValue: Choice
        ) throws -> Choice where Choice.RawValue == String {
            let text = try variables.choice(
                name, default: defaultValue.rawValue, allowed: Choice.allCases.map(\.rawValue))
            return Choice(rawValue: text) ?? defaultValue
        }
        self.init(
            metadata: try read("METADATA_BACKEND", Metadata.sqlite), blobs: try read("BLOB_BACKEND", Blobs.filesystem),
            vectors: try read("VECTOR_BACKEND", Vectors.embedded), events: try read("EVENTS_BACKEND", Events.local))
    }
}
