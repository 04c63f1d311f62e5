import Dispatch
import Locking
import Testing

@Suite("Locked")
struct LockedTests {
    struct Refused: Error {}

    @Test("8 threads changing one value 10,000 times each lose no change")
    func exclusive() {
        let state = Locked<(count: Int, log: [Int])>((0, []))
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for step in 0..<10_000 {
                state.withLock { state in
                    state.count += 1
                    state.log.append(thread * 10_000 + step)
                }
            }
        }
        let (count, log) = state.withLock { ($0.count, $0.log) }
        #expect(count == 80_000)
        #expect(Set(log) == Set(0..<80_000))
    }

    @Test("an error thrown inside leaves the change made before it and releases the lock")
    func throwing() {
        let value = Locked(1)
        #expect(throws: Refused.self) {
            try value.withLock { value in
                value = 2
                throw Refused()
            }
        }
        #expect(value.withLock { $0 } == 2)
    }
}
