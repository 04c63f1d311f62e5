import FunctionHosting
import Search

await FunctionHost.main { services in [SearchFunction(api: services.api, images: services.images)] }
