import FunctionHosting
import FunctionsFramework
import ProcessEmbedding

await FunctionHost.main { services in
    [CloudEventEndpoint(ProcessEmbeddingFunction(api: services.api, images: services.images))]
}
