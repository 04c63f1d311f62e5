import FunctionsFramework
import ImageHosting
import ProcessEmbedding

await ImageHost.main(preparesEmbedder: true) { services, images in
    [
        CloudEventEndpoint(
            ProcessEmbeddingFunction(api: services.api, images: images),
            authenticator: services.eventAuthenticator),
        DeadLettersFunction(api: services.api, images: images),
    ]
}
