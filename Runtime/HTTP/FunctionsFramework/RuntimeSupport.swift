// The framework is built on the Foundation-only helpers of RuntimeSupport (environment variables,
// JSON conventions); whoever imports the framework sees them too.
@_exported import RuntimeSupport
