import Foundation
import FunctionHosting
import FunctionsFramework
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ImageAPICore
import Locking
import Logging
import MemoryStorage
import Testing

/// `POST /internal/outbox/relay`, the endpoint Cloud Scheduler calls on Cloud Run.
@Suite("Outbox relay endpoint")
struct OutboxRelayEndpointTests {
    /// Records what it publishes.
    final class RecordingPublisher: EventPublisher {
        let published = Locked<[String]>([])
        var isReady: Bool { true }
        func publish(_ queued: QueuedMessage) async throws {
            published.withLock { $0.append(queued.message.messageID) }
        }
    }

    @Test("publishes every due outbox message once, for the holder of the push token alone")
    func relaysOnRequest() async throws {
        let store = MemoryMetadataStore()
        let team = Team(id: TeamID(), name: "T", description: nil, createdAt: Date(), updatedAt: Date())
        try await store.insertTeam(team)
        var messages: [String] = []
        for number in 0..<5 {
            let image = ImageRecord(
                id: ImageID(), teamID: team.id, uploaderID: UserID(), collectionID: nil, filename: "\(number).jpg",
                contentType: "image/jpeg", format: "jpeg", fileSize: 10, width: 1, height: 1, orientation: nil,
                sha256: String(number), description: nil, tags: [], exif: [:], createdAt: Date())
            let message = OutboxMessage.processing(
                ImageProcessingRequest(imageID: image.id, teamID: team.id, reason: "upload"))
            messages.append(message.messageID)
            try await store.insertImage(image, publishing: message, allowDuplicate: false)
        }
        let expected = messages.sorted()
        let publisher = RecordingPublisher()
        let relay = OutboxRelay(
            queue: store, settings: LocalPubSubSettings(), publisher: publisher, logger: Logger(label: "test"))
        let endpoint = OutboxRelayEndpoint(
            relay: relay, authenticator: SharedPushTokenAuthenticator(token: "scheduler-token-0123456789"))
        let (router, _) = FunctionServer.buildRouter(
            functions: [endpoint], configuration: ServerConfiguration(), readiness: {})
        try await Application(router: router).test(.router) { client in
            let stranger = try await client.execute(uri: OutboxRelayEndpoint.path, method: .post)
            #expect(stranger.status == .unauthorized)
            #expect(publisher.published.withLock { $0.isEmpty })

            let headers: HTTPFields = [.authorization: "Bearer scheduler-token-0123456789"]
            let first = try await client.execute(uri: OutboxRelayEndpoint.path, method: .post, headers: headers)
            #expect(first.status == .ok)
            let report = try JSONDecoder().decode(OutboxRelayEndpoint.Report.self, from: Data(buffer: first.body))
            #expect(report.attempted == 5)
            #expect(publisher.published.withLock { $0.sorted() } == expected)
            let again = try await client.execute(uri: OutboxRelayEndpoint.path, method: .post, headers: headers)
            let nothing = try JSONDecoder().decode(OutboxRelayEndpoint.Report.self, from: Data(buffer: again.body))
            #expect(nothing.attempted == 0 && publisher.published.withLock { $0.count } == 5)
        }
    }
}
