import Locking

/// Scratch memory for one inference, kept between inferences: the activations of a forward pass
/// are carved out of one cache-line aligned block, so that no call maps and faults in fresh pages
/// (which the kernel zeroes first: about 15 % of an 8-image batch when every buffer was a new
/// allocation). The block grows to the largest inference seen.
final class Workspace {
    private var block: UnsafeMutableRawPointer?
    private var capacity = 0
    private var used = 0
    private var overflow: [UnsafeMutableRawPointer] = []
    private var wanted = 0

    /// Cache-line aligned, as the packed weights are.
    private static let alignment = WeightArena.alignment

    /// `count` uninitialised floats, valid until ``reset()``.
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = (max(count, 1) * MemoryLayout<Float>.stride + Self.alignment - 1) / Self.alignment * Self.alignment
        wanted += bytes
        if let block, used + bytes <= capacity {
            defer { used += bytes }
            return (block + used).bindMemory(to: Float.self, capacity: count)
        }
        // Past the block: a buffer of its own this time, and a block large enough next time.
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
        overflow.append(buffer)
        return buffer.bindMemory(to: Float.self, capacity: count)
    }

    /// Gives back everything handed out, growing the block when this inference needed more.
    func reset() {
        for buffer in overflow { buffer.deallocate() }
        overflow.removeAll()
        if wanted > capacity {
            block?.deallocate()
            block = UnsafeMutableRawPointer.allocate(byteCount: wanted, alignment: Self.alignment)
            capacity = wanted
        }
        used = 0
        wanted = 0
    }

    deinit {
        for buffer in overflow { buffer.deallocate() }
        block?.deallocate()
    }
}

/// The workspaces of one model: each inference takes one (a concurrent inference takes another)
/// and puts it back when done.
final class Workspaces: Sendable {
    private let idle = Locked<[UnsafeTransfer]>([])

    /// A workspace moved between threads; only one inference uses it at a time.
    private struct UnsafeTransfer: @unchecked Sendable {
        let workspace: Workspace
    }

    /// Runs `body` with a workspace of its own.
    func with<Result>(_ body: (Workspace) -> Result) -> Result {
        let workspace = idle.withLock { $0.popLast()?.workspace } ?? Workspace()
        defer {
            workspace.reset()
            idle.withLock { $0.append(UnsafeTransfer(workspace: workspace)) }
        }
        return body(workspace)
    }
}
