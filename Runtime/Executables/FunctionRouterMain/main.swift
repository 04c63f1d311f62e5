import FunctionRouter

await FunctionRouterHost.main()
