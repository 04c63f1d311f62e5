/// Why a CLIP model directory cannot be used: the file at fault and what is wrong with it.
public struct CLIPModelError: Error, Equatable, CustomStringConvertible {
    /// The file (or directory) at fault.
    public let file: String
    /// What is wrong with it, in one sentence.
    public let problem: String

    /// Names the file and the problem.
    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    /// One line naming the file and what is wrong.
    public var description: String { "\(file): \(problem)" }
}
