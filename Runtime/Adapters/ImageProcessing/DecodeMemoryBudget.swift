import Foundation

/// A process-wide budget for the memory that full decodes may hold at once.
///
/// A decode is admitted when its estimate fits beside the decodes already running, or when
/// nothing else runs (so that one image larger than the whole budget still decodes, alone);
/// otherwise it waits, first come first served. Eight uploads of 100-megapixel files then take
/// turns instead of holding eight full frames at once.
public actor DecodeMemoryBudget {
    /// The budget, in bytes.
    public let capacity: Int
    /// Bytes held by running decodes.
    public private(set) var inUse = 0
    private var waiting: [(bytes: Int, continuation: CheckedContinuation<Void, Never>)] = []

    /// Creates a budget.
    /// - Parameter capacity: The bytes decodes may hold at once.
    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// The memory a full decode of an image may need: four bytes a pixel (a whole frame of
    /// 8-bit RGBA, or a progressive JPEG's coefficients for three components).
    /// - Parameters:
    ///   - width: The width from the header.
    ///   - height: The height from the header.
    /// - Returns: The estimate in bytes.
    public static func estimate(width: Int, height: Int) -> Int {
        width.multipliedReportingOverflow(by: height).partialValue.multipliedReportingOverflow(by: 4).partialValue
    }

    /// Runs `work` once `bytes` fit in the budget, and gives them back after.
    /// - Parameters:
    ///   - bytes: The estimate.
    ///   - work: The decode.
    /// - Returns: What `work` returns.
    public func withReservation<T: Sendable>(
        _ bytes: Int, _ work: @Sendable () async throws -> T
    ) async rethrows -> T {
        await reserve(bytes)
        defer { release(bytes) }
        return try await work()
    }

    private func reserve(_ bytes: Int) async {
        if waiting.isEmpty && (inUse == 0 || inUse + bytes <= capacity) {
            inUse += bytes
            return
        }
        await withCheckedContinuation { waiting.append((bytes, $0)) }
    }

    private func release(_ bytes: Int) {
        inUse -= bytes
        while let next = waiting.first, inUse == 0 || inUse + next.bytes <= capacity {
            waiting.removeFirst()
            inUse += next.bytes
            next.continuation.resume()
        }
    }
}
