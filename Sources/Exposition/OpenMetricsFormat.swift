/// Encodes metric families in the OpenMetrics text format, version 1.0.0.
///
/// See https://github.com/OpenObservability/OpenMetrics/blob/main/specification/OpenMetrics.md.
/// The same ``MetricFamily`` values that ``TextFormat`` writes are mapped so that Prometheus
/// stores the same series names whichever format it negotiated:
///
/// - a counter `x_total` becomes the family `x` (on the `# TYPE`, `# HELP` and `# UNIT` lines) with
///   samples `x_total` and, when ``Metric/created`` is set, `x_created`;
/// - a gauge named `x_info` whose every value is 1 becomes an info family `x` with samples `x_info`;
/// - a histogram keeps `_bucket`, `_sum` and `_count`, plus `_created` when ``Metric/created`` is set;
/// - a family whose name (without `_total`) ends in `_seconds` or `_bytes` gets a `# UNIT` line.
///
/// One-hot status gauges stay gauges: an OpenMetrics stateset must use its family name as the
/// label name (`prefect_work_pool_status{prefect_work_pool_status="READY"}`), which would rename
/// the `status` label that dashboards and alerts select on. Families with no series are skipped,
/// as in ``TextFormat``. The output ends with `# EOF`.
public enum OpenMetricsFormat {
    /// The `Content-Type` to send with this format.
    public static let contentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    /// Units recognised at the end of a family name, for `# UNIT` lines.
    static let units = ["seconds", "bytes"]

    /// Renders families to a string, ending with `# EOF\n`.
    public static func encode(_ families: [MetricFamily]) -> String {
        var output = ""
        output.reserveCapacity(families.reduce(16) { $0 + 128 + $1.metrics.count * 112 })
        for family in families where !family.metrics.isEmpty {
            write(family, to: &output)
        }
        output += "# EOF\n"
        return output
    }

    /// Renders families to UTF-8 bytes.
    public static func encodeBytes(_ families: [MetricFamily]) -> [UInt8] {
        Array(encode(families).utf8)
    }

    /// How a family is written: its OpenMetrics type, the family name on metadata lines and the unit.
    struct Shape: Equatable {
        var type: String
        var name: String
        var unit: String?
    }

    static func shape(of family: MetricFamily) -> Shape {
        switch family.type {
        case .counter:
            let name = family.name.hasSuffix("_total") ? String(family.name.dropLast(6)) : family.name
            return Shape(type: "counter", name: name, unit: unit(of: name))
        case .gauge:
            let allOnes = family.metrics.allSatisfy { metric in
                if case .number(let value) = metric.value { return value == 1 }
                return false
            }
            if family.name.hasSuffix("_info"), family.name.count > 5, allOnes {
                return Shape(type: "info", name: String(family.name.dropLast(5)), unit: nil)
            }
            return Shape(type: "gauge", name: family.name, unit: unit(of: family.name))
        case .histogram:
            return Shape(type: "histogram", name: family.name, unit: unit(of: family.name))
        }
    }

    static func unit(of name: String) -> String? {
        units.first { name.hasSuffix("_" + $0) && name.count > $0.count + 1 }
    }

