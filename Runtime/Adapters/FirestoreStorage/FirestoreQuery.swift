import Foundation

/// A `StructuredQuery` over one collection: filters joined by AND, an order, an offset and a
/// limit, in the REST API's JSON form.
public struct FirestoreQuery: Sendable, Equatable {
    /// A comparison of one field.
    public struct Filter: Sendable, Equatable {
        /// The operators the adapter uses.
        public enum Operator: String, Sendable {
            case equal = "EQUAL"
            case lessThan = "LESS_THAN"
            case lessThanOrEqual = "LESS_THAN_OR_EQUAL"
            case greaterThan = "GREATER_THAN"
            case greaterThanOrEqual = "GREATER_THAN_OR_EQUAL"
            case arrayContains = "ARRAY_CONTAINS"
            case arrayContainsAny = "ARRAY_CONTAINS_ANY"
            case `in` = "IN"
        }

        /// The field's path.
        public let field: String
        /// The operator.
        public let op: Operator
        /// The value compared with.
        public let value: FirestoreValue

        /// Creates a filter.
        public init(_ field: String, _ op: Operator, _ value: FirestoreValue) {
            self.field = field
            self.op = op
            self.value = value
        }
    }

    /// The collection's id.
    public var collection: String
    /// Filters, all of which must hold.
    public var filters: [Filter] = []
    /// Fields to order by, each ascending or not.
    public var orderBy: [(field: String, ascending: Bool)] = []
    /// The fields each document is read with (all of them when `nil`).
    public var fields: [String]?
    /// Results skipped.
    public var offset: Int?
    /// The most results.
    public var limit: Int?
    /// Starts after this document's path (`images/abc`): a cursor for queries ordered by
    /// `__name__` alone.
    public var startAfter: String?

    /// A query over a collection.
    /// - Parameter collection: The collection's id.
    public init(collection: String) { self.collection = collection }

    /// Whether two queries ask the same.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.collection == rhs.collection && lhs.filters == rhs.filters && lhs.offset == rhs.offset
            && lhs.limit == rhs.limit && lhs.startAfter == rhs.startAfter && lhs.fields == rhs.fields
            && lhs.orderBy.map(\.field) == rhs.orderBy.map(\.field)
            && lhs.orderBy.map(\.ascending) == rhs.orderBy.map(\.ascending)
    }

    /// The `structuredQuery` object.
    /// - Parameter database: `projects/{p}/databases/{d}`, for the cursor's document name.
    func json(database: String) -> [String: Any] {
        var query: [String: Any] = ["from": [["collectionId": collection]]]
        let comparisons: [[String: Any]] = filters.map { filter in
            [
                "fieldFilter": [
                    "field": ["fieldPath": filter.field], "op": filter.op.rawValue,
                    "value": (try? FirestoreJSON.object(filter.value)) ?? [:],
                ]
            ]
        }
        if comparisons.count == 1 {
            query["where"] = comparisons[0]
        } else if comparisons.count > 1 {
            query["where"] = ["compositeFilter": ["op": "AND", "filters": comparisons]]
        }
        if !orderBy.isEmpty {
            query["orderBy"] = orderBy.map {
                ["field": ["fieldPath": $0.field], "direction": $0.ascending ? "ASCENDING" : "DESCENDING"]
            }
        }
        if let startAfter {
            query["startAt"] = ["values": [["referenceValue": "\(database)/documents/\(startAfter)"]], "before": false]
        }
        if let fields { query["select"] = ["fields": fields.map { ["fieldPath": $0] }] }
        if let offset { query["offset"] = offset }
        if let limit { query["limit"] = limit }
        return query
    }
}

/// JSON helpers for bodies built from dictionaries around typed values.
enum FirestoreJSON {
    /// A `Codable` value as a JSON object for `JSONSerialization`.
    static func object(_ value: some Encodable) throws -> Any {
        try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value), options: [.fragmentsAllowed])
    }
}
