import FunctionsFramework
import ImageHosting
import ProcessEmbedding

// Dead-letter replays write the outbox: this process delivers it.
await ImageHost.main(relaysOutbox: true, pushPath: "/", preparesEmbedder: true) { services, images in
    [
        CloudEventEndpoint(
            ProcessEmbeddingFunction(api: services.api, images: images),
            authenticator: services.eventAuthenticator),
        // Eventarc's default path, and what a Pub/Sub push subscription to the service's URL hits.
        CloudEventEndpoint(
            ProcessEmbeddingFunction(api: services.api, images: images, eventPath: "/"),
            authenticator: services.eventAuthenticator),
        DeadLettersFunction(api: services.api, images: images),
    ]
}
