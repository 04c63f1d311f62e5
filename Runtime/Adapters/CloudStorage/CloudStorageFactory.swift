import Foundation
import GoogleCloudAuth
import ImageAPICore
import RuntimeSupport

/// `BLOB_BACKEND=gcs`: image bytes in the Cloud Storage bucket `GCS_BUCKET_NAME`.
///
/// With `STORAGE_EMULATOR_HOST` set (as Google's client libraries read it: `host:port` or a URL)
/// the store talks to that emulator without credentials, and creates the bucket in
/// `GOOGLE_CLOUD_PROJECT` (default `local-project`) when it is missing. Otherwise it calls
/// `https://storage.googleapis.com` with Application Default Credentials
/// (`GOOGLE_APPLICATION_CREDENTIALS`, else the metadata server), and the bucket must exist.
///
/// Direct downloads (`GET /api/v1/images/{id}/download?redirect=true`) get V4 signed URLs valid
/// for `GCS_SIGNED_URL_SECONDS` (default 900, at most 7 days), signed with the key file's private
/// key, or through IAM's `signBlob` as the metadata server's account (which then needs
/// `iam.serviceAccounts.signBlob` on itself). Against an emulator, URLs are signed only when
/// `GOOGLE_APPLICATION_CREDENTIALS` names a key, and point at the emulator.
public enum CloudStorageFactory: AdapterFactory {
    /// The scope the store's tokens ask for.
    public static let scope = "https://www.googleapis.com/auth/devstorage.read_write"

    /// The bucket, the emulator, the project and the credentials' variables.
    public static let variables: Set<String> = [
        "GCS_BUCKET_NAME", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
        "GCE_METADATA_HOST", "GCS_SIGNED_URL_SECONDS",
    ]

    /// Builds the store.
    /// - Parameter variables: The variables above.
    /// - Returns: The store; it needs no background work.
    /// - Throws: ``ConfigurationError`` when `GCS_BUCKET_NAME` is missing or malformed, or the
    ///   service-account key named by `GOOGLE_APPLICATION_CREDENTIALS` cannot be used.
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
        let lifetime = try variables.integer(
            "GCS_SIGNED_URL_SECONDS", default: 900, in: 1...CloudStorageURLSigner.maximumLifetime)
        if let host = variables["STORAGE_EMULATOR_HOST"] {
            let endpoint = host.contains("://") ? host : "http://\(host)"
            // Against an emulator, URLs are signed only with a key file, and point at the emulator.
            let signer = try variables["GOOGLE_APPLICATION_CREDENTIALS"].map { _ in
                CloudStorageURLSigner(
                    endpoint: try endpointURL(endpoint), lifetime: lifetime,
                    signer: GoogleServiceAccountSigner(
                        source: try GoogleAccessTokens.configured(variables, scope: scope).source))
            }
            return BuiltAdapter(
                CloudStorageBlobStore(
                    endpoint: endpoint, bucket: bucket,
                    createBucketInProject: variables["GOOGLE_CLOUD_PROJECT"] ?? "local-project", urlSigner: signer))
        }
        let tokens = try GoogleAccessTokens.configured(variables, scope: scope)
        let signer = CloudStorageURLSigner(
            endpoint: try endpointURL("https://storage.googleapis.com"), lifetime: lifetime,
            signer: GoogleServiceAccountSigner(source: tokens.source))
        return BuiltAdapter(
            CloudStorageBlobStore(endpoint: "https://storage.googleapis.com", bucket: bucket, urlSigner: signer) {
                try await tokens.authorization()
            })
    }

    private static func endpointURL(_ text: String) throws -> URL {
        guard let url = URL(string: text), url.host != nil else {
            throw ConfigurationError(
                variable: "STORAGE_EMULATOR_HOST", reason: "must be host:port or a URL (got \(text))")
        }
        return url
    }
}
