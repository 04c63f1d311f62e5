import FunctionHosting
import ManageUsers

// Writes no outbox: runs no relay, needs no Pub/Sub settings.
await FunctionHost.main(relaysOutbox: false) { services in [ManageUsersFunction(services: services.api)] }
