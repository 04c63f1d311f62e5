import AsyncHTTPClient
import Foundation
import ImageAPICore
import Locking
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OutboundHTTP
import RuntimeSupport

/// An answer of Firestore's other than the one hoped for, with its canonical status
/// (`ALREADY_EXISTS`, `NOT_FOUND`, `FAILED_PRECONDITION`, `ABORTED`, …).
public struct FirestoreError: Error, CustomStringConvertible, Equatable {
    /// The HTTP status.
    public let status: UInt
    /// The canonical status name.
    public let code: String
    /// Firestore's message.
    public let message: String
    /// The call that failed.
    public let operation: String

    /// `Firestore <operation>: HTTP <status> <code>: <message>`.
    public var description: String { "Firestore \(operation): HTTP \(status) \(code): \(message)" }

    /// A transaction lost to a concurrent one: retried by ``FirestoreClient/withTransaction(maxAttempts:_:)``.
    public var isContention: Bool { code == "ABORTED" }
}

/// Firestore's REST API v1 for one database: documents read and written, queries and counts, and
/// transactions retried on contention.
///
/// With an emulator (`FIRESTORE_EMULATOR_HOST`) calls carry no credentials; otherwise each carries
/// a token from Application Default Credentials. Reads are retried with jittered backoff on 429,
/// 5xx and connection errors; a commit is not (a lost answer could otherwise apply it twice).
public final class FirestoreClient: Sendable {
    /// `projects/{project}/databases/{database}`.
    public let database: String
    private let endpoint: String
    private let caller: ServiceCaller
    private let transactions: AsyncGate
    private let queryObserver: (@Sendable (FirestoreQuery) -> Void)?

    /// A client for one database.
    /// - Parameters:
    ///   - endpoint: `https://firestore.googleapis.com`, or an emulator's URL.
    ///   - project: The project.
    ///   - database: The database (`(default)` unless named).
    ///   - client: The HTTP client.
    ///   - concurrentTransactions: Read-write transactions run at once by this client; 1 for
    ///     the emulator, whose locks deadlock transactions that read and write one document
    ///     together (Firestore itself aborts the younger and the client retries it).
    ///   - queryObserver: Told of every query before it runs (counts without their page): how
    ///     tests check that each query has the composite index it needs.
    ///   - authorization: The `Authorization` header's value for each call; `nil` sends none.
    public init(
        endpoint: String, project: String, database: String = "(default)", client: HTTPClient = ServiceCaller.client,
        concurrentTransactions: Int = 64, queryObserver: (@Sendable (FirestoreQuery) -> Void)? = nil,
        authorization: @escaping @Sendable () async throws -> String? = { nil }
    ) {
        self.queryObserver = queryObserver
        self.transactions = AsyncGate(limit: concurrentTransactions)
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.database = "projects/\(project)/databases/\(database)"
        self.caller = ServiceCaller(api: "Firestore", client: client, authorization: authorization)
    }

    /// The full resource name of a document path (`teams/abc`).
    public func name(_ path: String) -> String { "\(database)/documents/\(path)" }

    /// A document's path below the database's documents (`teams/abc`), from its resource name.
    public func path(of document: FirestoreDocument) -> String? {
        let prefix = name("")
        guard let name = document.name, name.hasPrefix(prefix) else { return nil }
        return String(name.dropFirst(prefix.count))
    }

    private var documents: String { "\(endpoint)/v1/\(ServiceCaller.escapedPath(database))/documents" }

    // MARK: Documents

    /// Reads a document, or `nil` when it does not exist.
    /// - Parameters:
    ///   - path: The document's path (`teams/abc`).
    ///   - transaction: Reads within this transaction.
    public func document(_ path: String, transaction: String? = nil) async throws -> FirestoreDocument? {
        if transaction != nil { return try await documents([path], transaction: transaction)[path] ?? nil }
        let operation = "GET \(path)"
        let response = try await send(
            .GET, "\(documents)/\(ServiceCaller.escapedPath(path))", operation: operation, idempotent: true)
        if response.status == .notFound {
            // The connection goes back to the pool only once its answer is read.
            _ = try await response.body.collect(upTo: 1 << 20)
            return nil
        }
        return try await decode(FirestoreDocument.self, response, operation)
    }

