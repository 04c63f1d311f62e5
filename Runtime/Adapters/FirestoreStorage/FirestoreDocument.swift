import Foundation

/// A Firestore document as the REST API has it: its resource name, fields and times.
public struct FirestoreDocument: Sendable, Equatable, Codable {
    /// `projects/{p}/databases/{d}/documents/{collection}/{id}`.
    public var name: String?
    /// The fields.
    public var fields: [String: FirestoreValue]
    /// When it was created (set by Firestore).
    public var createTime: Date?
    /// When it was last changed (set by Firestore).
    public var updateTime: Date?
    /// ``updateTime`` exactly as Firestore wrote it (nanoseconds kept): what a write's
    /// ``FirestoreWrite/Precondition/updatedAt(_:)`` names.
    public var updateTimeText: String?

    /// A document to write.
    /// - Parameter fields: The fields.
    public init(fields: [String: FirestoreValue]) {
        self.fields = fields
    }

    /// The last segment of the name: the document's id.
    public var id: String? { name?.split(separator: "/").last.map(String.init) }

    enum CodingKeys: String, CodingKey {
        case name, fields, createTime, updateTime
    }

    /// Reads a document (an absent `fields` is an empty document).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        fields = try container.decodeIfPresent([String: FirestoreValue].self, forKey: .fields) ?? [:]
        createTime = try container.decodeIfPresent(String.self, forKey: .createTime).flatMap(FirestoreValue.date)
        updateTimeText = try container.decodeIfPresent(String.self, forKey: .updateTime)
        updateTime = updateTimeText.flatMap(FirestoreValue.date)
    }

    /// Writes the name and fields (the times are Firestore's).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encode(fields, forKey: .fields)
    }
}

/// One write of a commit, with its precondition.
public struct FirestoreWrite: Sendable, Equatable {
    /// What the write does.
    public enum Operation: Sendable, Equatable {
        /// Sets the whole document (creating it when missing).
        case set(FirestoreDocument)
        /// Sets only these fields, keeping the others (an update with a field mask).
        case merge([String: FirestoreValue])
        /// Deletes the document (nothing when it is missing).
        case delete
    }

    /// What must hold for the write to apply; otherwise the whole commit fails.
    public enum Precondition: Sendable, Equatable {
        /// No condition.
        case none
        /// The document must exist (`true`) or must not (`false`).
        case exists(Bool)
        /// The document must be unchanged since this update time (a document's
        /// ``FirestoreDocument/updateTimeText``, as Firestore wrote it).
        case updatedAt(String)

        /// The document must be as it was when `document` was read.
        public static func unchanged(since document: FirestoreDocument) -> Self {
            document.updateTimeText.map(Self.updatedAt) ?? .exists(false)
        }
    }

    /// The document's path below the database's documents, such as `teams/abc`.
    public let path: String
    /// The operation.
    public let operation: Operation
    /// The precondition.
    public let precondition: Precondition

    /// Creates a write.
    public init(_ path: String, _ operation: Operation, precondition: Precondition = .none) {
        self.path = path
        self.operation = operation
        self.precondition = precondition
    }

    /// Creates the document; the commit fails when it exists.
    public static func create(_ path: String, _ fields: [String: FirestoreValue]) -> Self {
        .init(path, .set(FirestoreDocument(fields: fields)), precondition: .exists(false))
    }

    /// Changes some fields of an existing document; the commit fails when it is missing.
    public static func update(_ path: String, _ fields: [String: FirestoreValue]) -> Self {
        .init(path, .merge(fields), precondition: .exists(true))
    }

    /// Replaces an existing document; the commit fails when it is missing.
    public static func replace(_ path: String, _ fields: [String: FirestoreValue]) -> Self {
        .init(path, .set(FirestoreDocument(fields: fields)), precondition: .exists(true))
    }
}
