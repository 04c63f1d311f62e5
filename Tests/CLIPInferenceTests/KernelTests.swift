import CLIPInference
import CLIPKernels
import Foundation
import TestSupport
import Testing

/// The packed product kernels and the worker pool under the engine.
@Suite("CLIP kernels and worker pool")
struct KernelTests {
    /// `C += A · Wᵀ` for one column range, at one kernel level.
    static func product(
        level: Int32, rows: Int, inputs: Int, outputs: Int, columns: Range<Int>, seed: UInt64
    ) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        let a = (0..<rows * inputs).map { _ in Float.random(in: -1...1, using: &generator) }
        let w = (0..<outputs * inputs).map { _ in Float.random(in: -1...1, using: &generator) }
        var c = (0..<rows * outputs).map { _ in Float.random(in: -1...1, using: &generator) }
        var packed = [Float](repeating: 0, count: clipk_packed_count(Int32(outputs), Int32(inputs)))
        clipk_pack(w, Int32(outputs), Int32(inputs), &packed)
        let previous = clipk_level()
        _ = clipk_set_level(level)
        defer { _ = clipk_set_level(previous) }
        clipk_gemm(
            a, Int32(rows), Int32(inputs), packed, Int32(columns.lowerBound), Int32(columns.upperBound), &c,
            Int32(outputs))
        return c
    }

    @Test(
        "the AVX-512 kernel gives exactly the AVX2 kernel's products (every row count, partial panels)",
        arguments: [1, 2, 5, 6, 7, 8, 9, 13, 16, 17, 50])
    func kernelsAgree(rows: Int) throws {
        // On a CPU without AVX-512 both runs use the AVX2 kernel and the test checks nothing more
        // than determinism; clip-bench prints which kernel a machine runs.
        try #require(clipk_level() >= 1, "the packed kernels need AVX2 and FMA")
        for (inputs, outputs, columns) in [(3, 16, 0..<16), (64, 40, 0..<40), (77, 100, 16..<97), (512, 48, 16..<48)] {
            let seed = UInt64(rows * 1000 + inputs)
            let wide = Self.product(
                level: 2, rows: rows, inputs: inputs, outputs: outputs, columns: columns, seed: seed)
            let narrow = Self.product(
                level: 1, rows: rows, inputs: inputs, outputs: outputs, columns: columns, seed: seed)
            #expect(wide == narrow, "rows \(rows), \(inputs) → \(outputs), columns \(columns), seed \(seed)")
            // Columns outside the range are left as they were.
            let untouched = Self.product(
                level: 2, rows: rows, inputs: inputs, outputs: outputs, columns: 0..<0, seed: seed)
            for row in 0..<rows {
                for column in 0..<outputs where !columns.contains(column) {
                    #expect(wide[row * outputs + column] == untouched[row * outputs + column])
                }
            }
        }
    }

    /// One attention head through ``clipk_attention`` at one kernel level, over seeded queries,
    /// keys and values laid out with a leading dimension wider than the head, as in the model.
    static func attention(
        level: Int32, length: Int, headSize: Int, causal: Bool, seed: UInt64
    ) -> (q: [Float], k: [Float], v: [Float], out: [Float], ld: Int) {
        var generator = SeededGenerator(seed: seed)
        let ld = headSize * 3
        func values() -> [Float] { (0..<length * ld).map { _ in Float.random(in: -2...2, using: &generator) } }
        let (q, k, v) = (values(), values(), values())
        var out = [Float](repeating: .nan, count: length * ld)
        var scratch = [Float](repeating: .nan, count: clipk_attention_scratch_count(Int32(length), Int32(headSize)))
        let previous = clipk_level()
        _ = clipk_set_level(level)
        defer { _ = clipk_set_level(previous) }
        clipk_attention(
            q, k, v, Int32(ld), Int32(length), Int32(headSize), 0.125, causal ? 1 : 0, &scratch, &out, Int32(ld))
        return (q, k, v, out, ld)
    }

    @Test(
        "attention: softmax(scale · q · kᵀ) · v within 1e-5 of a double-precision reference, masked when causal, the same bits at every kernel level",
        arguments: [
            (1, 64, false), (7, 64, true), (16, 64, true), (50, 64, false), (77, 64, true), (33, 40, false),
            (131, 80, true),
        ])
    func attentionMatchesReference(length: Int, headSize: Int, causal: Bool) throws {
        // On a CPU without AVX-512 both runs use the AVX2 version, and only the comparison with
        // the reference below checks more than determinism.
        let seed = UInt64(length * 100 + headSize)
        let wide = Self.attention(level: 2, length: length, headSize: headSize, causal: causal, seed: seed)
        let narrow = Self.attention(level: 1, length: length, headSize: headSize, causal: causal, seed: seed)
        let sameBits = wide.out.map(\.bitPattern) == narrow.out.map(\.bitPattern)
        #expect(sameBits, "the AVX-512 and AVX2 versions differ")
        let (q, k, v, out, ld) = wide
        var largest = 0.0
        for i in 0..<length {
            let visible = causal ? i + 1 : length
            let scores = (0..<visible).map { j in
                0.125 * (0..<headSize).reduce(0.0) { $0 + Double(q[i * ld + $1]) * Double(k[j * ld + $1]) }
            }
            let top = scores.max()!
            let weights = scores.map { exp($0 - top) }
            let total = weights.reduce(0, +)
            for c in 0..<ld {
                let got = out[i * ld + c]
                guard c < headSize else {
                    #expect(got.isNaN, "column \(c) past the head was written")
                    continue
                }
                let expected = (0..<visible).reduce(0.0) { $0 + weights[$1] / total * Double(v[$1 * ld + c]) }
                largest = max(largest, abs(Double(got) - expected))
            }
        }
        #expect(largest < 1e-5, "largest difference \(largest)")
    }

    @Test("the pool runs every part exactly once per step, across many steps")
    func poolRunsEveryPart() {
        let pool = clipk_pool_create(3)
        defer { clipk_pool_destroy(pool) }
        #expect(clipk_pool_workers(pool) == 3)
        var counts = [Int](repeating: 0, count: 3)
        counts.withUnsafeMutableBufferPointer { counts in
            var base = counts.baseAddress!
            withUnsafeMutablePointer(to: &base) { context in
                for _ in 0..<10_000 {
                    clipk_pool_run(
                        pool, 3,
                        { context, worker in
                            context!.assumingMemoryBound(to: UnsafeMutablePointer<Int>.self).pointee[Int(worker)] += 1
                        }, context)
                }
            }
        }
        #expect(counts == [10_000, 10_000, 10_000])
    }

    @Test("concurrent callers of one model at two threads get the single-threaded embeddings")
    func concurrentCallers() async throws {
        let model = ReferenceFixture.model
        let ids = ReferenceFixture.shared.texts.prefix(12).map(\.ids)
        let expected = model.embed(tokenSequences: ids, threads: 1)
        let results = await withTaskGroup(of: [[Float]].self) { group in
            for _ in 0..<4 {
                group.addTask { model.embed(tokenSequences: ids, threads: 2) }
            }
            return await group.reduce(into: [[[Float]]]()) { $0.append($1) }
        }
        #expect(results.count == 4)
        for result in results { #expect(result == expected) }
    }
}
