import Configuration
import Foundation

/// An invalid configuration variable. Startup prints ``description`` as its one line and exits.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The variable at fault.
    public let variable: String
    /// What is wrong with it.
    public let reason: String

    /// Creates an error.
    /// - Parameters:
    ///   - variable: The variable at fault.
    ///   - reason: What is wrong with it.
    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }

    /// `invalid configuration: NAME reason`.
    public var description: String { "invalid configuration: \(variable) \(reason)" }
}

/// The configuration variables of a process: its environment, over a `.env` file when present.
///
/// Values are read through swift-configuration's ``reader``: a `ConfigReader` over two providers,
/// the process environment first and the `.env` file second, so a variable set in the
/// environment wins over the file. The file itself is read by ``parseDotEnv(_:path:)``, which is
/// stricter than swift-configuration's own `.env` reading: it strips `export ` and quotes, and a
/// line that is not `NAME=value` stops the process with the line's number instead of being
/// skipped. Accessors validate and name the variable in the ``ConfigurationError`` they throw.
/// Secrets (``secretNames``) are marked as such for swift-configuration's access reporting.
public struct EnvironmentVariables: Sendable {
    /// The variables whose values are secrets: never printed by an access report.
    public static let secretNames: Set<String> = [
        "API_KEY_SECRET", "API_KEY_PREVIOUS_SECRET", "BOOTSTRAP_ADMIN_KEY", "PUBSUB_PUSH_TOKEN", "QDRANT_API_KEY",
        "DATABASE_URL",
    ]

    /// The variables set in the environment.
    private let environment: [String: String]
    /// The variables set in the `.env` file.
    private let file: [String: String]
    /// swift-configuration's reader: the environment first, then the file.
    public let reader: ConfigReader

    /// Every variable, the environment's value where both set one.
    public var values: [String: String] { file.merging(environment) { _, fromEnvironment in fromEnvironment } }

    /// Creates the variables from explicit values (tests use this).
    /// - Parameter values: Name to value.
    public init(_ values: [String: String]) {
        self.init(environment: values, file: [:])
    }

    private init(environment: [String: String], file: [String: String]) {
        self.environment = environment
        self.file = file
        let secrets = SecretsSpecifier<String, String>.specific(Self.secretNames)
        self.reader = ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets),
            EnvironmentVariablesProvider(environmentVariables: file, secretsSpecifier: secrets),
        ])
    }

    /// The same variables, only those named: what an adapter's factory is given.
    /// - Parameter names: The variables to keep.
    /// - Returns: The restricted variables.
    public func restricted(to names: Set<String>) -> EnvironmentVariables {
        EnvironmentVariables(
            environment: environment.filter { names.contains($0.key) }, file: file.filter { names.contains($0.key) })
    }

    /// Reads the process environment over the `.env` file.
    /// - Parameters:
    ///   - environment: The process environment.
    ///   - dotEnvPath: The `.env` file to read when it exists.
    /// - Throws: ``ConfigurationError`` when the file exists but a line cannot be parsed.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment, dotEnvPath: String = ".env"
    ) throws {
        var fromFile: [String: String] = [:]
        if FileManager.default.fileExists(atPath: dotEnvPath) {
            let text: String
            do {
                text = try String(contentsOfFile: dotEnvPath, encoding: .utf8)
            } catch {
                throw ConfigurationError(variable: dotEnvPath, reason: "cannot be read: \(error.localizedDescription)")
            }
            fromFile = try Self.parseDotEnv(text, path: dotEnvPath)
        }
        self.init(environment: environment, file: fromFile)
    }

    /// Parses `.env` text: `NAME=value` lines, optional `export `, `#` comments, single or double quotes.
    /// - Parameters:
    ///   - text: The file's contents.
    ///   - path: The file name, for error messages.
    /// - Returns: Name to value.
    /// - Throws: ``ConfigurationError`` naming the line that is not `NAME=value`.
    public static func parseDotEnv(_ text: String, path: String = ".env") throws -> [String: String] {
        var result: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(variable: path, reason: "line \(index + 1) is not NAME=value")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ConfigurationError(variable: path, reason: "line \(index + 1) has an invalid variable name")
            }
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if let quote = value.first, quote == "\"" || quote == "'" {
                guard value.count >= 2, value.last == quote else {
                    throw ConfigurationError(variable: path, reason: "line \(index + 1) has an unterminated quote")
                }
                value = String(value.dropFirst().dropLast())
            } else if let comment = value.range(of: " #") {
                value = value[..<comment.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            result[name] = value
        }
        return result
    }

    /// A variable's value, `nil` when unset or empty.
    /// - Parameter name: The variable.
    public subscript(name: String) -> String? {
        let key = ConfigKey([name])
        guard
            let value = reader.string(forKey: key, isSecret: Self.secretNames.contains(name))?
                .trimmingCharacters(in: .whitespaces), !value.isEmpty
        else { return nil }
        return value
    }

    /// Reads an integer variable.
    /// - Parameters:
    ///   - name: The variable.
    ///   - defaultValue: The value when unset.
    ///   - range: The accepted values.
    /// - Returns: The value.
    /// - Throws: ``ConfigurationError`` when not an integer in range.
    public func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = self[name] else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                variable: name,
                reason: "must be an integer from \(range.lowerBound) to \(range.upperBound) (got \"\(text)\")")
        }
        return value
    }

    /// Reads a decimal number variable.
    /// - Parameters:
    ///   - name: The variable.
    ///   - defaultValue: The value when unset.
    ///   - range: The accepted values.
    /// - Returns: The value.
    /// - Throws: ``ConfigurationError`` when not a number in range.
    public func number(_ name: String, default defaultValue: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let text = self[name] else { return defaultValue }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw ConfigurationError(
                variable: name,
                reason: "must be a number from \(range.lowerBound) to \(range.upperBound) (got \"\(text)\")")
        }
        return value
    }

    /// Reads a variable restricted to a set of words (compared without case).
    /// - Parameters:
    ///   - name: The variable.
    ///   - defaultValue: The value when unset.
    ///   - allowed: The accepted words, lower-case.
    /// - Returns: The lower-cased value.
    /// - Throws: ``ConfigurationError`` when the value is not one of `allowed`.
    public func choice(_ name: String, default defaultValue: String, allowed: [String]) throws -> String {
        guard let text = self[name] else { return defaultValue }
        guard allowed.contains(text.lowercased()) else {
            throw ConfigurationError(
                variable: name, reason: "must be one of \(allowed.joined(separator: ", ")) (got \"\(text)\")")
        }
        return text.lowercased()
    }

    /// Reads a yes-or-no variable: `true`, `1`, `yes`, `on` or their opposites (any case).
    /// - Parameter name: The variable.
    /// - Returns: The value; `false` when unset.
    /// - Throws: ``ConfigurationError`` for any other value.
    public func flag(_ name: String) throws -> Bool {
        ["true", "1", "yes", "on"].contains(
            try choice(name, default: "false", allowed: ["true", "false", "1", "0", "yes", "no", "on", "off"]))
    }

    /// Reads a list written as a JSON array of strings or as comma-separated words.
    /// - Parameter name: The variable.
    /// - Returns: The items, trimmed, without empties; empty when unset.
    /// - Throws: ``ConfigurationError`` when the value starts with `[` but is not a JSON array of strings.
    public func list(_ name: String) throws -> [String] {
        guard let text = self[name] else { return [] }
        if text.hasPrefix("[") {
            guard let items = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw ConfigurationError(variable: name, reason: "must be a JSON list of strings or comma-separated")
            }
            return items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
