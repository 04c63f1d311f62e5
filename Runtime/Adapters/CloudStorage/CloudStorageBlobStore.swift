import AsyncHTTPClient
import Foundation
import GoogleCloudAuth
import ImageAPICore
import Locking
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import OutboundHTTP
import RuntimeSupport

/// Image bytes as objects of one Cloud Storage bucket, through the JSON API
/// (`BLOB_BACKEND=gcs`).
///
/// Blob keys are object names as they are: keys start with the team's id
/// (`teams/<team>/images/<image>/original`), so two teams' objects never share a name. Objects of
/// up to ``simpleUploadLimit`` go up in one request; larger ones through a resumable session in
/// chunks of ``chunkSize``, read from the local file one at a time, so memory stays flat whatever
/// the size. Downloads stream, with `Range` when part is asked. Every call has a timeout, and
/// idempotent calls are retried with jittered backoff on 429, 5xx and connection errors.
public final class CloudStorageBlobStore: BlobStore {
    /// The largest object sent in a single request.
    public static let simpleUploadLimit = 8 << 20
    /// The size of a resumable upload's chunks (a multiple of 256 KiB, as the API requires).
    public static let chunkSize = 8 << 20

    private let endpoint: String
    private let bucket: String
    private let caller: ServiceCaller
    private let bucketCreation: Locked<Task<Void, any Error>?>
    private let createsBucket: String?
    private let urlSigner: CloudStorageURLSigner?

    /// Creates a store over a bucket.
    /// - Parameters:
    ///   - endpoint: The API's base URL: `https://storage.googleapis.com`, or an emulator's
    ///     (`STORAGE_EMULATOR_HOST`).
    ///   - bucket: `GCS_BUCKET_NAME`.
    ///   - createBucketInProject: Creates the bucket in this project before the first write when
    ///     it is missing (for an emulator); `nil` expects it to exist.
    ///   - client: The HTTP client.
    ///   - urlSigner: Signs direct download URLs; `nil` makes none.
    ///   - authorization: The `Authorization` header's value for each call (`Bearer` and a token
    ///     from `GoogleAccessTokens`); `nil` sends none (an emulator).
    public init(
        endpoint: String, bucket: String, createBucketInProject: String? = nil,
        client: HTTPClient = ServiceCaller.client, urlSigner: CloudStorageURLSigner? = nil,
        authorization: @escaping @Sendable () async throws -> String? = { nil }
    ) {
        self.urlSigner = urlSigner
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.bucket = bucket
        self.caller = ServiceCaller(api: "Cloud Storage", client: client, authorization: authorization)
        self.createsBucket = createBucketInProject
        self.bucketCreation = Locked(nil)
    }

    // MARK: Direct downloads

    /// A V4 signed URL for the object, valid for the signer's lifetime; `nil` without a signer.
    /// - Parameters:
    ///   - key: The object's name.
    ///   - contentDisposition: The `Content-Disposition` the download answers with.
    public func downloadURL(at key: String, contentDisposition: String?) async throws -> URL? {
        try await urlSigner?.download(bucket: bucket, object: key, contentDisposition: contentDisposition).url
    }

    // MARK: Writes

    /// Stores bytes as the object `key`, with the attributes as its content type and its
    /// `sha256` metadata.
    public func put(_ data: Data, at key: String, attributes: BlobAttributes) async throws {
        try await Self.reportingOutages {
            try await ensureBucket()
            let bytes = ByteBuffer(data: data)
            let body: @Sendable (Range<Int>) -> HTTPClientRequest.Body = { range in
                .bytes(bytes.getSlice(at: range.lowerBound, length: range.count) ?? ByteBuffer())
            }
            try await upload(size: data.count, name: key, attributes: attributes, body: body)
        }
    }

