import ImageHosting
import Search

// The embedder is loaded and warmed before the server listens, so that the first semantic query
// after a start pays no model load.
// Writes no outbox: runs no relay.
await ImageHost.main(relaysOutbox: false, preparesEmbedder: true) { services, images in
    [SearchFunction(api: services.api, images: images)]
}
