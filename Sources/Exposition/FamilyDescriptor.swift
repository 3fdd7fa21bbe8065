/// The declaration of a metric family: what it is called, its type, its HELP text and its label
/// names. Every family the exporter serves is declared once as a descriptor (see the exporter's
/// `metrics` subcommand), and its series are built from it, so the name, type and help written on
/// the page are the ones declared.
public struct FamilyDescriptor: Sendable, Hashable {
    /// The family name, e.g. `prefect_work_pool_status`.
    public let name: String
    public let type: MetricType
    public let help: String
    /// The label names of its series, in the order written. With several Prefect targets each
    /// series also carries `prefect` first; histograms also carry `le` on their buckets.
    public let labels: [String]
    /// Whether its series count since they appeared (counters, and histograms of events since the
    /// exporter started), as opposed to snapshots recomputed each poll. OpenMetrics gives such
    /// series a creation time (`_created`).
    public let accumulates: Bool

    /// Declares a family. The name and labels must follow Prometheus' data model (checked by
    /// ``isValid``, which the catalogue's tests assert for every declared family).
    /// - Parameter accumulates: defaults to true for counters and false otherwise.
    public init(_ name: String, _ type: MetricType, help: String, labels: [String] = [], accumulates: Bool? = nil) {
        self.name = name
        self.type = type
        self.help = help
        self.labels = labels
        self.accumulates = accumulates ?? (type == .counter)
    }

    /// An empty family of this declaration.
    public func family(_ metrics: [Metric] = []) -> MetricFamily {
        MetricFamily(name: name, help: help, type: type, metrics: metrics)
    }

    /// Whether the name and every label name are valid in Prometheus' data model, and no label
    /// is reserved (`__*`, or `le` on a histogram) or repeated.
    public var isValid: Bool {
        guard Self.isValidName(name, allowingColon: true), Set(labels).count == labels.count else { return false }
        return labels.allSatisfy { label in
            Self.isValidName(label, allowingColon: false) && !label.hasPrefix("__") && !(type == .histogram && label == "le")
        }
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names, `[a-zA-Z_][a-zA-Z0-9_]*` for label names.
    static func isValidName(_ name: String, allowingColon: Bool) -> Bool {
        guard let first = name.utf8.first else { return false }
        func isLetter(_ byte: UInt8) -> Bool { (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F }
        func isAllowed(_ byte: UInt8) -> Bool { isLetter(byte) || (allowingColon && byte == 0x3A) }
        guard isAllowed(first) else { return false }
        return name.utf8.dropFirst().allSatisfy { isAllowed($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}
