import FunctionHosting
import Search

// The embedder is loaded and warmed before the server listens, so that the first semantic query
// after a start pays no model load.
await FunctionHost.main(preparesEmbedder: true) { services in
    [SearchFunction(api: services.api, images: services.images)]
}
