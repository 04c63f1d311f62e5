import FunctionsFramework
import ImageAPICore

extension FunctionRequest {
    /// Reads a path parameter as an identifier of one kind.
    /// - Parameters:
    ///   - name: The parameter's name in the route (`team_id`).
    ///   - kind: The identifier's type.
    /// - Returns: The identifier.
    /// - Throws: ``ValidationError`` (422) when the segment is not a UUID.
    public func pathID<ID: TypedIdentifier>(_ name: String, as kind: ID.Type = ID.self) throws -> ID {
        ID(uuid: try pathUUID(name))
    }
}

extension QueryParameters {
    /// Reads an optional query parameter as an identifier of one kind.
    /// - Parameters:
    ///   - name: The parameter's name.
    ///   - kind: The identifier's type.
    /// - Returns: The identifier, or `nil` when absent.
    /// - Throws: ``ValidationError`` (422) when present but not a UUID.
    public func id<ID: TypedIdentifier>(_ name: String, as kind: ID.Type = ID.self) throws -> ID? {
        try uuid(name).map(ID.init(uuid:))
    }

    /// Reads a required query parameter as an identifier of one kind.
    /// - Parameters:
    ///   - name: The parameter's name.
    ///   - kind: The identifier's type.
    /// - Returns: The identifier.
    /// - Throws: ``ValidationError`` (422) when absent or not a UUID.
    public func requiredID<ID: TypedIdentifier>(_ name: String, as kind: ID.Type = ID.self) throws -> ID {
        ID(uuid: try requiredUUID(name))
    }
}
