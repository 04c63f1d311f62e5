import Foundation
import ImageAPICore
import NIOPosix
import VipsShim

/// Calls into libvips: started once per process, run on a thread pool (never on the Swift
/// concurrency pool, whose few threads must not block on decoding).
enum Vips {
    private static let started: Bool = vshim_start() == 0

    /// Runs blocking libvips work on NIO's shared thread pool.
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard started else { throw ImageDecodingError.undecodable("libvips could not start: \(takeError())") }
        return try await NIOThreadPool.singleton.runIfActive(work)
    }

    /// The last libvips error, tidied to one line.
    static func takeError() -> String {
        guard let pointer = vshim_take_error() else { return "unknown libvips error" }
        defer { vshim_free(pointer) }
        return String(cString: pointer)
            .split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: "; ")
    }

    /// Copies a C string the shim allocated, and frees it.
    static func take(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        defer { vshim_free(pointer) }
        return String(cString: pointer)
    }
}
