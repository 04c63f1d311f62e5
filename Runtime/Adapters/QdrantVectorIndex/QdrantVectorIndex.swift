import AsyncHTTPClient
import Foundation
import ImageAPICore
import Locking
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OutboundHTTP

/// An existing Qdrant collection whose vectors do not fit the embedder: the process must not
/// start on it.
public struct QdrantCollectionMismatch: VectorShapeMismatch {
    /// The collection.
    public let collection: String
    /// The embedder's model.
    public let model: String
    /// The embedder's vector length.
    public let expectedSize: Int
    /// The collection's vector length, `nil` when it has no single unnamed vector.
    public let foundSize: Int?
    /// The collection's distance.
    public let foundDistance: String?

    /// Names both sizes and distances.
    public var description: String {
        let found = foundSize.map { "size \($0), distance \(foundDistance ?? "?")" } ?? "named or no vectors"
        return """
            Qdrant collection \(collection) holds vectors of \(found), but the embedder \(model) makes \
            vectors of size \(expectedSize), distance Cosine
            """
    }
}

/// The vector index on Qdrant (`VECTOR_BACKEND=qdrant`): one collection per embedding model
/// (``QdrantSettings/collection(for:)``), so vectors of two models never mix, with the point id
/// the image id and a payload of `team_id`, `collection_id`, `tags`, `created_at` and `model`.
///
/// Every search filters on the team (a tenant payload index keeps a team's points together) and
/// on the model; totals are exact (`count` with the same filter, and with a least cosine, the
/// matches above it counted). Writes wait for Qdrant to apply them (`wait=true`), so a search by
/// any process sees a vector as soon as its upsert returns. Calls are retried on 429, 5xx and
/// connection errors; when Qdrant cannot be reached the index throws ``DomainError`` `unavailable`
/// (503 on search; processing retries the event), never an error that reads as a bug.
public final class QdrantVectorIndex: VectorIndex {
    /// The settings.
    public let settings: QdrantSettings
    private let caller: ServiceCaller
    /// Collections this process created or checked, with their vector length.
    private let ready = Locked<[String: Int]>([:])
    /// The collection of the model ``prepare(model:dimensions:)`` was called with: read first.
    private let preferred = Locked<String?>(nil)

    /// Creates the index; nothing is called until first use (or ``prepare(model:dimensions:)``).
    /// - Parameters:
    ///   - settings: Where Qdrant is and how collections are made.
    ///   - client: The HTTP client.
    public init(settings: QdrantSettings, client: HTTPClient = ServiceCaller.client) {
        self.settings = settings
        self.caller = ServiceCaller(
            api: "Qdrant at \(settings.baseURL)", dependency: "Qdrant", client: client,
            headers: settings.apiKey.map { ["api-key": $0] } ?? [:])
    }

    // MARK: The port

    /// Creates the model's collection and payload indexes, or checks the existing collection's
    /// vector size and distance; throws ``QdrantCollectionMismatch`` when they differ.
    public func prepare(model: String, dimensions: Int) async throws {
        let collection = settings.collection(for: model)
        try await ensureCollection(collection, model: model, size: dimensions)
        preferred.withLock { $0 = collection }
    }

    /// Writes the point (creating the model's collection on first use) and waits until it is applied.
    public func upsert(_ entry: VectorEntry) async throws {
        try await upsert(contentsOf: [entry])
    }

    /// Writes many points, one call per model (creating each model's collection on first use),
    /// and waits until they are applied.
    /// - Parameter entries: The entries; keep each call to a few thousand.
    public func upsert(contentsOf entries: [VectorEntry]) async throws {
        for (model, group) in Dictionary(grouping: entries, by: \.model) {
            let collection = settings.collection(for: model)
            try await ensureCollection(collection, model: model, size: group[0].vector.count)
            let points = group.map { entry in
                QdrantWire.PointsList.Point(
                    id: entry.imageID.lowercasedString, vector: entry.vector,
                    payload: QdrantWire.Payload(
                        teamId: entry.teamID.lowercasedString, collectionId: entry.collectionID?.lowercasedString,
                        tags: entry.tags, createdAt: QdrantWire.timestamp(entry.createdAt), model: entry.model))
            }
            try await call(
                .PUT, "/collections/\(collection)/points?wait=true", body: QdrantWire.PointsList(points: points),
                operation: "upsert \(points.count) points in \(collection)")
        }
    }

