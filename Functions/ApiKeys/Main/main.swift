import ApiKeys
import FunctionHosting

await FunctionHost.main { services in [ApiKeysFunction(services: services.api)] }
