import COpenBLAS

/// Row-major `Float32` vectors of one length in one contiguous buffer, scored against a query
/// with one BLAS matrix-vector product (`cblas_sgemv`): a scan at memory bandwidth.
///
/// Rows are identified by a caller-chosen key; removing a row moves the last row into its place,
/// so storage never has holes.
public struct VectorMatrix<Key: Hashable & Sendable>: Sendable {
    /// The vector length.
    public let dimensions: Int
    /// The vectors, `count × dimensions`, row-major.
    public private(set) var storage: [Float] = []
    /// The key of each row.
    public private(set) var keys: [Key] = []
    private var rowOfKey: [Key: Int] = [:]

    /// Creates an empty matrix.
    /// - Parameter dimensions: The vector length.
    public init(dimensions: Int) {
        precondition(dimensions > 0)
        self.dimensions = dimensions
    }

    /// How many vectors are stored.
    public var count: Int { keys.count }

    /// Whether a key has a row.
    public func contains(_ key: Key) -> Bool { rowOfKey[key] != nil }

    /// Adds a vector, or replaces the vector stored under the same key.
    public mutating func upsert(_ key: Key, _ vector: [Float]) {
        precondition(vector.count == dimensions, "vector has \(vector.count) values, expected \(dimensions)")
        if let row = rowOfKey[key] {
            storage.replaceSubrange(row * dimensions..<(row + 1) * dimensions, with: vector)
        } else {
            rowOfKey[key] = keys.count
            keys.append(key)
            storage.append(contentsOf: vector)
        }
    }

    /// Removes a key's vector; returns whether it was there.
    @discardableResult
    public mutating func remove(_ key: Key) -> Bool {
        guard let row = rowOfKey.removeValue(forKey: key) else { return false }
        let last = keys.count - 1
        if row != last {
            let moved = keys[last]
            keys[row] = moved
            rowOfKey[moved] = row
            storage.withUnsafeMutableBufferPointer { buffer in
                let base = buffer.baseAddress!
                (base + row * dimensions).update(from: base + last * dimensions, count: dimensions)
            }
        }
        keys.removeLast()
        storage.removeLast(dimensions)
        return true
    }

    /// The dot product of every stored vector with `query`, in row order.
    public func dotProducts(_ query: [Float]) -> [Float] {
        precondition(query.count == dimensions)
        let rows = count
        guard rows > 0 else { return [] }
        var scores = [Float](repeating: 0, count: rows)
        storage.withUnsafeBufferPointer { matrix in
            query.withUnsafeBufferPointer { vector in
                scores.withUnsafeMutableBufferPointer { output in
                    cblas_sgemv(
                        CblasRowMajor, CblasNoTrans, Int32(rows), Int32(dimensions), 1, matrix.baseAddress,
                        Int32(dimensions), vector.baseAddress, 1, 0, output.baseAddress, 1)
                }
            }
        }
        return scores
    }

    /// The `limit` rows with the largest dot product with `query`, among those scoring at least
    /// `minimumScore` that `admit` accepts, best first (ties broken by row order).
    public func nearest(
        _ query: [Float], limit: Int, minimumScore: Float = -.infinity, where admit: (Key) -> Bool = { _ in true }
    ) -> [(key: Key, score: Float)] {
        guard limit > 0 else { return [] }
        let scores = dotProducts(query)
        var best = TopK(capacity: limit)
        for row in 0..<scores.count where scores[row] >= minimumScore && admit(keys[row]) {
            best.offer(row: row, score: scores[row])
        }
        return best.sorted().map { (keys[$0.row], $0.score) }
    }
}

extension VectorMatrix {
    /// One page of the rows scoring at least `minimumScore` that `admit` accepts, best first
    /// (ties broken by row order), and how many rows qualify in all.
    /// - Parameters:
    ///   - query: The query vector.
    ///   - skip: Qualifying rows to skip, best first.
    ///   - limit: Rows to return at most.
    ///   - minimumScore: The least dot product a row may have.
    ///   - admit: Which keys may qualify.
    /// - Returns: The page and the number of qualifying rows.
    public func page(
        _ query: [Float], skip: Int, limit: Int, minimumScore: Float = -.infinity,
        where admit: (Key) -> Bool = { _ in true }
    ) -> (page: [(key: Key, score: Float)], total: Int) {
        let scores = dotProducts(query)
        // Never more than there are rows: `skip` may be anything a client sends.
        let wanted = min(scores.count, skip.addingReportingOverflow(max(0, limit)).overflow ? .max : skip + limit)
        var best = TopK(capacity: max(0, wanted))
        var total = 0
        for row in 0..<scores.count where scores[row] >= minimumScore && admit(keys[row]) {
            total += 1
            if wanted > 0 { best.offer(row: row, score: scores[row]) }
        }
        let page = best.sorted().dropFirst(max(0, skip)).prefix(max(0, limit)).map { (keys[$0.row], $0.score) }
        return (Array(page), total)
    }
}

/// Keeps the `capacity` best (row, score) pairs seen, in a min-heap on score.
struct TopK {
    let capacity: Int
    private var heap: [(row: Int, score: Float)] = []

    init(capacity: Int) {
        self.capacity = capacity
        heap.reserveCapacity(capacity)
    }

    /// Whether `a` ranks below `b`: lower score, or equal score and later row.
    private static func worse(_ a: (row: Int, score: Float), _ b: (row: Int, score: Float)) -> Bool {
        a.score < b.score || (a.score == b.score && a.row > b.row)
    }

    mutating func offer(row: Int, score: Float) {
        let item = (row: row, score: score)
        if heap.count < capacity {
            heap.append(item)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard Self.worse(heap[child], heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        } else if Self.worse(heap[0], item) {
            heap[0] = item
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count && Self.worse(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count && Self.worse(heap[right], heap[smallest]) { smallest = right }
                guard smallest != parent else { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    func sorted() -> [(row: Int, score: Float)] {
        heap.sorted { Self.worse($1, $0) }
    }
}
