import FunctionHosting
import ManageUsers

await FunctionHost.main { services in [ManageUsersFunction(services: services.api)] }