    /// Deletes the image's point from every collection of this index.
    public func delete(imageID: ImageID) async throws {
        let filter = QdrantWire.Filter(must: [.ids([imageID.lowercasedString])])
        for collection in try await ownCollections() {
            try await call(
                .POST, "/collections/\(collection)/points/delete?wait=true",
                body: QdrantWire.DeleteByFilter(filter: filter), operation: "delete point in \(collection)",
                absentCollectionIsFine: true)
        }
    }

    /// Deletes a team's points (or one collection's of a team) from every collection of this index,
    /// counted first.
    @discardableResult
    public func deleteAll(teamID: TeamID, collectionID: UUID?) async throws -> Int {
        var must: [QdrantWire.Condition] = [.equals("team_id", teamID.lowercasedString)]
        if let collectionID { must.append(.equals("collection_id", collectionID.lowercasedString)) }
        let filter = QdrantWire.Filter(must: must)
        var deleted = 0
        for collection in try await ownCollections() {
            deleted += try await count(in: collection, filter) ?? 0
            try await call(
                .POST, "/collections/\(collection)/points/delete?wait=true",
                body: QdrantWire.DeleteByFilter(filter: filter), operation: "delete a team's points in \(collection)",
                absentCollectionIsFine: true)
        }
        return deleted
    }

    /// Sets the point's collection and tags in every collection of this index.
    public func updatePayload(imageID: ImageID, collectionID: UUID?, tags: [String]) async throws {
        // By filter, not by id: setting the payload of an absent point id is an error in Qdrant.
        let body = QdrantWire.SetPayload(
            payload: .init(collectionId: collectionID?.lowercasedString, tags: tags),
            filter: QdrantWire.Filter(must: [.ids([imageID.lowercasedString])]))
        for collection in try await ownCollections() {
            try await call(
                .POST, "/collections/\(collection)/points/payload?wait=true", body: body,
                operation: "set payload in \(collection)", absentCollectionIsFine: true)
        }
    }

    /// The image's stored vector, the prepared model's collection read first; `nil` for another team's image.
    public func vector(imageID: ImageID, teamID: TeamID) async throws -> [Float]? {
        let request = QdrantWire.Retrieve(ids: [imageID.lowercasedString], withPayload: ["team_id"])
        for collection in try await ownCollections() {
            guard
                let records = try await call(
                    .POST, "/collections/\(collection)/points", body: request,
                    operation: "retrieve point in \(collection)", answer: [QdrantWire.Record].self,
                    absentCollectionIsFine: true),
                let record = records.first, record.payload?.teamId == teamID.lowercasedString
            else { continue }
            return record.vector
        }
        return nil
    }

    /// The page of nearest points and the exact number of matches.
    public func search(_ query: VectorQuery) async throws -> VectorMatches {
        let collection = settings.collection(for: query.model)
        let filter = Self.filter(for: query)
        guard let candidates = try await count(in: collection, filter), candidates > 0 else {
            return VectorMatches(hits: [], total: 0)
        }
        let threshold: Float? = query.minimumCosine > -1 ? query.minimumCosine : nil
        let wanted = max(0, min(query.limit, candidates - min(query.skip, candidates)))
        let page =
            wanted == 0
            ? [] : try await nearest(in: collection, query, filter: filter, threshold: threshold, limit: wanted)
        let total: Int
        if threshold == nil {
            total = candidates
        } else if page.count < wanted, !page.isEmpty || query.skip == 0 {
            total = query.skip + page.count  // the page ended before the limit: nothing more passes
        } else if !page.isEmpty, query.skip + page.count == candidates {
            total = candidates  // the lowest-ranked candidate passes, so every one does
        } else {
            // Qdrant counts by filter only: the matches above the least cosine are counted by a
            // query for all of them, ids and scores alone.
            var all = query
            all.skip = 0
            total = try await nearest(in: collection, all, filter: filter, threshold: threshold, limit: candidates)
                .count
        }
        return VectorMatches(hits: page, total: total)
    }

