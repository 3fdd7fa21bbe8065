
/// Which work pools this exporter reports, from `--prefect.work-pool-include` and
/// `--prefect.work-pool-exclude`. Several exporters with disjoint selections can split a very
/// large Prefect between them.
///
/// Patterns are fully anchored, as in Prometheus relabelling: `prod-.*` matches `prod-eu`, not
/// `my-prod-eu`. Runs with no work pool (ad-hoc and `flow.serve()` runs) have the pool name `""`,
/// so they belong to whichever exporter's selection matches the empty name.
public struct WorkPoolSelection: Sendable {
    private let include: AnchoredPattern?
    private let exclude: AnchoredPattern?

    /// Everything.
    public static let all = WorkPoolSelection(include: nil, exclude: nil)

    /// - Throws: ``InvalidPattern`` naming the bad pattern.
    public init(includePattern: String?, excludePattern: String?) throws(InvalidPattern) {
        self.init(
            include: try includePattern.map { pattern throws(InvalidPattern) in try AnchoredPattern(pattern) },
            exclude: try excludePattern.map { pattern throws(InvalidPattern) in try AnchoredPattern(pattern) })
    }

    private init(include: AnchoredPattern?, exclude: AnchoredPattern?) {
        self.include = include
        self.exclude = exclude
    }

    /// Whether any filter is set.
    public var isFiltering: Bool { include != nil || exclude != nil }

    /// Whether a pool (or `""` for runs with no pool) is reported.
    public func includes(_ pool: String) -> Bool {
        if let include, !include.matches(pool) { return false }
        if let exclude, exclude.matches(pool) { return false }
        return true
    }

    /// A pattern that does not compile.
    public struct InvalidPattern: Error, Sendable, CustomStringConvertible {
        public var pattern: String
        public var reason: String
        public var description: String { "invalid regular expression '\(pattern)': \(reason)" }
    }
}

/// A compiled, fully anchored regular expression (Swift's `Regex`, matching Unicode scalars as
/// ICU's engine did). A `Regex` is an immutable value, safe to use from several threads, hence
/// the unchecked conformance.
final class AnchoredPattern: @unchecked Sendable {
    private let expression: Regex<AnyRegexOutput>

    init(_ pattern: String) throws(WorkPoolSelection.InvalidPattern) {
        do {
            expression = try Regex("^(?:\(pattern))$").matchingSemantics(.unicodeScalar)
        } catch {
            throw WorkPoolSelection.InvalidPattern(pattern: pattern, reason: "it does not compile; check brackets, parentheses and escapes")
        }
    }

    func matches(_ text: String) -> Bool {
        (try? expression.firstMatch(in: text)) != nil
    }
}
