import Foundation
import FunctionsFramework
import ImageAPICore
import ImageAPIHTTP

/// The ManageUsers function: users under `/api/v1/users`, and the caller's own profile at
/// `/api/v1/users/me`.
///
/// Public in development; in production an admin key is required, except for `/users/me`,
/// which any valid key may use for its own user.
public struct ManageUsersFunction: HTTPFunction {
    /// The deployed service name.
    public let name = "manage-users"
    private let services: APIServices

    /// Creates the function.
    /// - Parameter services: The store, settings and access rules.
    public init(services: APIServices) {
        self.services = services
    }

    /// Registers the user endpoints.
    /// - Parameter routes: The route table.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let management = routes.management(by: services.access)
        management.on(.post, "/api/v1/users", status: .created, body: CreateUserRequest.self, handler: createUser)
        management.on(.get, "/api/v1/users", handler: listUsers)
        // `/users/me` decides itself: a key in production; in development a key or a user_id.
        routes.on(.get, "/api/v1/users/me", handler: getMe)
        routes.on(.put, "/api/v1/users/me", handler: updateMe)
        management.on(.get, "/api/v1/users/{user_id}", handler: getUser)
        management.on(.put, "/api/v1/users/{user_id}", body: UpdateUserRequest.self, handler: updateUser)
        management.on(.delete, "/api/v1/users/{user_id}", handler: deleteUser)
    }

    @Sendable func createUser(
        _ input: CreateUserRequest, _ call: FunctionRequest, _ admin: Principal?
    ) async throws -> User {
        var rules = InputRules()
        let email = rules.email(input.email)
        let name = rules.name(input.name)
        try rules.check()
        let now = services.clock.now()
        let user = User(
            id: UserID(), email: email, name: name, teamID: input.teamID, isAdmin: input.isAdmin ?? false,
            isActive: true, createdAt: now, updatedAt: now)
        try await storeWrite { try await services.users.create(user) }
        call.logger.info("User created", metadata: ["user_id": .string(user.id.lowercasedString)])
        admin?.audit("create_user", team: user.teamID, targets: ["user_id": user.id], logger: call.logger)
        return user
    }

    @Sendable func listUsers(_ call: FunctionRequest, _ admin: Principal?) async throws -> ListResponse<User> {
        let page = try PageRequest(query: call.query)
        let teamID = try call.query.id("team_id", as: TeamID.self)
        return ListResponse("users", page: try await services.store.users(teamID: teamID, page), request: page)
    }

    @Sendable func getUser(_ call: FunctionRequest, _ admin: Principal?) async throws -> User {
        return try await existingUser(try call.pathID("user_id", as: UserID.self))
    }

    @Sendable func updateUser(
        _ input: UpdateUserRequest, _ call: FunctionRequest, _ admin: Principal?
    ) async throws -> User {
        var user = try await existingUser(try call.pathID("user_id", as: UserID.self))
        let formerTeam = user.teamID
        var rules = InputRules()
        if let email = input.email { user.email = rules.email(email) }
        if let name = input.name { user.name = rules.name(name) }
        try rules.check()
        if let teamID = input.teamID { user.teamID = teamID }
        if let isAdmin = input.isAdmin { user.isAdmin = isAdmin }
        if let isActive = input.isActive { user.isActive = isActive }
        user.updatedAt = services.clock.now()
        let found = try await storeWrite { try await services.users.update(user) }
        guard found else { throw FunctionError.notFound("User not found") }
        for team in Set([formerTeam, user.teamID]) {
            admin?.audit("update_user", team: team, targets: ["user_id": user.id], logger: call.logger)
        }
        return user
    }

    @Sendable func deleteUser(_ call: FunctionRequest, _ admin: Principal?) async throws -> NoContent {
        let id = try call.pathID("user_id", as: UserID.self)
        let user = try await existingUser(id)
        guard try await services.users.delete(id: id) else { throw FunctionError.notFound("User not found") }
        call.logger.info("User deleted and their API keys revoked", metadata: ["user_id": .string(id.lowercasedString)])
        admin?.audit("delete_user", team: user.teamID, targets: ["user_id": id], logger: call.logger)
        return NoContent()
    }

    @Sendable func getMe(_ call: FunctionRequest) async throws -> User {
        try await currentUser(call)
    }

    @Sendable func updateMe(_ call: FunctionRequest) async throws -> User {
        // The caller is identified before the body is read.
        var user = try await currentUser(call)
        let input = try await call.decodeBody(UpdateMeRequest.self)
        var rules = InputRules()
        if let email = input.email { user.email = rules.email(email) }
        if let name = input.name { user.name = rules.name(name) }
        try rules.check()
        user.updatedAt = services.clock.now()
        let found = try await storeWrite { try await services.users.update(user) }
        guard found else { throw FunctionError.notFound("User not found") }
        return user
    }

    /// The user `/users/me` refers to: in production the key's owner (a `user_id` query, if
    /// given, must name that same user); in development the `user_id` query, or the key's owner
    /// when a key is sent instead.
    private func currentUser(_ call: FunctionRequest) async throws -> User {
        let requested = try call.query.id("user_id", as: UserID.self)
        let presentsKey = try Caller.presentedKey(in: call.headers) != nil
        if services.settings.environment == .production || (requested == nil && presentsKey) {
            let principal = try await services.access.authenticate(call)
            if let requested, requested != principal.user.id {
                throw FunctionError.forbidden("user_id must be the key owner's own id")
            }
            return principal.user
        }
        guard let requested else {
            throw ValidationError(loc: ["query", "user_id"], msg: "Field required", type: "missing")
        }
        return try await existingUser(requested)
    }

    private func existingUser(_ id: UserID) async throws -> User {
        guard let user = try await services.store.user(id: id) else { throw FunctionError.notFound("User not found") }
        return user
    }

    /// Runs a store write, turning its refusals into 404 and 409 answers.
    private func storeWrite<T>(_ write: () async throws -> T) async throws -> T {
        do {
            return try await write()
        } catch let error as MetadataStoreError {
            switch error {
            case .emailTaken: throw FunctionError.conflict("A user with this email already exists")
            case .teamNotFound: throw FunctionError.notFound("Team not found")
            default: throw FunctionError.notFound("User not found")
            }
        }
    }
}

/// The body of `POST /api/v1/users`.
public struct CreateUserRequest: Decodable, Sendable {
    /// The e-mail address; unique, compared without case.
    public let email: String
    /// The display name.
    public let name: String
    /// The team the user joins.
    public let teamID: TeamID
    /// Whether the user is an administrator (default `false`).
    public let isAdmin: Bool?

    enum CodingKeys: String, CodingKey {
        case email, name
        case teamID = "team_id"
        case isAdmin = "is_admin"
    }
}

/// The body of `PUT /api/v1/users/{user_id}`: only the fields given change.
public struct UpdateUserRequest: Decodable, Sendable {
    /// A new e-mail address.
    public let email: String?
    /// A new display name.
    public let name: String?
    /// A new team; the user's keys move with them.
    public let teamID: TeamID?
    /// A new admin flag.
    public let isAdmin: Bool?
    /// A new active flag; a deactivated user's keys are refused.
    public let isActive: Bool?

    enum CodingKeys: String, CodingKey {
        case email, name
        case teamID = "team_id"
        case isAdmin = "is_admin"
        case isActive = "is_active"
    }
}

/// The body of `PUT /api/v1/users/me`: a user may change their own name and e-mail only.
public struct UpdateMeRequest: Decodable, Sendable {
    /// A new e-mail address.
    public let email: String?
    /// A new display name.
    public let name: String?
}