    // MARK: Collections

    /// Creates the collection with its payload indexes when it is missing, and checks its vector
    /// size and distance when it exists; remembered once done.
    private func ensureCollection(_ collection: String, model: String, size: Int) async throws {
        if let known = ready.withLock({ $0[collection] }) {
            guard known == size else {
                throw QdrantCollectionMismatch(
                    collection: collection, model: model, expectedSize: size, foundSize: known,
                    foundDistance: "Cosine")
            }
            return
        }
        var info = try await call(
            .GET, "/collections/\(collection)", operation: "read collection \(collection)",
            answer: QdrantWire.CollectionInfo.self, absentCollectionIsFine: true)
        if info == nil {
            let created = QdrantWire.CreateCollection(
                vectors: .init(size: size, onDisk: false), shardNumber: settings.shards,
                replicationFactor: settings.replicationFactor, writeConsistencyFactor: settings.writeConsistency,
                onDiskPayload: true, hnswConfig: .init(m: 16, efConstruct: 100, payloadM: 16),
                quantizationConfig: settings.quantization == .int8 ? .init() : nil)
            let response = try await caller.send(
                .PUT, settings.baseURL + "/collections/\(collection)", headers: Self.jsonHeaders,
                body: ByteBuffer(data: try QdrantWire.encoder.encode(created)), operation: "create collection",
                idempotent: true)
            // Another process may have created it a moment ago (409, or 400 on older servers).
            if response.status != .ok, response.status != .conflict, response.status != .badRequest {
                throw try await failure(response, "create collection \(collection)")
            }
            _ = try? await response.body.collect(upTo: 1 << 20)
            info = try await call(
                .GET, "/collections/\(collection)", operation: "read collection \(collection)",
                answer: QdrantWire.CollectionInfo.self)
        }
        let vectors = info?.config.params.vectors
        guard let vectors, vectors.size == size, vectors.distance == "Cosine" else {
            throw QdrantCollectionMismatch(
                collection: collection, model: model, expectedSize: size, foundSize: vectors?.size,
                foundDistance: vectors?.distance)
        }
        for (field, type, tenant) in Self.payloadIndexes {
            try await call(
                .PUT, "/collections/\(collection)/index?wait=true",
                body: QdrantWire.CreateFieldIndex(
                    fieldName: field, fieldSchema: .init(type: type, isTenant: tenant ? true : nil)),
                operation: "create payload index \(field) in \(collection)")
        }
        ready.withLock { $0[collection] = size }
    }

    /// The payload indexes each collection has: field, type, and whether it names the tenant.
    static let payloadIndexes: [(String, String, Bool)] = [
        ("team_id", "keyword", true), ("model", "keyword", false), ("collection_id", "keyword", false),
        ("tags", "keyword", false), ("created_at", "datetime", false),
    ]

    /// This index's collections, the prepared model's first.
    private func ownCollections() async throws -> [String] {
        let list = try await call(
            .GET, "/collections", operation: "list collections", answer: QdrantWire.CollectionList.self)
        let first = preferred.withLock { $0 }
        return (list?.collections ?? []).map(\.name).filter(settings.owns(collection:))
            .sorted { left, right in left == first && right != first }
    }

    // MARK: Queries

    /// The query's filter: team and model always, then collection, every tag, the upload-date
    /// range, and the excluded image.
    static func filter(for query: VectorQuery) -> QdrantWire.Filter {
        var must: [QdrantWire.Condition] = [
            .equals("team_id", query.teamID.lowercasedString), .equals("model", query.model),
        ]
        if let collection = query.filter.collectionID {
            must.append(.equals("collection_id", collection.lowercasedString))
        }
        for tag in query.filter.tags.sorted() { must.append(.equals("tags", tag)) }
        if query.filter.uploadedFrom != nil || query.filter.uploadedTo != nil {
            must.append(
                QdrantWire.Condition(
                    key: "created_at",
                    range: .init(
                        gte: query.filter.uploadedFrom.map(QdrantWire.timestamp),
                        lte: query.filter.uploadedTo.map(QdrantWire.timestamp))))
        }
        let mustNot = query.excluding.map { [QdrantWire.Condition.ids([$0.lowercasedString])] }
        return QdrantWire.Filter(must: must, mustNot: mustNot)
    }