    /// Reads several documents in one call (`batchGet`), which is also how reads join a
    /// transaction: the transaction's id travels in the body (the emulator cannot take it as a
    /// query parameter of a plain `GET`).
    /// - Parameters:
    ///   - paths: The documents' paths.
    ///   - transaction: Reads within this transaction.
    /// - Returns: Each path's document, or `nil` for those that do not exist.
    public func documents(_ paths: [String], transaction: String? = nil) async throws -> [String: FirestoreDocument?] {
        struct Result: Decodable {
            let found: FirestoreDocument?
            let missing: String?
        }
        guard !paths.isEmpty else { return [:] }
        var body: [String: Any] = ["documents": paths.map(name)]
        if let transaction { body["transaction"] = transaction }
        let operation = "batchGet \(paths.count) documents"
        let response = try await send(
            .POST, "\(documents):batchGet", headers: ["Content-Type": "application/json"],
            body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)), operation: operation,
            idempotent: true)
        var found: [String: FirestoreDocument?] = Dictionary(paths.map { ($0, nil) }, uniquingKeysWith: { $1 })
        for result in try await decode([Result].self, response, operation) {
            guard let document = result.found, let path = path(of: document) else { continue }
            found[path] = document
        }
        return found
    }

    /// Applies writes all together, each under its precondition, inside `transaction` when given
    /// (which the commit ends).
    /// - Throws: ``FirestoreError`` when a precondition fails (nothing is written) or the
    ///   transaction lost to another.
    public func commit(_ writes: [FirestoreWrite], transaction: String? = nil) async throws {
        var body: [String: Any] = ["writes": try writes.map(json)]
        if let transaction { body["transaction"] = transaction }
        let operation = "commit \(writes.count) writes"
        let response = try await send(
            .POST, "\(documents):commit", headers: ["Content-Type": "application/json"],
            body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)), operation: operation,
            idempotent: false)
        try await check(response, operation)
    }

    private func json(_ write: FirestoreWrite) throws -> [String: Any] {
        var entry: [String: Any]
        switch write.operation {
        case .set(var document):
            document.name = name(write.path)
            entry = ["update": try FirestoreJSON.object(document)]
        case .merge(let fields):
            var document = FirestoreDocument(fields: fields)
            document.name = name(write.path)
            entry = ["update": try FirestoreJSON.object(document), "updateMask": ["fieldPaths": fields.keys.sorted()]]
        case .delete:
            entry = ["delete": name(write.path)]
        }
        switch write.precondition {
        case .none: break
        case .exists(let exists): entry["currentDocument"] = ["exists": exists]
        case .updatedAt(let time): entry["currentDocument"] = ["updateTime": time]
        }
        return entry
    }

    // MARK: Queries

    /// The documents a query selects, in its order.
    /// - Parameters:
    ///   - query: The query.
    ///   - transaction: Reads within this transaction.
    public func run(_ query: FirestoreQuery, transaction: String? = nil) async throws -> [FirestoreDocument] {
        struct Result: Decodable { let document: FirestoreDocument? }
        queryObserver?(query)
        var body: [String: Any] = ["structuredQuery": query.json(database: database)]
        if let transaction { body["transaction"] = transaction }
        let operation = "runQuery \(query.collection)"
        let response = try await send(
            .POST, "\(documents):runQuery", headers: ["Content-Type": "application/json"],
            body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)), operation: operation,
            idempotent: true)
        return try await decode([Result].self, response, operation).compactMap(\.document)
    }

    /// How many documents a query selects (its offset, limit and cursor ignored), by
    /// `runAggregationQuery`'s count.
    public func count(_ query: FirestoreQuery, transaction: String? = nil) async throws -> Int {
        struct Result: Decodable {
            struct Aggregate: Decodable { let aggregateFields: [String: FirestoreValue] }
            let result: Aggregate?
        }
        // The order stays: the count then runs on the index the listing uses.
        var unpaged = query
        unpaged.offset = nil
        unpaged.limit = nil
        unpaged.startAfter = nil
        queryObserver?(unpaged)
        var body: [String: Any] = [
            "structuredAggregationQuery": [
                "structuredQuery": unpaged.json(database: database),
                "aggregations": [["alias": "total", "count": [String: Any]()]],
            ]
        ]
        if let transaction { body["transaction"] = transaction }
        let operation = "count \(query.collection)"
        let response = try await send(
            .POST, "\(documents):runAggregationQuery", headers: ["Content-Type": "application/json"],
            body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)), operation: operation,
            idempotent: true)
        let results = try await decode([Result].self, response, operation)
        guard case .integer(let total)? = results.compactMap(\.result).first?.aggregateFields["total"] else {
            throw FirestoreError(status: 200, code: "UNKNOWN", message: "the answer has no count", operation: operation)
        }
        return Int(total)
    }

    // MARK: Transactions

    /// Starts a read-write transaction.
    /// - Returns: Its id.
    public func beginTransaction() async throws -> String {
        struct Answer: Decodable { let transaction: String }
        let operation = "beginTransaction"
        let response = try await send(
            .POST, "\(documents):beginTransaction", headers: ["Content-Type": "application/json"],
            body: ByteBuffer(string: "{}"), operation: operation, idempotent: true)
        return try await decode(Answer.self, response, operation).transaction
    }

    /// Abandons a transaction, releasing what it holds.
    public func rollback(_ transaction: String) async throws {
        let operation = "rollback"
        let response = try await send(
            .POST, "\(documents):rollback", headers: ["Content-Type": "application/json"],
            body: ByteBuffer(data: try JSONSerialization.data(withJSONObject: ["transaction": transaction])),
            operation: operation, idempotent: true)
        try await check(response, operation)
    }

    /// Runs `body` in a transaction and commits the writes it buffered; when the commit (or a
    /// read) loses to a concurrent transaction, runs it again in a new one after a jittered
    /// backoff (0.05 s doubling), up to `maxAttempts` times, and then throws a 503
    /// ``DomainError``. Any other error rolls back. At most
    /// `concurrentTransactions` run at once; the others wait for a place.
    /// - Parameters:
    ///   - maxAttempts: The most runs.
    ///   - body: Reads through the transaction and buffers its writes; it may run more than once.
    /// - Returns: What `body` returned in the run that committed.
    public func withTransaction<T: Sendable>(
        maxAttempts: Int = 8, _ body: (FirestoreTransaction) async throws -> T
    ) async throws -> T {
        try await transactions.run { try await attempt(maxAttempts: maxAttempts, body) }
    }

    private func attempt<T: Sendable>(
        maxAttempts: Int, _ body: (FirestoreTransaction) async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            let transaction = FirestoreTransaction(client: self, id: try await beginTransaction())
            do {
                let result = try await body(transaction)
                try await commit(transaction.writes, transaction: transaction.id)
                return result
            } catch let error as FirestoreError where error.isContention {
                guard attempt < maxAttempts else {
                    throw DomainError(
                        .unavailableFor(retryAfterSeconds: 1),
                        "The metadata store is busy: \(maxAttempts) attempts lost to concurrent changes (\(error))")
                }
                let base = 0.05 * Double(1 << min(attempt - 1, 6))
                try await Task.sleep(for: .seconds(base + Double.random(in: 0..<base)))
                attempt += 1
            } catch {
                try? await rollback(transaction.id)
                throw error
            }
        }
    }

    // MARK: The emulator

    /// Deletes every document of the database: the emulator's own reset call (not part of
    /// Firestore's API).
    public func deleteAllDocumentsOnEmulator() async throws {
        let operation = "reset the emulator"
        let response = try await send(
            .DELETE, "\(endpoint)/emulator/v1/\(ServiceCaller.escapedPath(database))/documents", operation: operation,
            idempotent: true)
        try await check(response, operation)
    }

    // MARK: Calls and answers

    /// One call through the retrying caller; when no answer came (Firestore unreachable after
    /// the retries), a 503 ``DomainError`` that says so.
    private func send(
        _ method: HTTPMethod, _ url: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil, operation: String,
        idempotent: Bool
    ) async throws -> HTTPClientResponse {
        do {
            return try await caller.send(
                method, url, headers: headers, body: body, operation: operation, idempotent: idempotent)
        } catch let error as ServiceCallError {
            throw DomainError(.unavailableFor(retryAfterSeconds: 1), "The metadata store is unavailable: \(error)")
        }
    }

    private func check(_ response: HTTPClientResponse, _ operation: String) async throws {
        guard response.status == .ok else { throw Self.surfaced(await failure(response, operation)) }
        _ = try await response.body.collect(upTo: 1 << 20)
    }

    private func decode<T: Decodable>(
        _ type: T.Type, _ response: HTTPClientResponse, _ operation: String
    )
        async throws -> T
    {
        guard response.status == .ok else { throw Self.surfaced(await failure(response, operation)) }
        let body = try await response.body.collect(upTo: 32 << 20)
        return try JSONDecoder().decode(T.self, from: Data(buffer: body))
    }

    /// Firestore's error, or a 503 ``DomainError`` when Firestore is overloaded or unavailable
    /// still after the caller's retries (429, 503, 504).
    private static func surfaced(_ error: FirestoreError) -> any Error {
        guard [429, 503, 504].contains(error.status) else { return error }
        return DomainError(.unavailableFor(retryAfterSeconds: 1), "The metadata store is unavailable: \(error)")
    }

    private func failure(_ response: HTTPClientResponse, _ operation: String) async -> FirestoreError {
        struct Envelope: Decodable {
            struct Detail: Decodable {
                let message: String?
                let status: String?
            }
            let error: Detail
        }
        let body = (try? await response.body.collect(upTo: 1 << 16)).map { Data(buffer: $0) } ?? Data()
        let envelope = try? JSONDecoder().decode(Envelope.self, from: body)
        // The emulator answers some calls with an array of one envelope.
        let detail = envelope?.error ?? (try? JSONDecoder().decode([Envelope].self, from: body))?.first?.error
        return FirestoreError(
            status: response.status.code, code: detail?.status ?? "UNKNOWN",
            message: detail?.message ?? String(decoding: body.prefix(300), as: UTF8.self), operation: operation)
    }
}