    private static func write(_ family: MetricFamily, to output: inout String) {
        let shape = shape(of: family)
        output += "# HELP "
        output += shape.name
        output += " "
        output += escape(family.help)
        output += "\n# TYPE "
        output += shape.name
        output += " "
        output += shape.type
        output += "\n"
        if let unit = shape.unit {
            output += "# UNIT "
            output += shape.name
            output += " "
            output += unit
            output += "\n"
        }
        for metric in family.metrics {
            switch metric.value {
            case .number(let value):
                switch shape.type {
                case "counter":
                    writeLine(name: shape.name + "_total", labels: metric.labels, extra: nil, value: TextFormat.formatValue(value), to: &output)
                    if let created = metric.created {
                        writeLine(
                            name: shape.name + "_created", labels: metric.labels, extra: nil,
                            value: formatTimestamp(created), to: &output)
                    }
                case "info":
                    writeLine(name: shape.name + "_info", labels: metric.labels, extra: nil, value: "1", to: &output)
                default:
                    writeLine(name: shape.name, labels: metric.labels, extra: nil, value: TextFormat.formatValue(value), to: &output)
                }
            case .histogram(let histogram):
                let cumulative = histogram.cumulativeCounts
                let exemplars = histogram.exemplars
                for (index, bound) in histogram.upperBounds.enumerated() {
                    writeLine(
                        name: shape.name + "_bucket", labels: metric.labels,
                        extra: Label("le", TextFormat.formatValue(bound)), value: String(cumulative[index]),
                        exemplar: exemplars.isEmpty ? nil : exemplars[index], to: &output)
                }
                writeLine(
                    name: shape.name + "_bucket", labels: metric.labels,
                    extra: Label("le", "+Inf"), value: String(histogram.count), exemplar: exemplars.last ?? nil, to: &output)
                writeLine(
                    name: shape.name + "_count", labels: metric.labels, extra: nil,
                    value: String(histogram.count), to: &output)
                writeLine(
                    name: shape.name + "_sum", labels: metric.labels, extra: nil,
                    value: TextFormat.formatValue(histogram.sum), to: &output)
                if let created = metric.created {
                    writeLine(
                        name: shape.name + "_created", labels: metric.labels, extra: nil,
                        value: formatTimestamp(created), to: &output)
                }
            }
        }
    }

    private static func writeLine(
        name: String, labels: [Label], extra: Label?, value: String, exemplar: Exemplar? = nil, to output: inout String
    ) {
        output += name
        if !labels.isEmpty || extra != nil {
            output += "{"
            var first = true
            for label in labels {
                if !first { output += "," }
                first = false
                appendLabel(label, to: &output)
            }
            if let extra {
                if !first { output += "," }
                appendLabel(extra, to: &output)
            }
            output += "}"
        }
        output += " "
        output += value
        if let exemplar {
            // ` # {flow_run_id="…"} 42.5 1795423920.123`: the labels, the observed value, when.
            output += " # {"
            for (index, label) in Exemplar.fitting(exemplar.labels).enumerated() {
                if index > 0 { output += "," }
                appendLabel(label, to: &output)
            }
            output += "} "
            output += TextFormat.formatValue(exemplar.value)
            if let timestamp = exemplar.timestamp {
                output += " "
                output += formatTimestamp(timestamp)
            }
        }
        output += "\n"
    }

    private static func appendLabel(_ label: Label, to output: inout String) {
        output += label.name
        output += "=\""
        output += TextFormat.escapeLabelValue(label.value)
        output += "\""
    }

    /// Escapes HELP text the OpenMetrics way: backslash, double quote and line feed.
    public static func escape(_ value: String) -> String {
        TextFormat.escapeLabelValue(value)
    }

    /// A timestamp in seconds with at most millisecond precision, e.g. `1795423860.25`.
    static func formatTimestamp(_ seconds: Double) -> String {
        guard seconds.isFinite else { return TextFormat.formatValue(seconds) }
        let milliseconds = (seconds * 1000).rounded()
        // From 2^53 ms on (some 285,000 years), a Double has no digit below the millisecond to
        // round away, and the arithmetic below would be inexact or overflow Int64: written as is.
        guard abs(milliseconds) < 9_007_199_254_740_992 else { return TextFormat.formatValue(seconds) }
        if milliseconds.truncatingRemainder(dividingBy: 1000) == 0 {
            return TextFormat.formatValue(milliseconds / 1000)
        }
        let whole = (milliseconds / 1000).rounded(.towardZero)
        var fraction = String(Int64(abs(milliseconds - whole * 1000)))
        while fraction.count < 3 { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let sign = milliseconds < 0 && whole == 0 ? "-" : ""
        return "\(sign)\(Int64(whole)).\(fraction)"
    }
}