    private func count(in collection: String, _ filter: QdrantWire.Filter) async throws -> Int? {
        try await call(
            .POST, "/collections/\(collection)/points/count", body: QdrantWire.Count(filter: filter),
            operation: "count points in \(collection)", answer: QdrantWire.CountResult.self,
            absentCollectionIsFine: true)?
            .count
    }

    private func nearest(
        in collection: String, _ query: VectorQuery, filter: QdrantWire.Filter, threshold: Float?, limit: Int
    ) async throws -> [VectorHit] {
        let body = QdrantWire.Query(
            query: query.vector, filter: filter, scoreThreshold: threshold, limit: limit, offset: query.skip,
            params: settings.quantization == .int8 ? .init(quantization: .init()) : nil)
        let answer = try await call(
            .POST, "/collections/\(collection)/points/query", body: body, operation: "query \(collection)",
            answer: QdrantWire.QueryResponse.self, absentCollectionIsFine: true)
        return (answer?.points ?? []).compactMap { point in
            ImageID(point.id).map { VectorHit(imageID: $0, cosine: point.score) }
        }
    }

    // MARK: Calls

    private static let jsonHeaders: HTTPHeaders = ["Content-Type": "application/json"]

    /// Sends a call whose answer is not read beyond its status.
    private func call(
        _ method: HTTPMethod, _ path: String, body: some Encodable, operation: String,
        absentCollectionIsFine: Bool = false
    ) async throws {
        _ = try await call(
            method, path, body: body, operation: operation, answer: Ignored.self,
            absentCollectionIsFine: absentCollectionIsFine)
    }

    /// Sends a call and decodes its `result`; `nil` when the collection does not exist and that
    /// is fine for the caller.
    private func call<Answer: Decodable>(
        _ method: HTTPMethod, _ path: String, body: (some Encodable)? = Ignored?.none, operation: String,
        answer: Answer.Type, absentCollectionIsFine: Bool = false
    ) async throws -> Answer? {
        let response: HTTPClientResponse
        do {
            response = try await caller.send(
                method, settings.baseURL + path, headers: Self.jsonHeaders,
                body: try body.map { ByteBuffer(data: try QdrantWire.encoder.encode($0)) }, operation: operation,
                idempotent: true, timeout: .seconds(30))
        } catch let error as ServiceCallError {
            throw DomainError(.unavailable, "The vector index is unreachable: \(error)")
        }
        if response.status == .notFound, absentCollectionIsFine {
            _ = try? await response.body.collect(upTo: 1 << 20)
            return nil
        }
        guard response.status == .ok else { throw try await failure(response, operation) }
        let data = try await response.body.collect(upTo: 256 << 20)
        if Answer.self == Ignored.self { return nil }
        do {
            return try QdrantWire.decoder.decode(QdrantWire.Envelope<Answer>.self, from: data).result
        } catch {
            throw ServiceCallError(
                api: caller.api, operation: operation, status: response.status.code,
                detail: "unexpected answer: \(error)")
        }
    }

    /// The error for a refused call: unavailable (503 on search) for 429 and 5xx, which the
    /// caller already retried; a plain error for the rest, which mean a bug.
    private func failure(_ response: HTTPClientResponse, _ operation: String) async throws -> any Error {
        let error = await caller.failure(response, operation)
        if response.status == .tooManyRequests || response.status.code >= 500 {
            return DomainError(.unavailable, "The vector index is unavailable: \(error)")
        }
        return error
    }

    /// A body or an answer that is not there.
    private struct Ignored: Codable {}
}