/// Reads through one transaction and buffers its writes until the commit.
///
/// Firestore's own reads in a transaction do not see its buffered writes; these do. A document
/// written in the transaction reads back as written (or as missing once deleted), and
/// ``runSeeingOwnWrites(_:)`` merges the buffered documents into a query's answer. Several
/// writes to one document become one at the commit: the last operation, under the first
/// write's precondition.
public final class FirestoreTransaction: Sendable {
    /// The transaction's id.
    public let id: String
    private let client: FirestoreClient
    private struct Staged {
        var operation: FirestoreWrite.Operation
        var precondition: FirestoreWrite.Precondition
    }
    private struct State {
        var order: [String] = []
        var staged: [String: Staged] = [:]
    }
    private let state = Locked(State())

    init(client: FirestoreClient, id: String) {
        self.client = client
        self.id = id
    }

    /// The writes buffered so far, one per document, in the order first written.
    public var writes: [FirestoreWrite] {
        state.withLock { state in
            state.order.compactMap { path in
                state.staged[path].map { FirestoreWrite(path, $0.operation, precondition: $0.precondition) }
            }
        }
    }

    /// What the transaction has written to a document: `.some(nil)` when it deleted it, `nil`
    /// when it has not touched it (merges are not tracked).
    private func staged(_ path: String) -> FirestoreDocument?? {
        state.withLock { state in
            switch state.staged[path]?.operation {
            case .set(let document)?: .some(document)
            case .delete?: .some(nil)
            case .merge?, nil: nil
            }
        }
    }

