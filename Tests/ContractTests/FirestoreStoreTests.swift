import FirestoreStorage
import Foundation
import ImageAPICore
import Locking
import TestSupport
import Testing

/// What the Firestore store must do beyond the shared contracts: hold its guarantees across
/// processes (several clients on one database, each with its own transaction gate, as several
/// function instances would have), answer 503 when Firestore cannot be reached, and issue only
/// queries whose composite indexes the index file declares.
@Suite(
    "Firestore metadata store: several processes, an unreachable Firestore, declared indexes",
    .enabled(if: TestServers.firestoreEmulator != nil, "needs the Firestore emulator scripts/test-servers.sh starts"))
struct FirestoreStoreTests {
    /// Stores on one fresh database, one client each.
    static func processes(_ count: Int) throws -> [FirestoreMetadataStore] {
        let first = try TestServers.firestoreClient()
        let others = try (1..<count).map { _ in
            try TestServers.firestoreClient(project: TestServers.project(of: first))
        }
        return ([first] + others).map { FirestoreMetadataStore(client: $0) }
    }

    @Test("of 20 creations of one e-mail from four processes exactly one succeeds; the rest are refused as taken")
    func emailAcrossProcesses() async throws {
        let stores = try Self.processes(4)
        let team = Make.team()
        try await stores[0].insertTeam(team)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                group.addTask {
                    do {
                        try await UserService(store: stores[index % 4]).create(
                            Make.user("same@example.com", team: team))
                        return true
                    } catch let error as MetadataStoreError where error == .emailTaken {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1 && outcomes.count == 20)
        #expect(try await stores[3].users(teamID: team.id, PageRequest()).total == 1)
    }

    @Test("of 20 uploads of the same bytes from four processes exactly one is stored, with one message")
    func digestAcrossProcesses() async throws {
        let stores = try Self.processes(4)
        let team = Make.team()
        try await stores[0].insertTeam(team)
        let stored = try await Make.contendedInserts(stores, team: team)
        #expect(stored == 1)
        #expect(try await stores[1].images(teamID: team.id, filter: ImageFilter(), PageRequest()).total == 1)
        #expect(
            try await stores[2].claimDueMessages(now: Make.date(100), leaseUntil: Make.date(200), limit: 50).count == 1)
    }

    @Test("four relays claiming one outbox together claim each message exactly once per lease")
    func claimsAcrossProcesses() async throws {
        let stores = try Self.processes(4)
        let team = Make.team()
        try await stores[0].insertTeam(team)
        var published: Set<String> = []
        for index in 0..<24 {
            let image = Make.image(team: team, at: index)
            let message = Make.message(for: image)
            published.insert(message.messageID)
            try await stores[index % 4].insertImage(image, publishing: message, allowDuplicate: false)
        }
        let claims = try await withThrowingTaskGroup(of: [String].self) { group in
            for store in stores {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let batch = try await store.claimDueMessages(
                            now: Make.date(100), leaseUntil: Make.date(200), limit: 4)
                        if batch.isEmpty, try await store.nextDueDate().map({ $0 > Make.date(100) }) ?? true {
                            return mine
                        }
                        mine += batch.map(\.message.messageID)
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        // Each process counts what it enqueued, which wakes its own relay at once.
        #expect(stores.map(\.enqueuedHere) == [6, 6, 6, 6])
        #expect(claims.count == published.count, "a message was claimed twice, or not at all")
        #expect(Set(claims) == published)
    }

    @Test("an e-mail changed moves its reservation: the old address is free again, the new one taken")
    func emailReservationMoves() async throws {
        let store = try Self.processes(1)[0]
        let team = Make.team()
        try await store.insertTeam(team)
        let users = UserService(store: store)
        var user = Make.user("old@example.com", team: team)
        try await users.create(user)
        user.email = "new@example.com"
        #expect(try await users.update(user))
        #expect(try await store.user(email: "old@example.com") == nil)
        #expect(try await store.user(email: "new@example.com")?.id == user.id)
        try await users.create(Make.user("old@example.com", team: team, at: 1))
        await #expect(throws: MetadataStoreError.emailTaken) {
            try await users.create(Make.user("new@example.com", team: team, at: 2))
        }
        #expect(try await users.delete(id: user.id))
        try await users.create(Make.user("new@example.com", team: team, at: 3))
    }

    @Test("re-embedding more images than one batch holds queues them all, batch after batch")
    func reembeddingInBatches() async throws {
        // Batches of 10 here (250 in use, the most a transaction's 500 writes allow).
        let store = FirestoreMetadataStore(client: try TestServers.firestoreClient(), requeueBatch: 10)
        let team = Make.team()
        try await store.insertTeam(team)
        let count = 25
        for index in 0..<count {
            let image = Make.image(team: team, at: index)
            try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
            _ = try await store.beginProcessing(
                id: image.id, teamID: team.id, model: "old", maxAttempts: 3, at: Make.date(index))
            try await store.completeProcessing(
                id: image.id, teamID: team.id, model: "old", dimensions: 4, perceptualHash: nil, at: Make.date(index))
        }
        #expect(
            try await store.requeueImages(
                teamID: team.id, notEmbeddedWith: "new", includeCurrent: false, reason: "model", at: Make.date(999))
                == count)
        let summary = try await store.embeddingSummary(teamID: team.id, model: "new")
        #expect(summary.pending == count && summary.stale == 0 && summary.total == count)
    }

