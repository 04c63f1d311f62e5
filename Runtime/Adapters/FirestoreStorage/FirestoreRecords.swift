import Foundation
import ImageAPICore

/// The collections of the metadata store, named in this one place (the index file,
/// `terraform/firestore-indexes.json`, names them too).
public enum FirestoreCollection {
    /// Teams, by id.
    public static let teams = "teams"
    /// Users, by id.
    public static let users = "users"
    /// One document per e-mail in use, keyed by the lower-cased address, naming its user: what
    /// keeps e-mails unique (Firestore has no unique index).
    public static let userEmails = "user_emails"
    /// API keys, by id.
    public static let apiKeys = "api_keys"
    /// Bootstrap keys ever registered, by key id.
    public static let bootstrapKeys = "bootstrap_keys"
    /// Images, by id, with their text-search words.
    public static let images = "images"
    /// One document per (team, content digest) in use, naming the team's first image with those
    /// bytes: what keeps a team's images unique by content.
    public static let imageDigests = "image_digests"
    /// The transactional outbox, by message id.
    public static let outbox = "outbox"
    /// Dead letters, by message id.
    public static let deadLetters = "dead_letters"
    /// Named collections of images, by id.
    public static let imageCollections = "image_collections"
    /// One document per (team, collection name lower-cased) in use, naming its collection: what
    /// keeps a team's collection names unique.
    public static let collectionNames = "collection_names"

    /// A document id for text that may hold `/` (which Firestore ids cannot), or be `.`, `..` or
    /// `__…__` (which they must not): percent-encoded where needed.
    static func documentID(_ text: String) -> String {
        let encoded = text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
        if encoded.isEmpty || encoded == "." || encoded == ".." || (encoded.hasPrefix("__") && encoded.hasSuffix("__"))
        {
            return "%" + encoded
        }
        return encoded
    }

    static func team(_ id: TeamID) -> String { "\(teams)/\(id.lowercasedString)" }
    static func user(_ id: UserID) -> String { "\(users)/\(id.lowercasedString)" }
    static func email(_ address: String) -> String { "\(userEmails)/\(documentID(address.lowercased()))" }
    static func apiKey(_ id: APIKeyID) -> String { "\(apiKeys)/\(id.lowercasedString)" }
    static func bootstrapKey(_ id: APIKeyID) -> String { "\(bootstrapKeys)/\(id.lowercasedString)" }
    static func image(_ id: ImageID) -> String { "\(images)/\(id.lowercasedString)" }
    static func imageCollection(_ id: UUID) -> String { "\(imageCollections)/\(id.lowercasedString)" }
    static func collectionName(_ nameKey: String, teamID: TeamID) -> String {
        "\(collectionNames)/\(teamID.lowercasedString)_\(documentID(nameKey))"
    }
    static func digest(_ sha256: String, teamID: TeamID) -> String {
        "\(imageDigests)/\(teamID.lowercasedString)_\(documentID(sha256))"
    }
    static func outboxMessage(_ id: String) -> String { "\(outbox)/\(documentID(id))" }
    static func deadLetter(_ id: String) -> String { "\(deadLetters)/\(documentID(id))" }
}

/// A stored document that does not hold what the store wrote.
public struct FirestoreRecordError: Error, CustomStringConvertible {
    /// The document.
    public let document: String
    /// The field that is missing or of another type.
    public let field: String

    /// `document <name>: field <field> is missing or not of its type`.
    public var description: String { "document \(document): field \(field) is missing or not of its type" }
}

/// Reads typed fields of one document, throwing ``FirestoreRecordError`` for a field that is
/// missing or of another type.
struct FieldReader {
    let document: FirestoreDocument

    private func fail(_ field: String) -> FirestoreRecordError {
        FirestoreRecordError(document: document.name ?? "?", field: field)
    }