    /// Reads a document within the transaction (Firestore then fails the commit if another
    /// transaction changes it first), or as this transaction wrote it.
    public func document(_ path: String) async throws -> FirestoreDocument? {
        if let written = staged(path) { return written }
        return try await client.document(path, transaction: id)
    }

    /// Reads several documents within the transaction in one call, each as this transaction
    /// wrote it where it did.
    public func documents(_ paths: [String]) async throws -> [String: FirestoreDocument?] {
        var found: [String: FirestoreDocument?] = [:]
        var unread: [String] = []
        for path in paths {
            if let written = staged(path) { found[path] = written } else { unread.append(path) }
        }
        for (path, document) in try await client.documents(unread, transaction: id) { found[path] = document }
        return found
    }

    /// Runs a query within the transaction, as Firestore answers it (without this
    /// transaction's writes).
    public func run(_ query: FirestoreQuery) async throws -> [FirestoreDocument] {
        try await client.run(query, transaction: id)
    }

    /// Runs a query of equality filters within the transaction and merges this transaction's
    /// writes into the answer: documents it deleted or changed to fail the filters drop out,
    /// documents it wrote that pass them come in. The order of the answer is not the query's.
    /// - Returns: Each matching document by path.
    public func runSeeingOwnWrites(_ query: FirestoreQuery) async throws -> [String: FirestoreDocument] {
        precondition(query.filters.allSatisfy { $0.op == .equal }, "only equality filters are merged")
        var found: [String: FirestoreDocument] = [:]
        for document in try await client.run(query, transaction: id) {
            if let path = client.path(of: document) { found[path] = document }
        }
        let written = state.withLock { state in
            state.staged.filter { $0.key.hasPrefix(query.collection + "/") }
        }
        for (path, staged) in written {
            switch staged.operation {
            case .set(let document):
                let matches = query.filters.allSatisfy { document.fields[$0.field] == $0.value }
                found[path] = matches ? document : nil
            case .delete:
                found[path] = nil
            case .merge:
                continue
            }
        }
        return found
    }

    /// Counts a query's documents within the transaction (as Firestore counts them, without
    /// this transaction's writes).
    public func count(_ query: FirestoreQuery) async throws -> Int {
        try await client.count(query, transaction: id)
    }

    /// Buffers a write for the commit.
    public func write(_ write: FirestoreWrite) {
        state.withLock { state in
            if var staged = state.staged[write.path] {
                staged.operation = write.operation
                state.staged[write.path] = staged
            } else {
                state.order.append(write.path)
                state.staged[write.path] = Staged(operation: write.operation, precondition: write.precondition)
            }
        }
    }
}
