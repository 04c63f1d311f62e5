/// Which slice of a listing to return: `skip` (≥ 0, default 0) and `limit` (1–100, default 50).
public struct PageRequest: Sendable, Equatable {
    /// The largest `limit` accepted.
    public static let maximumLimit = 100
    /// The `limit` when none is given.
    public static let defaultLimit = 50

    /// How many items to skip.
    public let skip: Int
    /// How many items to return at most.
    public let limit: Int

    /// Creates a page request.
    /// - Parameters:
    ///   - skip: Items to skip.
    ///   - limit: Items to return at most.
    public init(skip: Int = 0, limit: Int = defaultLimit) {
        self.skip = skip
        self.limit = limit
    }
}

/// One page of a listing and the size of the whole listing.
public struct Page<Item: Sendable>: Sendable {
    /// The items on this page.
    public let items: [Item]
    /// How many items the whole listing holds.
    public let total: Int

    /// Creates a page.
    /// - Parameters:
    ///   - items: The items on this page.
    ///   - total: The size of the whole listing.
    public init(items: [Item], total: Int) {
        self.items = items
        self.total = total
    }
}

/// A listing answer: `{"<items name>": [...], "total": n, "skip": n, "limit": n}`.
public struct ListResponse<Item: Encodable & Sendable>: Encodable, Sendable {
    /// The JSON name of the items array (`teams`, `users`, `api_keys`).
    public let itemsName: String
    /// The items on this page.
    public let items: [Item]
    /// How many items the whole listing holds.
    public let total: Int
    /// The `skip` that was applied.
    public let skip: Int
    /// The `limit` that was applied.
    public let limit: Int

    /// Creates a listing answer.
    /// - Parameters:
    ///   - itemsName: The JSON name of the items array.
    ///   - page: The page read from the store.
    ///   - request: The page that was asked for.
    public init<Stored: Sendable>(
        _ itemsName: String, page: Page<Stored>, request: PageRequest, transform: (Stored) -> Item
    ) {
        self.itemsName = itemsName
        self.items = page.items.map(transform)
        self.total = page.total
        self.skip = request.skip
        self.limit = request.limit
    }

    /// Writes the listing.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(items, forKey: FieldKey(itemsName))
        try container.encode(total, forKey: FieldKey("total"))
        try container.encode(skip, forKey: FieldKey("skip"))
        try container.encode(limit, forKey: FieldKey("limit"))
    }
}

extension ListResponse {
    /// Creates a listing answer for items shown as stored.
    /// - Parameters:
    ///   - itemsName: The JSON name of the items array.
    ///   - page: The page read from the store.
    ///   - request: The page that was asked for.
    public init(_ itemsName: String, page: Page<Item>, request: PageRequest) {
        self.init(itemsName, page: page, request: request) { $0 }
    }
}