    /// Stores a local file's bytes as the object `key`, streamed from the file in pieces of
    /// ``pieceSize`` read on NIO's blocking-I/O thread pool as the connection takes them, so the
    /// file is never in memory whole. The file is left where it is, for the caller to remove.
    public func put(fileAt path: String, at key: String, attributes: BlobAttributes) async throws {
        try await Self.reportingOutages {
            try await ensureBucket()
            let size = try await Self.blocking { try Self.fileSize(path) }
            let body: @Sendable (Range<Int>) -> HTTPClientRequest.Body = { range in
                .stream(FilePieces(path: path, range: range), length: .known(Int64(range.count)))
            }
            try await upload(size: size, name: key, attributes: attributes, body: body)
        }
    }

    /// One request for a small object without a checksum to keep (its content type goes in the
    /// request's `Content-Type`); otherwise a resumable session, whose first request carries the
    /// object's resource: content type and `metadata.sha256`.
    private func upload(
        size: Int, name: String, attributes: BlobAttributes,
        body: @escaping @Sendable (Range<Int>) -> HTTPClientRequest.Body
    ) async throws {
        if size <= Self.simpleUploadLimit, attributes.sha256 == nil {
            try await uploadInOneRequest(
                size: size, name: name, contentType: attributes.contentType ?? "application/octet-stream", body: body)
        } else {
            try await uploadResumably(size: size, name: name, attributes: attributes, body: body)
        }
    }

    /// How much of a file is read at a time while it is uploaded.
    public static let pieceSize = 256 << 10

    /// A range of a file, read a piece at a time as the request body is sent: each piece is
    /// read only when the connection asks for the next, so no more than one is held.
    struct FilePieces: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let path: String
        let range: Range<Int>

        struct AsyncIterator: AsyncIteratorProtocol {
            let path: String
            var offset: Int
            let end: Int

            mutating func next() async throws -> ByteBuffer? {
                guard offset < end else { return nil }
                let piece = offset..<Swift.min(offset + CloudStorageBlobStore.pieceSize, end)
                let path = path
                let bytes = try await CloudStorageBlobStore.blocking { try CloudStorageBlobStore.readFile(path, piece) }
                guard bytes.count == piece.count else {
                    throw ServiceCallError(
                        api: "Cloud Storage", operation: "read \(path)", status: nil,
                        detail: "the file is shorter than it was")
                }
                offset = piece.upperBound
                return ByteBuffer(data: bytes)
            }
        }

