import Foundation
import RuntimeSupport

/// A message that could not be processed, kept with its last error. Only the first
/// ``maximumStoredBytes`` of the payload are kept, so bad messages cannot fill the store.
public struct DeadLetter: Sendable, Equatable {
    /// The most payload bytes kept.
    public static let maximumStoredBytes = 4096
    /// The longest error text kept.
    public static let maximumErrorLength = 2000

    /// The Pub/Sub message id.
    public var messageID: String
    /// The topic it was published on.
    public var topic: String
    /// The payload.
    public var data: Data
    /// How many deliveries were tried.
    public var attempts: Int
    /// The last error.
    public var lastError: String
    /// Who gave up: `handler` (the function acknowledged after its last attempt) or `delivery`
    /// (the push endpoint kept failing).
    public var source: String
    /// When it was dead-lettered.
    public var deadAt: Date
    /// The team the message concerns, read from the whole payload when the entry is made (an
    /// image-processing message names it); `nil` for a payload that names none. Listings are by team.
    public var teamID: TeamID?

    /// Creates an entry.
    /// - Parameter teamID: The team, when known; otherwise read from `data`.
    public init(
        messageID: String, topic: String, data: Data, attempts: Int, lastError: String, source: String, deadAt: Date,
        teamID: TeamID? = nil
    ) {
        self.teamID = teamID ?? Self.team(of: data, topic: topic)
        self.messageID = String(messageID.prefix(200))
        self.topic = topic
        self.data = data.prefix(Self.maximumStoredBytes)
        self.attempts = attempts
        self.lastError = String(lastError.prefix(Self.maximumErrorLength))
        self.source = source
        self.deadAt = deadAt
    }
}

extension DeadLetter {
    /// The team an image-processing payload names, or `nil`.
    static func team(of data: Data, topic: String) -> TeamID? {
        guard topic == ImageProcessingRequest.topic else { return nil }
        return (try? JSONCoding.makeDecoder().decode(ImageProcessingRequest.self, from: data))?.teamID
    }
}

/// Where messages that will not be retried again are kept.
public protocol DeadLetterQueue: Sendable {
    /// Adds an entry (one per message id; a second add replaces the first).
    func deadLetter(_ letter: DeadLetter) async throws
    /// A page of one team's entries, oldest first (then by message id), and how many it has.
    func deadLetters(teamID: TeamID, _ page: PageRequest) async throws -> Page<DeadLetter>
    /// One entry, by message id.
    func deadLetter(messageID: String) async throws -> DeadLetter?
    /// Removes an entry (once replayed); `false` when there was none.
    func removeDeadLetter(messageID: String) async throws -> Bool
}