    func optionalString(_ field: String) throws -> String? {
        switch document.fields[field] {
        case .string(let text)?: text
        case .null?, nil: nil
        default: throw fail(field)
        }
    }
    func string(_ field: String) throws -> String {
        guard let text = try optionalString(field) else { throw fail(field) }
        return text
    }
    func optionalInteger(_ field: String) throws -> Int? {
        switch document.fields[field] {
        case .integer(let number)?: Int(number)
        case .null?, nil: nil
        default: throw fail(field)
        }
    }
    func integer(_ field: String) throws -> Int {
        guard let number = try optionalInteger(field) else { throw fail(field) }
        return number
    }
    func boolean(_ field: String) throws -> Bool {
        guard case .boolean(let value)? = document.fields[field] else { throw fail(field) }
        return value
    }
    func optionalDate(_ field: String) throws -> Date? {
        switch document.fields[field] {
        case .timestamp(let date)?: date
        case .null?, nil: nil
        default: throw fail(field)
        }
    }
    func date(_ field: String) throws -> Date {
        guard let date = try optionalDate(field) else { throw fail(field) }
        return date
    }
    func bytes(_ field: String) throws -> Data {
        guard case .bytes(let data)? = document.fields[field] else { throw fail(field) }
        return data
    }
    func strings(_ field: String) throws -> [String] {
        guard case .array(let values)? = document.fields[field] else { throw fail(field) }
        return try values.map { value in
            guard case .string(let text) = value else { throw fail(field) }
            return text
        }
    }
    func stringMap(_ field: String) throws -> [String: String] {
        guard case .map(let values)? = document.fields[field] else { throw fail(field) }
        return try values.mapValues { value in
            guard case .string(let text) = value else { throw fail(field) }
            return text
        }
    }
    func identifier<ID: TypedIdentifier>(_ field: String, as type: ID.Type = ID.self) throws -> ID {
        guard let id = ID(try string(field)) else { throw fail(field) }
        return id
    }
    func optionalUUID(_ field: String) throws -> UUID? {
        guard let text = try optionalString(field) else { return nil }
        guard let id = UUID(uuidString: text) else { throw fail(field) }
        return id
    }
    func uuid(_ field: String) throws -> UUID {
        guard let id = try optionalUUID(field) else { throw fail(field) }
        return id
    }
}

extension FirestoreValue {
    /// A string, or null.
    static func optional(_ text: String?) -> FirestoreValue { text.map(FirestoreValue.string) ?? .null }
    /// An integer, or null.
    static func optional(_ number: Int?) -> FirestoreValue { number.map { .integer(Int64($0)) } ?? .null }
    /// A timestamp, or null.
    static func optional(_ date: Date?) -> FirestoreValue { date.map(FirestoreValue.timestamp) ?? .null }
    /// An id's lower-case text.
    static func id(_ id: some TypedIdentifier) -> FirestoreValue { .string(id.lowercasedString) }
    /// An array of strings.
    static func strings(_ texts: [String]) -> FirestoreValue { .array(texts.map(FirestoreValue.string)) }
}

/// The documents of teams, users, keys, images, outbox messages and dead letters: every field
/// under the name the SQLite schema gives its column.
enum FirestoreRecords {
    static func fields(_ team: Team) -> [String: FirestoreValue] {
        [
            "id": .id(team.id), "name": .string(team.name), "description": .optional(team.description),
            "created_at": .timestamp(team.createdAt), "updated_at": .timestamp(team.updatedAt),
        ]
    }

