import Foundation
import FunctionsFramework
import HTTPTypes
import ImageAPICore
import ImageAPIHTTP

/// The ApiKeys function: create, list, revoke and verify API keys under `/api/v1/auth`.
///
/// Creating a key for a user is a management call (public in development, admin key in
/// production). Listing, revoking and verifying always need a key: a caller sees and revokes
/// their own keys; an administrator manages the keys of every team (`?user_id=` to list another
/// user's), each such action on another team logged as an audit line.
public struct ApiKeysFunction: HTTPFunction {
    /// The deployed service name.
    public let name = "api-keys"
    private let services: APIServices

    /// Creates the function.
    /// - Parameter services: The store, settings and access rules.
    public init(services: APIServices) {
        self.services = services
    }

    /// Registers the key endpoints.
    /// - Parameter routes: The route table.
    public func registerEndpoints(on routes: FunctionRoutes) {
        // The answer holds the key's secret, shown once: no cache may keep it.
        let secret: HTTPFields = [.cacheControl: "no-store"]
        let keyHolders = routes.authenticated(.key, by: services.access)
        routes.management(by: services.access).on(
            .post, "/api/v1/auth/api-keys", status: .created, headers: secret, body: CreateKeyRequest.self,
            handler: createKey)
        keyHolders.on(.get, "/api/v1/auth/api-keys", handler: listKeys)
        keyHolders.on(.delete, "/api/v1/auth/api-keys/{key_id}", handler: revokeKey)
        routes.authenticated(.admin, by: services.access).on(
            .post, "/api/v1/auth/admin/api-keys/{user_id}", status: .created, headers: secret,
            body: CreateKeyRequest.self, handler: createKeyAsAdmin)
        keyHolders.on(.get, "/api/v1/auth/verify", handler: verify)
    }

    @Sendable func createKey(
        _ input: CreateKeyRequest, _ call: FunctionRequest, _ admin: Principal?
    ) async throws -> APIKeyView {
        let userID = try call.query.requiredID("user_id", as: UserID.self)
        let teamID = try call.query.requiredID("team_id", as: TeamID.self)
        guard try await services.store.team(id: teamID) != nil else { throw FunctionError.notFound("Team not found") }
        guard let user = try await services.store.user(id: userID), user.teamID == teamID else {
            throw FunctionError.notFound("User not found in this team")
        }
        let view = try await issue(input, for: user, call)
        admin?.audit(
            "create_api_key", team: teamID, targets: ["user_id": userID, "key_id": view.id], reachesTeamData: true,
            logger: call.logger)
        return view
    }

    @Sendable func createKeyAsAdmin(
        _ input: CreateKeyRequest, _ call: FunctionRequest, _ admin: Principal
    ) async throws -> APIKeyView {
        let userID = try call.pathID("user_id", as: UserID.self)
        guard let user = try await services.store.user(id: userID) else {
            throw FunctionError.notFound("User not found")
        }
        call.logger.info(
            "Admin created a key for a user",
            metadata: [
                "admin_id": .string(admin.user.id.lowercasedString), "user_id": .string(userID.lowercasedString),
            ])
        let view = try await issue(input, for: user, call)
        admin.audit(
            "create_api_key", team: user.teamID, targets: ["user_id": userID, "key_id": view.id],
            reachesTeamData: true, logger: call.logger)
        return view
    }

    @Sendable func listKeys(_ call: FunctionRequest, _ principal: Principal) async throws -> ListResponse<APIKeyView> {
        let page = try PageRequest(query: call.query)
        var owner = principal.user
        if let requested = try call.query.id("user_id", as: UserID.self), requested != principal.user.id {
            guard principal.isAdmin else {
                throw FunctionError.forbidden("Admin privileges required to list another user's keys")
            }
            guard let user = try await services.store.user(id: requested) else {
                throw FunctionError.notFound("User not found")
            }
            owner = user
            principal.audit("list_api_keys", team: user.teamID, targets: ["user_id": user.id], logger: call.logger)
        }
        let keys = try await services.store.apiKeys(userID: owner.id, page)
        return ListResponse("api_keys", page: keys, request: page) { APIKeyView($0) }
    }

    @Sendable func revokeKey(_ call: FunctionRequest, _ principal: Principal) async throws -> NoContent {
        let id = try call.pathID("key_id", as: APIKeyID.self)
        guard let key = try await services.store.apiKey(id: id), key.userID == principal.user.id || principal.isAdmin
        else {
            throw FunctionError.notFound("API key not found")
        }
        guard try await services.store.revokeAPIKey(id: id) else { throw FunctionError.notFound("API key not found") }
        call.logger.info("API key revoked", metadata: ["key_id": .string(id.lowercasedString)])
        principal.audit(
            "revoke_api_key", team: key.teamID, targets: ["key_id": id, "user_id": key.userID], logger: call.logger)
        return NoContent()
    }

    @Sendable func verify(_ call: FunctionRequest, _ principal: Principal) async throws -> KeyVerification {
        KeyVerification(principal)
    }

    private func issue(_ input: CreateKeyRequest, for user: User, _ call: FunctionRequest) async throws -> APIKeyView {
        var rules = InputRules()
        let name = rules.name(input.name)
        let description = rules.description(input.description)
        try rules.check()
        guard user.isActive else { throw FunctionError.conflict("User is deactivated") }
        do {
            let view = try await services.keys.issueKey(for: user, name: name, description: description)
            call.logger.info("API key created", metadata: ["key_id": .string(view.id.lowercasedString)])
            return view
        } catch let error as MetadataStoreError where error == .userNotFound {
            throw FunctionError.notFound("User not found")
        }
    }
}

/// The body of the key-creation endpoints.
public struct CreateKeyRequest: Decodable, Sendable {
    /// A name for the key (1–100 characters).
    public let name: String
    /// An optional description.
    public let description: String?
}

/// The answer of `GET /api/v1/auth/verify`: who the key belongs to.
public struct KeyVerification: Encodable, Sendable, EncodesEveryField {
    /// The key's owner.
    public let userID: UserID
    /// The owner's team.
    public let teamID: TeamID
    /// Whether the owner is an administrator.
    public let isAdmin: Bool
    /// The key's id.
    public let keyID: APIKeyID
    /// When the key expires.
    public let expiresAt: Date

    init(_ principal: Principal) {
        userID = principal.user.id
        teamID = principal.teamID
        isAdmin = principal.isAdmin
        keyID = principal.key.id
        expiresAt = principal.key.expiresAt
    }

    /// Writes every field (``EncodesEveryField``).
    public func encode(to encoder: any Encoder) throws {
        try encodeEveryField(to: encoder)
    }
}
