import FunctionHosting
import ManageTeams

await FunctionHost.main { services in [ManageTeamsFunction(services: services.api)] }
