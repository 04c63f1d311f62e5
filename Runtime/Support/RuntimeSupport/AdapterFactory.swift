import Foundation

/// How an adapter target is built from configuration. Each adapter declares the variables it
/// reads and is given those alone (``build(from:)``), so no adapter reads another's settings.
///
/// The host picks a factory by the `*_BACKEND` variable of the port and runs the adapter's
/// ``BuiltAdapter/background`` work beside the server.
public protocol AdapterFactory {
    /// What the factory builds: the adapter, as the port (or ports) it implements.
    associatedtype Adapter: Sendable
    /// The configuration variables this adapter reads; the only ones it is given.
    static var variables: Set<String> { get }
    /// Builds the adapter from its own variables.
    /// - Parameter variables: The process's variables, restricted to ``variables``.
    /// - Returns: The adapter and the work it needs run.
    /// - Throws: ``ConfigurationError`` for an invalid variable, or the backend's error when it
    ///   cannot be opened.
    static func make(scoped variables: EnvironmentVariables) throws -> BuiltAdapter<Adapter>
}

extension AdapterFactory {
    /// Builds the adapter from the process's variables, given only those it declares.
    /// - Parameter variables: Every variable of the process.
    /// - Returns: The adapter and the work it needs run.
    /// - Throws: What ``make(scoped:)`` throws.
    public static func build(from variables: EnvironmentVariables) throws -> BuiltAdapter<Adapter> {
        try make(scoped: variables.restricted(to: Self.variables))
    }
}

/// What an ``AdapterFactory`` built: the adapter, and the work it needs run beside the server
/// for as long as the process serves (a connection pool's loop, a relay).
public struct BuiltAdapter<Adapter: Sendable>: Sendable {
    /// The adapter.
    public let adapter: Adapter
    /// Work the host starts with the server and cancels at shutdown.
    public let background: [BackgroundWork]

    /// Describes what was built.
    /// - Parameters:
    ///   - adapter: The adapter.
    ///   - background: The work it needs run; none by default.
    public init(_ adapter: Adapter, background: [BackgroundWork] = []) {
        self.adapter = adapter
        self.background = background
    }

    /// The same build, the adapter seen as another type (the port the host wants).
    /// - Parameter view: From the adapter to the port.
    /// - Returns: The build with the port.
    public func map<Port: Sendable>(_ view: (Adapter) -> Port) -> BuiltAdapter<Port> {
        BuiltAdapter<Port>(view(adapter), background: background)
    }
}

/// Work an adapter needs run beside the server: started with it, cancelled at shutdown.
public struct BackgroundWork: Sendable {
    /// What the work is, for logs.
    public let name: String
    /// The work; it runs until cancelled (or fails, which stops the process).
    public let run: @Sendable () async throws -> Void

    /// Describes the work.
    /// - Parameters:
    ///   - name: What it is, for logs.
    ///   - run: The work.
    public init(name: String, run: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.run = run
    }
}

/// Where the embedded backends keep their files: `DATA_DIR` (default `./data`), the SQLite file
/// `DATABASE_PATH` (default `$DATA_DIR/imagedb.sqlite`) and the blobs' folder `BLOB_DIR`
/// (default `$DATA_DIR/blobs`).
public struct EmbeddedDataPaths: Sendable, Equatable {
    /// The variables these paths are read from.
    public static let variables: Set<String> = ["DATA_DIR", "DATABASE_PATH", "BLOB_DIR"]

    /// `DATA_DIR`.
    public let dataDirectory: String
    /// `DATABASE_PATH`.
    public let database: String
    /// `BLOB_DIR`.
    public let blobs: String

    /// Derives the paths from values.
    /// - Parameters:
    ///   - dataDirectory: `DATA_DIR`.
    ///   - database: `DATABASE_PATH`, when set.
    ///   - blobs: `BLOB_DIR`, when set.
    public init(dataDirectory: String = "./data", database: String? = nil, blobs: String? = nil) {
        self.dataDirectory = dataDirectory
        self.database = database ?? (dataDirectory as NSString).appendingPathComponent("imagedb.sqlite")
        self.blobs = blobs ?? (dataDirectory as NSString).appendingPathComponent("blobs")
    }

    /// Reads the paths.
    /// - Parameter variables: The variables (the three above are enough).
    public init(_ variables: EnvironmentVariables) {
        self.init(
            dataDirectory: variables["DATA_DIR"] ?? "./data", database: variables["DATABASE_PATH"],
            blobs: variables["BLOB_DIR"])
    }
}
