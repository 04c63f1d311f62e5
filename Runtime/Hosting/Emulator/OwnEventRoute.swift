import Foundation
import FunctionHosting
import LocalPush

extension LocalDeliveryTarget {
    /// The emulator's own event route: the local Pub/Sub pushes the outbox to this process's
    /// ProcessEmbedding route unless `PUBSUB_PUSH_ENDPOINT` says otherwise. In production it
    /// presents `PUBSUB_PUSH_TOKEN`, or else a random token made at start, so that the route
    /// stays closed to everyone but the process itself.
    /// - Parameter configuration: The process configuration.
    /// - Returns: The target.
    public static func ownEventRoute(_ configuration: HostConfiguration) -> LocalDeliveryTarget {
        var token: String?
        if configuration.settings.environment == .production, configuration.pubSub.pushEndpoints.isEmpty {
            var generator = SystemRandomNumberGenerator()
            token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        }
        return LocalDeliveryTarget(token: token) { host, port in
            let local = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
            return URL(string: "http://\(local):\(port)\(LocalPushFactory.defaultPushPath)")
        }
    }
}
