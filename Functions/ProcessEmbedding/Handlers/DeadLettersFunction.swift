import Foundation
import FunctionsFramework
import ImageAPICore
import ImageAPIHTTP

/// The dead letters of image processing, for the team's admins: `GET /api/v1/admin/dead-letters`,
/// `POST /api/v1/admin/dead-letters/{message_id}/replay` and `DELETE /api/v1/admin/dead-letters/{message_id}`. Served by the process-embedding
/// binary beside its event route, and by the emulator.
public struct DeadLettersFunction: HTTPFunction {
    /// The function's name (it is deployed within the process-embedding service).
    public let name = "dead-letters"

    private let api: APIServices
    private let service: DeadLetterService

    /// Creates the function.
    /// - Parameters:
    ///   - api: Keys and access rules.
    ///   - images: The image ports.
    public init(api: APIServices, images: ImageServices) {
        self.api = api
        self.service = DeadLetterService(letters: images.deadLetters, images: images.store)
    }

    /// Registers the three endpoints.
    /// - Parameter routes: The route table.
    public func registerEndpoints(on routes: FunctionRoutes) {
        let admins = routes.authenticated(.admin, by: api.access)
        admins.on(.get, "/api/v1/admin/dead-letters") { call, principal in try await list(call, principal) }
        admins.on(.post, "/api/v1/admin/dead-letters/{message_id}/replay", status: .accepted) { call, principal in
            try await replay(call, principal)
        }
        admins.on(.delete, "/api/v1/admin/dead-letters/{message_id}") { call, principal in
            try await discard(call, principal)
        }
    }

    func discard(_ call: FunctionRequest, _ principal: Principal) async throws -> NoContent {
        let messageID = call.context.parameters.get("message_id") ?? ""
        try await service.discard(messageID: messageID, teamID: principal.teamID)
        call.logger.notice(
            "Dead letter discarded",
            metadata: [
                "message_id": .string(messageID), "actor_key_id": .string(principal.key.id.lowercasedString),
            ])
        return NoContent()
    }

    func list(_ call: FunctionRequest, _ principal: Principal) async throws -> ListResponse<DeadLetterView> {
        let page = try PageRequest(query: call.query)
        return ListResponse("dead_letters", page: try await service.list(teamID: principal.teamID, page), request: page)
    }

    func replay(_ call: FunctionRequest, _ principal: Principal) async throws -> ImageRecord {
        let messageID = call.context.parameters.get("message_id") ?? ""
        let image = try await service.replay(messageID: messageID, teamID: principal.teamID, at: api.clock.now())
        call.logger.notice(
            "Dead letter replayed",
            metadata: [
                "message_id": .string(messageID), "image_id": .string(image.id.lowercasedString),
                "actor_key_id": .string(principal.key.id.lowercasedString),
            ])
        return image
    }
}
