import Foundation

/// The process's resident memory, from `/proc/self/status`.
public enum ProcessMemory {
    /// Current resident set size in bytes (0 where `/proc` is unavailable).
    public static func residentBytes() -> Int { field("VmRSS:") }
    /// Peak resident set size in bytes (0 where `/proc` is unavailable).
    public static func peakResidentBytes() -> Int { field("VmHWM:") }

    private static func field(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }
}
