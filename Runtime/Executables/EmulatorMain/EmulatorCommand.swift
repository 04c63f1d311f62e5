import ArgumentParser
import Emulator
import Foundation
import FunctionHosting
import ImageAPICore
import ImageHosting
import Logging
import RuntimeSupport

/// `emulator`: serves every function on one port with embedded storage, or bootstraps an admin.
@main
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "The local function emulator of the Image Management API.",
        subcommands: [Serve.self, BootstrapAdmin.self, Embed.self, Backup.self, Restore.self],
        defaultSubcommand: Serve.self)
}

/// `emulator serve` (the default): every function on `$PORT`, with `/docs` and `/openapi.json`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve every function on one port (configuration from the environment and .env).")

    func run() async throws {
        let configuration = HostConfiguration.loadOrExit(loopbackInDevelopment: true)
        let settings = configuration.settings
        await ImageHost.main(
            configuration: configuration,
            relaysOutbox: true,
            localDelivery: .ownEventRoute(configuration),
            preparesEmbedder: true,
            onListening: { host, port in
                let shown = host == "0.0.0.0" ? "127.0.0.1" : host
                let mode =
                    settings.environment == .development
                    ? "development (team, user and key-creation endpoints are public)"
                    : "production (management endpoints need an admin key)"
                let banner = """
                    Image API emulator listening on http://\(shown):\(port)
                      docs:       http://\(shown):\(port)/docs
                    \(Self.backends(configuration))
                      management: \(mode)

                    """
                FileHandle.standardOutput.write(Data(banner.utf8))
            },
            Emulator.functions)
    }
}

extension Serve {
    /// The banner's lines for the backends chosen, with the files of the embedded ones.
    static func backends(_ configuration: HostConfiguration) -> String {
        let chosen = configuration.backends
        let paths = EmbeddedDataPaths(configuration.variables)
        func file(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        let metadata = chosen.metadata == .sqlite ? "sqlite (\(file(paths.database)))" : chosen.metadata.rawValue
        let blobs = chosen.blobs == .filesystem ? "filesystem (\(file(paths.blobs)))" : chosen.blobs.rawValue
        let vectors =
            chosen.vectors == .embedded
            ? "embedded (\(chosen.metadata == .sqlite ? "in the metadata file" : file(paths.database)))"
            : chosen.vectors.rawValue
        return """
              metadata:   \(metadata)
              blobs:      \(blobs)
              vectors:    \(vectors)
              events:     \(chosen.events.rawValue)
            """
    }
}

/// `emulator bootstrap-admin`: creates an administrator (and their team) if needed and prints a
/// new admin key once.
struct BootstrapAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap-admin",
        abstract: "Create an administrator and print a new admin API key (shown once).")

    @Option(help: "The administrator's e-mail; an existing admin gets a new key.")
    var email: String

    @Option(help: "The administrator's name, for a new user.")
    var name = "Administrator"

    @Option(help: "The team a new administrator is put in.")
    var team = "Administrators"

    func validate() throws {
        guard EmailAddress.isValid(EmailAddress.normalised(email)) else {
            throw ValidationError("--email must be an e-mail address")
        }
    }

    func run() async throws {
        let configuration = HostConfiguration.loadOrExit()
        guard configuration.backends.metadata != .memory else {
            FileHandle.standardError.write(
                Data(
                    """
                    error: METADATA_BACKEND=memory keeps nothing after this command ends; set BOOTSTRAP_ADMIN_KEY for the emulator instead

                    """.utf8))
            throw ExitCode(78)
        }
        let services = APIServices(
            store: try FunctionHost.openStore(configuration).adapter, settings: configuration.settings)
        let (user, key) = try await AdministratorBootstrap(services: services)
            .createAdministratorKey(email: email, name: name, teamName: team)
        print(
            """
            Administrator: \(user.email) (user \(user.id.lowercasedString), team \(user.teamID.lowercasedString))
            API key (shown once, store it now): \(key.key ?? "")
            """)
    }
}