    @Test("an image with more words than a document may index is stored; its first words are found, the rest not")
    func wordIndexIsBounded() async throws {
        let store = try Self.processes(1)[0]
        let team = Make.team()
        try await store.insertTeam(team)
        var random = SeededGenerator(seed: 12)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let words = (0..<20_000).map { _ in String((0..<8).map { _ in letters.randomElement(using: &random)! }) }
        var image = Make.image(team: team, filename: "scan.jpg")
        image.exif = ["ImageDescription": words.joined(separator: " ")]
        try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
        let first = try await store.searchText([words[0]], teamID: team.id, filter: ImageFilter(), limit: 5)
        #expect(first.map(\.image.id) == [image.id])
        let last = try await store.searchText([words[19_999]], teamID: team.id, filter: ImageFilter(), limit: 5)
        #expect(last.isEmpty, "past the bound of \(10_000) prefixes")
    }

    @Test("an unreachable Firestore is a 503 naming the metadata store, for readiness and for requests")
    func unreachable() async throws {
        // Nothing listens on port 1 of the loopback interface: every connection is refused.
        let store = FirestoreMetadataStore(client: FirestoreClient(endpoint: "http://127.0.0.1:1", project: "nowhere"))
        for call in [{ try await store.checkReady() }, { _ = try await store.team(id: TeamID()) }] {
            let error = await #expect(throws: DomainError.self) { try await call() }
            #expect(error?.kind == .unavailableFor(retryAfterSeconds: 1))
            #expect(error?.detail.contains("metadata store is unavailable") == true)
        }
    }

    @Test("every query the store issues has the composite index terraform/firestore-indexes.json declares")
    func declaredIndexes() async throws {
        let issued = Locked<[FirestoreQuery]>([])
        let store = FirestoreMetadataStore(
            client: try TestServers.firestoreClient { query in issued.withLock { $0.append(query) } })
        try await Self.exerciseEveryQuery(store)
        let indexes = try FirestoreIndexFile.load().indexes
        let requirements = issued.withLock { $0 }.compactMap(FirestoreIndexFile.requirement)
        #expect(Set(requirements.map(\.collection)) == ["users", "api_keys", "images", "dead_letters"])
        for requirement in requirements where !indexes.contains(where: requirement.isServed) {
            Issue.record("no declared index serves \(requirement)")
        }
        // The file declares nothing the store never needs.
        for index in indexes where !requirements.contains(where: { $0.isServed(by: index) }) {
            Issue.record("declared but never needed: \(index)")
        }
    }

    /// Runs every read and write of the store, with every filter of the listings and search.
    static func exerciseEveryQuery(_ store: FirestoreMetadataStore) async throws {
        let team = Make.team()
        try await store.insertTeam(team)
        _ = try await store.teams(PageRequest())
        let users = UserService(store: store)
        let user = Make.user("a@example.com", team: team)
        try await users.create(user)
        _ = try await store.users(teamID: team.id, PageRequest())
        _ = try await store.users(teamID: nil, PageRequest())
        _ = try await APIKeyService(store: store, secret: "s", expiryDays: 1, clock: SystemTimeSource())
            .register(Make.key(for: user))
        _ = try await store.apiKeys(userID: user.id, PageRequest())
        let collection = UUID()
        let first = Make.image(team: team, sha256: "d", tags: ["a", "b"], collection: collection, at: 1)
        let copy = Make.image(team: team, sha256: "d", at: 2)
        try await store.insertImage(first, publishing: Make.message(for: first), allowDuplicate: false)
        try await store.insertImage(copy, publishing: Make.message(for: copy), allowDuplicate: true)
        for filter in [
            ImageFilter(), ImageFilter(collectionID: collection), ImageFilter(tags: ["a"]),
            ImageFilter(collectionID: collection, tags: ["a"]), ImageFilter(tags: ["a", "b"]),
            ImageFilter(uploadedFrom: Make.date(0), uploadedTo: Make.date(9)),
            ImageFilter(collectionID: collection, tags: ["a"], uploadedFrom: Make.date(0)),
            ImageFilter(embeddingStatus: .failed), ImageFilter(collectionID: collection, embeddingStatus: .pending),
            ImageFilter(tags: ["a"], embeddingStatus: .success),
            ImageFilter(collectionID: collection, tags: ["a"], embeddingStatus: .pending),
            ImageFilter(uploadedFrom: Make.date(0), embeddingStatus: .pending),
        ] {
            _ = try await store.images(teamID: team.id, filter: filter, PageRequest())
            _ = try await store.searchText(["photo"], teamID: team.id, filter: filter, limit: 5)
        }
        _ = try await store.image(sha256: "d", teamID: team.id)
        _ = try await store.perceptualHashes(teamID: team.id)
        var named = ImageCollection(
            id: collection, teamID: team.id, name: "Named", description: nil, coverImageID: nil,
            createdAt: Make.date(1), updatedAt: Make.date(1))
        try await store.insertCollection(named)
        named.name = "Renamed"
        _ = try await store.updateCollection(named)
        _ = try await store.collections(teamID: team.id)
        _ = try await store.collectionLabels(teamID: team.id)
        _ = try await store.deleteCollection(id: collection, teamID: team.id, at: Make.date(2))
        _ = try await store.deleteImage(id: first.id, teamID: team.id)
        _ = try await store.embeddingSummary(teamID: team.id, model: "m")
        _ = try await store.requeueImages(
            teamID: team.id, notEmbeddedWith: "m", includeCurrent: true, reason: "r", at: Make.date(3))
        let claimed = try await store.claimDueMessages(now: Make.date(9), leaseUntil: Make.date(99), limit: 5)
        _ = try await store.nextDueDate()
        if let message = claimed.first {
            try await store.moveToDeadLetters(messageID: message.message.messageID, error: "e", at: Make.date(10))
        }
        _ = try await store.deadLetters(teamID: team.id, PageRequest())
        _ = try await users.delete(id: user.id)
        _ = try await TeamService(store: store).delete(id: team.id)
    }
}

