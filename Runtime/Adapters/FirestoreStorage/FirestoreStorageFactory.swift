import GoogleCloudAuth
import ImageAPICore
import RuntimeSupport

/// `METADATA_BACKEND=firestore`: every metadata port in the Firestore database
/// `FIRESTORE_DATABASE_NAME` (default `(default)`) of `FIRESTORE_PROJECT_ID` (default
/// `GOOGLE_CLOUD_PROJECT`).
///
/// With `FIRESTORE_EMULATOR_HOST` set (`host:port`, as Google's client libraries read it) the
/// store talks to that emulator without credentials, in project `local-project` unless one is
/// named, one transaction at a time (the emulator's locks deadlock concurrent transactions on
/// one document). Otherwise it calls `https://firestore.googleapis.com` with Application Default
/// Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, else the metadata server); the database and the
/// composite indexes of `terraform/firestore-indexes.json` must exist.
public enum FirestoreStorageFactory: AdapterFactory {
    /// The scope the store's tokens ask for.
    public static let scope = "https://www.googleapis.com/auth/datastore"

    /// The database, the emulator and the credentials' variables.
    public static let variables: Set<String> = [
        "FIRESTORE_PROJECT_ID", "FIRESTORE_DATABASE_NAME", "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST",
    ]

    /// Builds the store.
    /// - Parameter variables: The variables above.
    /// - Returns: The store; it needs no background work.
    /// - Throws: ``ConfigurationError`` when no project is named outside the emulator, or the key
    ///   file cannot be used.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<FirestoreMetadataStore> {
        let emulator = variables["FIRESTORE_EMULATOR_HOST"]
        let project =
            variables["FIRESTORE_PROJECT_ID"] ?? variables["GOOGLE_CLOUD_PROJECT"]
            ?? (emulator == nil ? nil : "local-project")
        guard let project else {
            throw ConfigurationError(
                variable: "FIRESTORE_PROJECT_ID",
                reason: "must be set (or GOOGLE_CLOUD_PROJECT) when METADATA_BACKEND=firestore")
        }
        let database = variables["FIRESTORE_DATABASE_NAME"] ?? "(default)"
        guard database.range(of: "^(\\(default\\)|[a-z][a-z0-9-]{2,62})$", options: .regularExpression) != nil else {
            throw ConfigurationError(
                variable: "FIRESTORE_DATABASE_NAME",
                reason:
                    "must be (default) or a database id: 3 to 63 lower-case letters, digits or '-' (got \"\(database)\")"
            )
        }
        if let emulator {
            let endpoint = emulator.contains("://") ? emulator : "http://\(emulator)"
            return BuiltAdapter(
                FirestoreMetadataStore(
                    client: FirestoreClient(
                        endpoint: endpoint, project: project, database: database, concurrentTransactions: 1)))
        }
        let tokens = try GoogleAccessTokens.configured(variables, scope: scope)
        return BuiltAdapter(
            FirestoreMetadataStore(
                client: FirestoreClient(
                    endpoint: "https://firestore.googleapis.com", project: project, database: database,
                    authorization: { try await tokens.authorization() })))
    }
}