/// `emulator embed --text TEXT | --image FILE`: prints the configured embedder's normalised
/// embedding as JSON, for debugging and scripting.
struct Embed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the embedding of a text or an image file as JSON (model id, dimensions, vector).")

    @Option(help: "A text to embed (needs a text-capable embedder such as CLIP).")
    var text: String?

    @Option(help: "An image file to embed.")
    var image: String?

    func validate() throws {
        guard (text == nil) != (image == nil) else { throw ValidationError("give exactly one of --text or --image") }
    }

    func run() async throws {
        let configuration = HostConfiguration.loadOrExit()
        var logger = Logger(label: "embed")
        logger.logLevel = .warning
        let embedder: any Embedder
        do {
            embedder = try ImageHost.makeEmbedder(
                configuration.images, variables: configuration.variables, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(78)
        }
        if text != nil, !embedder.supportsText {
            FileHandle.standardError.write(
                Data(
                    """
                    error: the \(embedder.modelID) embedder cannot embed text. For text embeddings, fetch the CLIP \
                    model (make model) into CLIP_MODEL_DIR, or set EMBEDDING_PROVIDER=vertex.

                    """.utf8))
            throw ExitCode(78)
        }
        let vector: [Float]
        do {
            if let text {
                vector = try await embedder.embed(text: text)
            } else {
                let path = image ?? ""
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("cannot read \(path)")
                }
                vector = try await embedder.embed(image: data)
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let output = EmbeddingOutput(
            model: embedder.modelID, dimensions: vector.count, input: text != nil ? "text" : "image", embedding: vector)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        FileHandle.standardOutput.write(try encoder.encode(output) + Data("\n".utf8))
    }
}

/// What `emulator embed` prints.
struct EmbeddingOutput: Encodable {
    let model: String
    let dimensions: Int
    let input: String
    let embedding: [Float]
}

/// Runs a backup or restore, saying a refusal in one line on standard error, with exit status 1.
/// - Parameters:
///   - command: The subcommand's name, which starts the line.
///   - work: The work.
func refusingInOneLine(_ command: String, _ work: () async throws -> Void) async throws {
    do {
        try await work()
    } catch let refusal as EmbeddedBackup.Refusal {
        FileHandle.standardError.write(Data("\(command): \(refusal.description)\n".utf8))
        throw ExitCode(1)
    }
}

/// `emulator backup FOLDER`: a consistent backup of the data folder, taken while the emulator serves.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back the data folder up (database, vectors and the bytes they name) while the emulator serves.")

    @Argument(help: "The backup folder: new, or empty.")
    var folder: String

    func run() async throws {
        let configuration = HostConfiguration.loadOrExit()
        let started = ContinuousClock.now
        var shown = ContinuousClock.now
        try await refusingInOneLine("backup") {
            let report = try await EmbeddedBackup.backUp(configuration, into: folder) { report in
                // A progress line at most every second, not one per image.
                guard ContinuousClock.now - shown >= .seconds(1) else { return }
                shown = ContinuousClock.now
                FileHandle.standardError.write(Data("backup: \(report.images) images so far\n".utf8))
            }
            let seconds = (ContinuousClock.now - started).components.seconds
            print(
                """
                Backed up \(report.images) images (\(report.originals) originals, \(report.thumbnails) thumbnails, \
                \(report.bytes / 1_048_576) MiB) into \(folder) in \(seconds) s\
                \(report.dropped > 0 ? "; \(report.dropped) deleted while it ran were left out" : "")
                """)
        }
    }
}

/// `emulator restore FOLDER`: a backup put into an empty data folder.
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into the data folder, which must hold no data yet.")

    @Argument(help: "The backup folder (made by emulator backup).")
    var folder: String

    func run() async throws {
        let configuration = HostConfiguration.loadOrExit()
        try await refusingInOneLine("restore") {
            let report = try EmbeddedBackup.restore(from: folder, into: configuration)
            print("Restored \(report.images) images from \(folder); start the emulator on this data folder")
        }
    }
}
