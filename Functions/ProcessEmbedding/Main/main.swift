import FunctionsFramework
import ImageHosting
import ProcessEmbedding

await ImageHost.main(pushPath: "/", preparesEmbedder: true) { services, images in
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