    static func team(_ document: FirestoreDocument) throws -> Team {
        let row = FieldReader(document: document)
        return Team(
            id: try row.identifier("id"), name: try row.string("name"),
            description: try row.optionalString("description"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    static func fields(_ user: User) -> [String: FirestoreValue] {
        [
            "id": .id(user.id), "email": .string(user.email.lowercased()), "name": .string(user.name),
            "team_id": .id(user.teamID), "is_admin": .boolean(user.isAdmin), "is_active": .boolean(user.isActive),
            "created_at": .timestamp(user.createdAt), "updated_at": .timestamp(user.updatedAt),
        ]
    }

    static func user(_ document: FirestoreDocument) throws -> User {
        let row = FieldReader(document: document)
        return User(
            id: try row.identifier("id"), email: try row.string("email"), name: try row.string("name"),
            teamID: try row.identifier("team_id"), isAdmin: try row.boolean("is_admin"),
            isActive: try row.boolean("is_active"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"))
    }

    static func fields(_ key: APIKey) -> [String: FirestoreValue] {
        [
            "id": .id(key.id), "name": .string(key.name), "description": .optional(key.description),
            "prefix": .string(key.prefix), "user_id": .id(key.userID), "team_id": .id(key.teamID),
            "secret_hash": .bytes(key.secretHash), "created_at": .timestamp(key.createdAt),
            "expires_at": .timestamp(key.expiresAt), "last_used_at": .optional(key.lastUsedAt),
            "is_active": .boolean(key.isActive),
        ]
    }

    static func apiKey(_ document: FirestoreDocument) throws -> APIKey {
        let row = FieldReader(document: document)
        return APIKey(
            id: try row.identifier("id"), name: try row.string("name"),
            description: try row.optionalString("description"),
            prefix: try row.string("prefix"), userID: try row.identifier("user_id"),
            teamID: try row.identifier("team_id"), secretHash: try row.bytes("secret_hash"),
            createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"),
            lastUsedAt: try row.optionalDate("last_used_at"), isActive: try row.boolean("is_active"))
    }

    static func fields(_ image: ImageRecord) -> [String: FirestoreValue] {
        let (words, prefixes) = SearchWords.index(of: image)
        return [
            "id": .id(image.id), "team_id": .id(image.teamID), "uploader_id": .id(image.uploaderID),
            "collection_id": .optional(image.collectionID?.lowercasedString), "filename": .string(image.filename),
            "content_type": .string(image.contentType), "format": .string(image.format),
            "file_size": .integer(Int64(image.fileSize)), "width": .integer(Int64(image.width)),
            "height": .integer(Int64(image.height)), "orientation": .optional(image.orientation),
            "sha256": .string(image.sha256), "description": .optional(image.description),
            "tags": .strings(image.tags), "exif": .map(image.exif.mapValues(FirestoreValue.string)),
            "embedding_status": .string(image.embeddingStatus.rawValue),
            "embedding_error": .optional(image.embeddingError),
            "embedding_attempts": .integer(Int64(image.embeddingAttempts)),
            "embedding_model": .optional(image.embeddingModel),
            "embedding_dimensions": .optional(image.embeddingDimensions), "embedded_at": .optional(image.embeddedAt),
            "phash": .optional(image.phash?.hex),
            "created_at": .timestamp(image.createdAt), "updated_at": .timestamp(image.updatedAt),
            "search_words": .strings(words), "search_prefixes": .strings(prefixes),
        ]
    }

    static func image(_ document: FirestoreDocument) throws -> ImageRecord {
        let row = FieldReader(document: document)
        var image = ImageRecord(
            id: try row.identifier("id"), teamID: try row.identifier("team_id"),
            uploaderID: try row.identifier("uploader_id"), collectionID: try row.optionalUUID("collection_id"),
            filename: try row.string("filename"), contentType: try row.string("content_type"),
            format: try row.string("format"), fileSize: try row.integer("file_size"), width: try row.integer("width"),
            height: try row.integer("height"), orientation: try row.optionalInteger("orientation"),
            sha256: try row.string("sha256"), description: try row.optionalString("description"),
            tags: try row.strings("tags"), exif: try row.stringMap("exif"), createdAt: try row.date("created_at"))
        guard let status = EmbeddingStatus(rawValue: try row.string("embedding_status")) else {
            throw FirestoreRecordError(document: document.name ?? "?", field: "embedding_status")
        }
        image.embeddingStatus = status
        image.embeddingError = try row.optionalString("embedding_error")
        image.embeddingAttempts = try row.integer("embedding_attempts")
        image.embeddingModel = try row.optionalString("embedding_model")
        image.embeddingDimensions = try row.optionalInteger("embedding_dimensions")
        image.embeddedAt = try row.optionalDate("embedded_at")
        image.phash = try row.optionalString("phash").flatMap { PerceptualHash(hex: $0) }
        image.updatedAt = try row.date("updated_at")
        return image
    }

    static func fields(_ collection: ImageCollection) -> [String: FirestoreValue] {
        [
            "id": .string(collection.id.lowercasedString), "team_id": .id(collection.teamID),
            "name": .string(collection.name), "name_key": .string(collection.nameKey),
            "description": .optional(collection.description),
            "cover_image_id": .optional(collection.coverImageID?.lowercasedString),
            "created_at": .timestamp(collection.createdAt), "updated_at": .timestamp(collection.updatedAt),
        ]
    }

    static func collection(_ document: FirestoreDocument) throws -> ImageCollection {
        let row = FieldReader(document: document)
        return ImageCollection(
            id: try row.uuid("id"), teamID: try row.identifier("team_id"), name: try row.string("name"),
            description: try row.optionalString("description"),
            coverImageID: try row.optionalString("cover_image_id").flatMap { ImageID($0) },
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    static func fields(_ message: OutboxMessage, at date: Date, due: Date? = nil) -> [String: FirestoreValue] {
        [
            "message_id": .string(message.messageID), "topic": .string(message.topic), "data": .bytes(message.data),
            "attributes": .map(message.attributes.mapValues(FirestoreValue.string)), "published_at": .timestamp(date),
            "attempts": .integer(0), "next_attempt_at": .timestamp(due ?? date), "last_error": .null,
        ]
    }

    static func queuedMessage(_ document: FirestoreDocument) throws -> QueuedMessage {
        let row = FieldReader(document: document)
        return QueuedMessage(
            message: OutboxMessage(
                topic: try row.string("topic"), messageID: try row.string("message_id"), data: try row.bytes("data"),
                attributes: try row.stringMap("attributes")),
            publishedAt: try row.date("published_at"), attempts: try row.integer("attempts"))
    }

    static func fields(_ letter: DeadLetter) -> [String: FirestoreValue] {
        [
            "message_id": .string(letter.messageID), "topic": .string(letter.topic), "data": .bytes(letter.data),
            "attempts": .integer(Int64(letter.attempts)), "last_error": .string(letter.lastError),
            "source": .string(letter.source), "dead_at": .timestamp(letter.deadAt),
            "team_id": .optional(letter.teamID?.lowercasedString),
        ]
    }

    static func deadLetter(_ document: FirestoreDocument) throws -> DeadLetter {
        let row = FieldReader(document: document)
        return DeadLetter(
            messageID: try row.string("message_id"), topic: try row.string("topic"), data: try row.bytes("data"),
            attempts: try row.integer("attempts"), lastError: try row.string("last_error"),
            source: try row.string("source"), deadAt: try row.date("dead_at"),
            teamID: try row.optionalString("team_id").flatMap { TeamID($0) })
    }
}

/// The words text search finds an image by, without SQLite's full-text index: file name (split
/// at every character that is not a letter or digit), description, tags and EXIF values,
/// lower-cased with diacritics removed. An image keeps its words and every prefix of each (up to
/// ``longestPrefix`` characters), so that `array-contains-any` finds a query word as a prefix,
/// as SQLite's prefix queries do.
enum SearchWords {
    /// The longest prefix stored; longer query words are looked up by this much and then
    /// compared whole.
    static let longestPrefix = 20
    /// The most query words one lookup takes (Firestore's limit for `array-contains-any`).
    static let maximumQueryWords = 30
    /// The most prefixes an image keeps: each is an index entry, and Firestore allows 40,000 a
    /// document. Tags (50 of 50 characters) and the description (1,000) stay well within it;
    /// only a very long EXIF text can reach it, and its words past the limit are not found.
    static let maximumPrefixes = 10_000

    /// Splits and normalises text into words.
    static func normalised(_ text: String) -> [String] {
        text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil).lowercased()
            .split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
    }

    /// An image's distinct words, in the order of the fields above, and their distinct
    /// prefixes; words stop being added once their prefixes would pass ``maximumPrefixes``.
    static func index(of image: ImageRecord) -> (words: [String], prefixes: [String]) {
        let text = [image.filename, image.description ?? ""] + image.tags + image.exif.values.sorted()
        var words: [String] = []
        var prefixes: [String] = []
        var seenWords = Set<String>()
        var seenPrefixes = Set<String>()
        for word in text.flatMap(normalised) where !seenWords.contains(word) {
            let own = (1...min(word.count, longestPrefix)).map { String(word.prefix($0)) }
                .filter { !seenPrefixes.contains($0) }
            guard prefixes.count + own.count <= maximumPrefixes else { break }
            seenWords.insert(word)
            words.append(word)
            seenPrefixes.formUnion(own)
            prefixes += own
        }
        return (words, prefixes)
    }

    /// The stored prefix a query word is looked up by.
    static func lookup(_ word: String) -> String { String(word.prefix(longestPrefix)) }
}