        func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(path: path, offset: range.lowerBound, end: range.upperBound)
        }
    }

    /// Deletes the object; a missing one is not an error.
    public func delete(at key: String) async throws {
        try await Self.reportingOutages {
            let response = try await caller.send(
                .DELETE, objectURL(key), operation: "DELETE object \(key)", idempotent: true)
            guard response.status == .noContent || response.status == .ok || response.status == .notFound else {
                throw await caller.failure(response, "DELETE object \(key)")
            }
        }
    }

    // MARK: Reads

    /// Reads the whole object, or `nil` when there is none.
    public func data(at key: String) async throws -> Data? {
        try await Self.reportingOutages {
            let response = try await caller.send(
                .GET, objectURL(key) + "?alt=media", operation: "GET object \(key)", idempotent: true)
            if response.status == .notFound { return nil }
            guard response.status == .ok else { throw await caller.failure(response, "GET object \(key)") }
            var body = try await response.body.collect(upTo: Int.max)
            return body.readData(length: body.readableBytes) ?? Data()
        }
    }

    /// The object's size, or `nil` when there is none.
    public func size(at key: String) async throws -> Int? {
        try await Self.reportingOutages {
            let response = try await caller.send(
                .GET, objectURL(key), operation: "GET metadata \(key)", idempotent: true)
            if response.status == .notFound { return nil }
            guard response.status == .ok else { throw await caller.failure(response, "GET metadata \(key)") }
            let body = try await response.body.collect(upTo: 1 << 20)
            struct Metadata: Decodable { let size: String }
            let metadata = try JSONDecoder().decode(Metadata.self, from: Data(buffer: body))
            guard let size = Int(metadata.size) else {
                throw ServiceCallError(
                    api: "Cloud Storage", operation: "GET metadata \(key)", status: 200, detail: "size is not a number")
            }
            return size
        }
    }

    /// Whether the object exists.
    public func exists(at key: String) async throws -> Bool {
        try await size(at: key) != nil
    }

    /// The objects whose names start with `prefix`, with their `updated` times, a page of the
    /// JSON API's listing at a time; none when the bucket does not exist yet.
    public func blobs(under prefix: String) async throws -> [StoredBlob] {
        struct Listing: Decodable {
            struct Item: Decodable {
                let name: String
                let updated: String?
            }
            let items: [Item]?
            let nextPageToken: String?
        }
        return try await Self.reportingOutages {
            var found: [StoredBlob] = []
            var pageToken: String?
            repeat {
                var url =
                    "\(endpoint)/storage/v1/b/\(ServiceCaller.escaped(bucket))/o?prefix=\(ServiceCaller.escaped(prefix))"
                url += "&fields=items(name,updated),nextPageToken"
                if let pageToken { url += "&pageToken=\(ServiceCaller.escaped(pageToken))" }
                let operation = "list objects under \(prefix)"
                let response = try await caller.send(.GET, url, operation: operation, idempotent: true)
                if response.status == .notFound { return [] }
                guard response.status == .ok else { throw await caller.failure(response, operation) }
                let page = try JSONDecoder().decode(
                    Listing.self, from: Data(buffer: try await response.body.collect(upTo: 32 << 20)))
                for item in page.items ?? [] {
                    found.append(
                        StoredBlob(
                            key: item.name, written: item.updated.flatMap(JSONCoding.parseTimestamp) ?? .distantPast))
                }
                pageToken = page.nextPageToken
            } while pageToken != nil
            return found
        }
    }

    /// Streams the object, or the bytes `range` of it, as the answer arrives.
    /// - Throws: `ServiceCallError` when there is no such object.
    public func read(at key: String, range: Range<Int>?) async throws -> AsyncThrowingStream<Data, any Error> {
        try await Self.reportingOutages {
            if let range, range.isEmpty { return AsyncThrowingStream { $0.finish() } }
            var headers = HTTPHeaders()
            if let range { headers.add(name: "Range", value: "bytes=\(range.lowerBound)-\(range.upperBound - 1)") }
            let operation = "GET object \(key)"
            let response = try await caller.send(
                .GET, objectURL(key) + "?alt=media", headers: headers, operation: operation, idempotent: true)
            guard response.status == .ok || response.status == .partialContent else {
                throw await caller.failure(response, operation)
            }
            let body = response.body
            return AsyncThrowingStream { continuation in
                let task = Task {
                    do {
                        for try await buffer in body { continuation.yield(Data(buffer: buffer)) }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                continuation.onTermination = { _ in task.cancel() }
            }
        }
    }

    // MARK: Uploads

    private func uploadInOneRequest(
        size: Int, name: String, contentType: String, body: @escaping @Sendable (Range<Int>) -> HTTPClientRequest.Body
    ) async throws {
        let url =
            "\(endpoint)/upload/storage/v1/b/\(ServiceCaller.escaped(bucket))/o?uploadType=media&name=\(ServiceCaller.escaped(name))"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        let operation = "PUT object \(name)"
        // Writing the same bytes again is harmless: a retry cannot leave a mix of two uploads.
        let response = try await caller.send(
            .POST, url, headers: headers, streaming: { body(0..<size) }, operation: operation, idempotent: true,
            timeout: .seconds(300))
        guard response.status == .ok else { throw await caller.failure(response, operation) }
    }

    /// A resumable session: started once, then one `PUT` per chunk with its `Content-Range`;
    /// the object appears only when the last chunk is in, so a reader never sees part of it.
    private func uploadResumably(
        size: Int, name: String, attributes: BlobAttributes,
        body: @escaping @Sendable (Range<Int>) -> HTTPClientRequest.Body
    ) async throws {
        let operation = "PUT object \(name)"
        let start =
            "\(endpoint)/upload/storage/v1/b/\(ServiceCaller.escaped(bucket))/o?uploadType=resumable&name=\(ServiceCaller.escaped(name))"
        let contentType = attributes.contentType ?? "application/octet-stream"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=UTF-8")
        headers.add(name: "X-Upload-Content-Type", value: contentType)
        headers.add(name: "X-Upload-Content-Length", value: String(size))
        let resource = ObjectResource(
            contentType: contentType, metadata: attributes.sha256.map { ["sha256": $0] })
        let started = try await caller.send(
            .POST, start, headers: headers, body: ByteBuffer(data: try JSONEncoder().encode(resource)),
            operation: operation, idempotent: true)
        guard started.status == .ok, let session = started.headers.first(name: "Location") else {
            throw await caller.failure(started, operation + " (starting a resumable upload)")
        }
        var offset = 0
        while offset < size {
            let end = min(offset + Self.chunkSize, size)
            let chunk = offset..<end
            var chunkHeaders = HTTPHeaders()
            chunkHeaders.add(name: "Content-Range", value: "bytes \(offset)-\(end - 1)/\(size)")
            let response = try await caller.send(
                .PUT, session, headers: chunkHeaders, streaming: { body(chunk) }, operation: operation,
                idempotent: false, timeout: .seconds(300))
            let last = end == size
            guard last ? (response.status == .ok || response.status == .created) : response.status.code == 308 else {
                throw await caller.failure(response, operation + " (bytes \(offset)-\(end - 1) of \(size))")
            }
            offset = end
        }
    }

    /// The object resource a resumable upload starts with.
    struct ObjectResource: Encodable {
        var contentType: String
        var metadata: [String: String]?
    }

    // MARK: The bucket

    /// Creates the bucket before the first write when asked to (an emulator), once.
    private func ensureBucket() async throws {
        guard let project = createsBucket else { return }
        let task = bucketCreation.withLock { creation in
            if let creation { return creation }
            let made = Task { try await self.createBucket(project: project) }
            creation = made
            return made
        }
        do {
            try await task.value
        } catch {
            bucketCreation.withLock { $0 = nil }  // The next write tries again.
            throw error
        }
    }

    private func createBucket(project: String) async throws {
        let url = "\(endpoint)/storage/v1/b?project=\(ServiceCaller.escaped(project))"
        let body = try JSONEncoder().encode(["name": bucket])
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        let response = try await caller.send(
            .POST, url, headers: headers, body: ByteBuffer(data: body), operation: "create bucket \(bucket)",
            idempotent: true)
        guard response.status == .ok || response.status == .conflict else {
            throw await caller.failure(response, "create bucket \(bucket)")
        }
    }

    // MARK: HTTP

    /// Runs a call, reporting a Cloud Storage that cannot be reached or fails (no answer, 429, a
    /// 5xx, after the caller's retries) as the domain's `unavailable`: an upload meanwhile is
    /// refused with 503 and `Retry-After`, and processing is postponed, not failed.
    private static func reportingOutages<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as ServiceCallError where error.status.map({ $0 == 429 || $0 >= 500 }) ?? true {
            throw DomainError(.unavailableFor(retryAfterSeconds: 1), "The blob store is unavailable: \(error)")
        }
    }

    private func objectURL(_ name: String) -> String {
        "\(endpoint)/storage/v1/b/\(ServiceCaller.escaped(bucket))/o/\(ServiceCaller.escaped(name))"
    }

    // MARK: Files

    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    private static func fileSize(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.intValue ?? 0
    }

    static func readFile(_ path: String, _ range: Range<Int>) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ServiceCallError(
                api: "Cloud Storage", operation: "read \(path)", status: nil, detail: "cannot open the file")
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(range.lowerBound))
        return try handle.read(upToCount: range.count) ?? Data()
    }
}
