import FunctionHosting
import ManageTeams

// Writes no outbox: runs no relay, needs no Pub/Sub settings.
await FunctionHost.main(relaysOutbox: false) { services in [ManageTeamsFunction(services: services.api)] }
