import Foundation
import FunctionsFramework
import ImageAPICore
import ImageAPIHTTP

/// The ManageTeams function: create, list, read, update and delete teams under `/api/v1/teams`.
///
/// Public in development; an admin key is required in production.
public struct ManageTeamsFunction: HTTPFunction {
    /// The deployed service name.
    public let name = "manage-teams"
    private let services: APIServices

    /// Creates the function.
    /// - Parameter services: The store, settings and access rules.
    public init(services: APIServices) {
        self.services = services
    }

    /// Registers the team endpoints.
    /// - Parameter routes: The route table.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let management = routes.management(by: services.access)
        management.on(.post, "/api/v1/teams", status: .created, body: CreateTeamRequest.self, handler: createTeam)
        management.on(.get, "/api/v1/teams", handler: listTeams)
        management.on(.get, "/api/v1/teams/{team_id}", handler: getTeam)
        management.on(.put, "/api/v1/teams/{team_id}", body: UpdateTeamRequest.self, handler: updateTeam)
        management.on(.delete, "/api/v1/teams/{team_id}", handler: deleteTeam)
    }

    @Sendable func createTeam(
        _ input: CreateTeamRequest, _ call: FunctionRequest, _ admin: Principal?
    ) async throws -> Team {
        var rules = InputRules()
        let name = rules.name(input.name)
        let description = rules.description(input.description)
        try rules.check()
        let now = services.clock.now()
        let team = Team(id: TeamID(), name: name, description: description, createdAt: now, updatedAt: now)
        try await services.store.insertTeam(team)
        call.logger.info("Team created", metadata: ["team_id": .string(team.id.lowercasedString)])
        admin?.audit("create_team", team: team.id, logger: call.logger)
        return team
    }

    @Sendable func listTeams(_ call: FunctionRequest, _ admin: Principal?) async throws -> ListResponse<Team> {
        let page = try PageRequest(query: call.query)
        return ListResponse("teams", page: try await services.store.teams(page), request: page)
    }

    @Sendable func getTeam(_ call: FunctionRequest, _ admin: Principal?) async throws -> Team {
        return try await existingTeam(try call.pathID("team_id", as: TeamID.self))
    }

    @Sendable func updateTeam(
        _ input: UpdateTeamRequest, _ call: FunctionRequest, _ admin: Principal?
    ) async throws -> Team {
        var team = try await existingTeam(try call.pathID("team_id", as: TeamID.self))
        var rules = InputRules()
        if let name = input.name { team.name = rules.name(name) }
        if input.description != nil { team.description = rules.description(input.description) }
        try rules.check()
        team.updatedAt = services.clock.now()
        guard try await services.store.updateTeam(team) else { throw FunctionError.notFound("Team not found") }
        admin?.audit("update_team", team: team.id, logger: call.logger)
        return team
    }

    @Sendable func deleteTeam(_ call: FunctionRequest, _ admin: Principal?) async throws -> NoContent {
        let id = try call.pathID("team_id", as: TeamID.self)
        switch try await services.teams.delete(id: id) {
        case .deleted:
            call.logger.info("Team deleted", metadata: ["team_id": .string(id.lowercasedString)])
            admin?.audit("delete_team", team: id, logger: call.logger)
            return NoContent()
        case .notFound:
            throw FunctionError.notFound("Team not found")
        case .inUse:
            throw FunctionError.conflict("Team still has users or images; remove them first")
        }
    }

    private func existingTeam(_ id: TeamID) async throws -> Team {
        guard let team = try await services.store.team(id: id) else { throw FunctionError.notFound("Team not found") }
        return team
    }
}

/// The body of `POST /api/v1/teams`.
public struct CreateTeamRequest: Decodable, Sendable {
    /// The team's name (1–100 characters).
    public let name: String
    /// An optional description (up to 1000 characters).
    public let description: String?
}

/// The body of `PUT /api/v1/teams/{team_id}`: only the fields given change.
public struct UpdateTeamRequest: Decodable, Sendable {
    /// A new name.
    public let name: String?
    /// A new description; an empty string clears it.
    public let description: String?
}
