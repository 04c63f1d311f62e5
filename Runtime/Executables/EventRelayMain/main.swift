import Foundation
import FunctionHosting

// The outbox relay alone, for deployments whose functions run as separate processes without
// Pub/Sub: it delivers the outbox of the shared metadata store (METADATA_BACKEND=postgres) to
// PUBSUB_PUSH_ENDPOINT, ProcessEmbedding's replicas in turn when it names several, and serves
// /healthz and /readyz. Run one or several: their claims never take the same delivery.
let configuration = HostConfiguration.loadOrExit()
if configuration.backends.events == .local, configuration.pubSub.pushEndpoints.isEmpty {
    FileHandle.standardError.write(
        Data("PUBSUB_PUSH_ENDPOINT is required: the URL (or URLs) the event relay delivers to\n".utf8))
    exit(78)
}
await FunctionHost.main(configuration: configuration, relaysOutbox: true) { _ in [] }
