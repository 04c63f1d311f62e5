import Testing

/// The tests' one random generator: SplitMix64 from a fixed seed, so a failing run repeats
/// exactly. Every failure recorded while a generator is in use names its seed.
public struct SeededGenerator: RandomNumberGenerator, CustomTestStringConvertible {
    /// The seed this generator started from.
    public let seed: UInt64
    private var state: UInt64

    /// Creates a generator.
    /// - Parameter seed: The seed; tests pass a literal, so the sequence never changes.
    public init(seed: UInt64) {
        self.seed = seed
        self.state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// How the generator appears in failure messages.
    public var testDescription: String { "SeededGenerator(seed: \(seed))" }
}
