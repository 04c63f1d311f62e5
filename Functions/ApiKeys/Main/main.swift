import ApiKeys
import FunctionHosting

// Writes no outbox: runs no relay, needs no Pub/Sub settings.
await FunctionHost.main(relaysOutbox: false) { services in [ApiKeysFunction(services: services.api)] }
