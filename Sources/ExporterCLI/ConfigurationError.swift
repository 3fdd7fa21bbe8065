/// A problem with flags, environment or files. The exporter prints it on one line and exits 2.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The flag or variable at fault, e.g. `--prefect.poll-interval`.
    public var setting: String
    /// What is wrong and what would be right.
    public var problem: String

    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }

    public var description: String { "\(setting): \(problem)" }
}
