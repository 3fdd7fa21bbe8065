/// The kind of a metric family, as written on its `# TYPE` line.
public enum MetricType: String, Sendable, Equatable {
    case counter
    case gauge
    case histogram
}

/// One label pair of a series. Order is kept as given, so output is stable.
public struct Label: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The value of one series: a plain number for counters and gauges, or a whole histogram.
public enum MetricValue: Sendable, Equatable {
    case number(Double)
    case histogram(Histogram)
}

/// One series of a family: its labels and its value.
public struct Metric: Sendable, Equatable {
    public var labels: [Label]
    public var value: MetricValue
    /// When a counter or a cumulative histogram started counting, in seconds since the epoch.
    /// Only OpenMetrics writes it (as a `_created` sample); the text format 0.0.4 has no place for it.
    public var created: Double?

    public init(labels: [Label] = [], value: Double, created: Double? = nil) {
        self.labels = labels
        self.value = .number(value)
        self.created = created
    }

    public init(labels: [Label] = [], histogram: Histogram, created: Double? = nil) {
        self.labels = labels
        self.value = .histogram(histogram)
        self.created = created
    }
}

/// A metric family: one name, one HELP text, one type and any number of series.
public struct MetricFamily: Sendable, Equatable {
    public var name: String
    public var help: String
    public var type: MetricType
    public var metrics: [Metric]

    public init(name: String, help: String, type: MetricType, metrics: [Metric] = []) {
        self.name = name
        self.help = help
        self.type = type
        self.metrics = metrics
    }
}