/// The composite indexes of `terraform/firestore-indexes.json`, and the index a query needs.
///
/// Firestore serves a query from its automatic single-field indexes when it filters or orders by
/// one field, or has equality filters alone (merged); any other query needs a composite index of
/// its equality fields (in any order), then its `array-contains` field, then its order (the
/// document name last, implied).
struct FirestoreIndexFile: Decodable {
    struct Index: Decodable, CustomStringConvertible {
        struct Field: Decodable, Equatable {
            let fieldPath: String
            let order: String?
            let arrayConfig: String?
        }
        let collectionGroup: String
        let queryScope: String
        let fields: [Field]

        var description: String {
            "\(collectionGroup)("
                + fields.map { "\($0.fieldPath) \($0.order ?? $0.arrayConfig ?? "?")" }.joined(separator: ", ") + ")"
        }
    }

    /// The composite index one query needs.
    struct Requirement: CustomStringConvertible {
        let collection: String
        let equalities: Set<String>
        let array: String?
        let order: [(field: String, ascending: Bool)]

        var description: String {
            "\(collection): equal \(equalities.sorted()), contains \(array ?? "-"), order "
                + order.map { "\($0.field) \($0.ascending ? "asc" : "desc")" }.joined(separator: ", ")
        }

        func isServed(by index: Index) -> Bool {
            guard index.collectionGroup == collection, index.queryScope == "COLLECTION" else { return false }
            let arrayFields = array.map { [Index.Field(fieldPath: $0, order: nil, arrayConfig: "CONTAINS")] } ?? []
            let orderFields = order.map {
                Index.Field(fieldPath: $0.field, order: $0.ascending ? "ASCENDING" : "DESCENDING", arrayConfig: nil)
            }
            let head = index.fields.prefix(equalities.count)
            return index.fields.count == equalities.count + arrayFields.count + orderFields.count
                && Set(head.map(\.fieldPath)) == equalities && head.allSatisfy { $0.order == "ASCENDING" }
                && Array(index.fields.dropFirst(equalities.count)) == arrayFields + orderFields
        }
    }

    let indexes: [Index]

    static func load() throws -> FirestoreIndexFile {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("terraform/firestore-indexes.json"))
        return try JSONDecoder().decode(FirestoreIndexFile.self, from: data)
    }

    /// The composite index a query needs, or `nil` when single-field indexes serve it.
    static func requirement(of query: FirestoreQuery) -> Requirement? {
        let equalities = Set(query.filters.filter { $0.op == .equal || $0.op == .in }.map(\.field))
        let array = query.filters.first { $0.op == .arrayContains || $0.op == .arrayContainsAny }?.field
        var order = query.orderBy.filter { $0.field != "__name__" }
        let inequalities: [FirestoreQuery.Filter.Operator] = [
            .lessThan, .lessThanOrEqual, .greaterThan, .greaterThanOrEqual,
        ]
        // An inequality the order does not name is ordered by first, ascending.
        if let inequality = query.filters.first(where: { inequalities.contains($0.op) }),
            !order.contains(where: { $0.field == inequality.field })
        {
            order.insert((inequality.field, true), at: 0)
        }
        let fields = equalities.union(array.map { [$0] } ?? []).union(order.map(\.field))
        if fields.count <= 1 || (array == nil && order.isEmpty) { return nil }
        return Requirement(collection: query.collection, equalities: equalities, array: array, order: order)
    }
}
