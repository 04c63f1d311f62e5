import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A `.safetensors` file mapped read-only into memory: the JSON header is parsed and checked
/// against the file's length when it is opened, and tensor data is read in place (F32) or
/// widened to Float32 on request (F16, BF16).
public final class SafeTensorsFile: @unchecked Sendable {
    /// The element types the engine reads.
    public enum ElementType: String, Sendable {
        case float32 = "F32"
        case float16 = "F16"
        case bfloat16 = "BF16"

        var byteCount: Int { self == .float32 ? 4 : 2 }
    }

    /// One tensor's entry in the header.
    public struct TensorInfo: Sendable, Equatable {
        /// The element type as the header names it (`F32`, `F16`, `I64`, …).
        public let dtype: String
        /// The shape, outermost dimension first.
        public let shape: [Int]
        /// Byte range in the data section.
        let range: Range<Int>
    }

    /// The file's path.
    public let path: String
    /// The tensors by name.
    public let tensors: [String: TensorInfo]
    /// The raw header JSON (part of the model's fingerprint).
    public let headerBytes: Data
    /// The file's length in bytes.
    public let byteCount: Int
    private let base: UnsafeRawPointer
    private let dataOffset: Int

    /// Maps and checks a safetensors file.
    /// - Parameter path: The file.
    /// - Throws: ``CLIPModelError`` for a missing, unreadable, truncated or malformed file.
    public init(path: String) throws {
        self.path = path
        let name = (path as NSString).lastPathComponent
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw CLIPModelError(file: name, errno == ENOENT ? "the file is missing" : "the file cannot be read")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw CLIPModelError(file: name, "the file cannot be read") }
        let length = Int(status.st_size)
        guard length >= 8 else { throw CLIPModelError(file: name, "the file is truncated (\(length) bytes)") }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0), mapped != MAP_FAILED else {
            throw CLIPModelError(file: name, "the file cannot be memory-mapped")
        }
        let base = UnsafeRawPointer(mapped)
        var headerLength = 0
        for index in 0..<8 { headerLength |= Int(base.load(fromByteOffset: index, as: UInt8.self)) << (8 * index) }
        guard headerLength > 0, headerLength <= length - 8 else {
            munmap(mapped, length)
            throw CLIPModelError(
                file: name, "the file is truncated or not safetensors (header of \(headerLength) bytes in \(length))")
        }
        let header = Data(bytes: base + 8, count: headerLength)
        let dataLength = length - 8 - headerLength
        do {
            self.tensors = try Self.parseHeader(header, dataLength: dataLength)
        } catch let problem as CLIPModelError {
            munmap(mapped, length)
            throw CLIPModelError(file: name, problem.problem)
        }
        self.base = base
        self.byteCount = length
        self.dataOffset = 8 + headerLength
        self.headerBytes = header
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), byteCount)
    }

    private static func parseHeader(_ header: Data, dataLength: Int) throws -> [String: TensorInfo] {
        guard let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw CLIPModelError(file: "", "the header is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        for (name, value) in object where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                let shape = (entry["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                let offsets = (entry["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1]
            else { throw CLIPModelError(file: "", "the header entry for \(name) is malformed") }
            guard offsets[1] <= dataLength else {
                throw CLIPModelError(
                    file: "",
                    "the file is truncated: \(name) ends at byte \(offsets[1]) of a data section of \(dataLength) bytes"
                )
            }
            if let type = ElementType(rawValue: dtype), shape.reduce(1, *) * type.byteCount != offsets[1] - offsets[0] {
                throw CLIPModelError(file: "", "\(name) has \(offsets[1] - offsets[0]) bytes for shape \(shape)")
            }
            tensors[name] = TensorInfo(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        return tensors
    }

    /// `count` bytes from the start of the data section and `count` bytes before its end (part of
    /// the model's fingerprint; reading them touches only those pages).
    func dataSample(count: Int) -> Data {
        let dataLength = byteCount - dataOffset
        let head = Data(bytes: base + dataOffset, count: min(count, dataLength))
        let tailStart = max(dataOffset, byteCount - count)
        return head + Data(bytes: base + tailStart, count: byteCount - tailStart)
    }

    /// Drops a tensor's mapped pages from memory (they are read again from the file if touched):
    /// called once a tensor has been copied into another layout.
    func releasePages(of name: String) {
        guard let info = tensors[name] else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + dataOffset + info.range.lowerBound
        let end = Int(bitPattern: base) + dataOffset + info.range.upperBound
        let first = (start + page - 1) / page * page
        let last = end / page * page
        guard last > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
        madvise(pointer, last - first, Int32(MADV_DONTNEED))
    }

    /// A tensor as Float32 values: in place for an aligned F32 tensor, widened into `arena` for
    /// F16 and BF16.
    /// - Parameters:
    ///   - name: The tensor's name.
    ///   - shape: The shape the model expects.
    ///   - arena: Where widened copies are kept alive.
    /// - Throws: ``CLIPModelError`` when the tensor is absent, has another shape or an unsupported type.
    func floats(_ name: String, shape: [Int], arena: WeightArena) throws -> UnsafePointer<Float> {
        let file = (path as NSString).lastPathComponent
        guard let info = tensors[name] else { throw CLIPModelError(file: file, "the tensor \(name) is missing") }
        guard info.shape == shape else {
            throw CLIPModelError(file: file, "\(name) has shape \(info.shape) but config.json implies \(shape)")
        }
        guard let type = ElementType(rawValue: info.dtype) else {
            throw CLIPModelError(file: file, "\(name) has element type \(info.dtype); F32, F16 or BF16 is needed")
        }
        let start = base + dataOffset + info.range.lowerBound
        let count = info.range.count / type.byteCount
        switch type {
        case .float32:
            if Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
                return start.assumingMemoryBound(to: Float.self)
            }
            let copy = arena.allocate(count)
            memcpy(copy, start, count * 4)
            return UnsafePointer(copy)
        case .float16:
            let copy = arena.allocate(count)
            for index in 0..<count {
                copy[index] = Float(
                    Float16(bitPattern: start.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
            }
            return UnsafePointer(copy)
        case .bfloat16:
            let copy = arena.allocate(count)
            for index in 0..<count {
                let bits = start.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)
                copy[index] = Float(bitPattern: UInt32(bits) << 16)
            }
            return UnsafePointer(copy)
        }
    }
}

/// Owns the Float32 buffers made while loading (widened F16 tensors, fused copies), freed with it.
final class WeightArena: @unchecked Sendable {
    private var buffers: [UnsafeMutablePointer<Float>] = []
    /// Bytes allocated.
    private(set) var byteCount = 0

    /// Every buffer starts on a cache line, so that the product kernels' 64-byte loads of packed
    /// panels never straddle two lines.
    static let alignment = 64

    func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: Self.alignment)
            .bindMemory(to: Float.self, capacity: max(count, 1))
        buffers.append(buffer)
        byteCount += count * 4
        return buffer
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }
}
