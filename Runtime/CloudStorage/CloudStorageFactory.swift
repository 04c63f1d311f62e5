import Foundation
import ImageAPICore
import RuntimeSupport

/// `BLOB_BACKEND=gcs`: image bytes in the Cloud Storage bucket `GCS_BUCKET_NAME`.
///
/// With `STORAGE_EMULATOR_HOST` set (as Google's client libraries read it: `host:port` or a URL)
/// the store talks to that emulator without credentials, and creates the bucket in
/// `GOOGLE_CLOUD_PROJECT` (default `local-project`) when it is missing. Without it, the store
/// would need Google credentials, which this version does not obtain yet: the process refuses
/// to start (exit 78) rather than fail on its first upload.
public enum CloudStorageFactory: AdapterFactory {
    /// `GCS_BUCKET_NAME`, `STORAGE_EMULATOR_HOST` and `GOOGLE_CLOUD_PROJECT`.
    public static let variables: Set<String> = ["GCS_BUCKET_NAME", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"]

    /// Builds the store.
    /// - Parameter variables: The three variables above.
    /// - Returns: The store; it needs no background work.
    /// - Throws: ``ConfigurationError`` when `GCS_BUCKET_NAME` is missing or malformed, or
    ///   `STORAGE_EMULATOR_HOST` is not set.
    public static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<CloudStorageBlobStore> {
        guard let bucket = variables["GCS_BUCKET_NAME"] else {
            throw ConfigurationError(variable: "GCS_BUCKET_NAME", reason: "must be set when BLOB_BACKEND=gcs")
        }
        guard bucket.range(of: "^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", options: .regularExpression) != nil else {
            throw ConfigurationError(
                variable: "GCS_BUCKET_NAME",
                reason: "must be a bucket name: 3 to 63 lower-case letters, digits, '-', '_' or '.' (got \"\(bucket)\")"
            )
        }
        guard let host = variables["STORAGE_EMULATOR_HOST"] else {
            throw ConfigurationError(
                variable: "STORAGE_EMULATOR_HOST",
                reason:
                    "must be set when BLOB_BACKEND=gcs: this version reaches Cloud Storage emulators only (Google credentials are not supported yet)"
            )
        }
        let endpoint = host.contains("://") ? host : "http://\(host)"
        return BuiltAdapter(
            CloudStorageBlobStore(
                endpoint: endpoint, bucket: bucket,
                createBucketInProject: variables["GOOGLE_CLOUD_PROJECT"] ?? "local-project"))
    }
}
