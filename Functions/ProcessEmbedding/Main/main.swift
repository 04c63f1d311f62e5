import FunctionHosting
import FunctionsFramework
import ProcessEmbedding

await FunctionHost.main(preparesEmbedder: true) { services in
    [
        CloudEventEndpoint(
            ProcessEmbeddingFunction(api: services.api, images: services.images),
            authenticator: services.eventAuthenticator)
    ]
}
