/// Encodes metric families in the Prometheus text exposition format, version 0.0.4.
///
/// See https://prometheus.io/docs/instrumenting/exposition_formats/ for the grammar.
/// Families are written in the order given; a family with no series is skipped entirely,
/// so that a family that has nothing to say does not leave a dangling `# TYPE` line.
public enum TextFormat {
    /// The `Content-Type` to send with this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Renders families to a string.
    public static func encode(_ families: [MetricFamily]) -> String {
        var output = ""
        output.reserveCapacity(families.reduce(0) { $0 + 96 + $1.metrics.count * 96 })
        for family in families where !family.metrics.isEmpty {
            write(family, to: &output)
        }
        return output
    }

    /// Renders families to UTF-8 bytes.
    public static func encodeBytes(_ families: [MetricFamily]) -> [UInt8] {
        Array(encode(families).utf8)
    }

    private static func write(_ family: MetricFamily, to output: inout String) {
        output += "# HELP "
        output += family.name
        output += " "
        output += escapeHelp(family.help)
        output += "\n# TYPE "
        output += family.name
        output += " "
        output += family.type.rawValue
        output += "\n"
        for metric in family.metrics {
            switch metric.value {
            case .number(let value):
                writeLine(name: family.name, labels: metric.labels, extra: nil, value: formatValue(value), to: &output)
            case .histogram(let histogram):
                let cumulative = histogram.cumulativeCounts
                for (index, bound) in histogram.upperBounds.enumerated() {
                    writeLine(
                        name: family.name + "_bucket", labels: metric.labels,
                        extra: Label("le", formatValue(bound)), value: String(cumulative[index]), to: &output)
                }
                writeLine(
                    name: family.name + "_bucket", labels: metric.labels,
                    extra: Label("le", "+Inf"), value: String(histogram.count), to: &output)
                writeLine(
                    name: family.name + "_sum", labels: metric.labels, extra: nil,
                    value: formatValue(histogram.sum), to: &output)
                writeLine(
                    name: family.name + "_count", labels: metric.labels, extra: nil,
                    value: String(histogram.count), to: &output)
            }
        }
    }

    private static func writeLine(name: String, labels: [Label], extra: Label?, value: String, to output: inout String) {
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
        output += "\n"
    }

    private static func appendLabel(_ label: Label, to output: inout String) {
        output += label.name
        output += "=\""
        output += escapeLabelValue(label.value)
        output += "\""
    }

    /// Escapes a label value: backslash, double quote and line feed.
    public static func escapeLabelValue(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") })
        else { return value }
        var escaped = ""
        escaped.reserveCapacity(value.utf8.count + 8)
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// Escapes HELP text: backslash and line feed.
    public static func escapeHelp(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\n") }) else { return value }
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// Formats a sample value: integers without a fraction, `NaN`, `+Inf`, `-Inf`, otherwise the shortest exact form.
    public static func formatValue(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == .infinity { return "+Inf" }
        if value == -.infinity { return "-Inf" }
        // Below 1e16 Swift's description writes integral values with a trailing ".0" (1e15 gives
        // "1000000000000000.0"); from 1e16 on it uses exponent form ("1e+16"). Int64 is exact here.
        if value == value.rounded(), abs(value) < 1e16 {
            return String(Int64(value))
        }
        return String(describing: value)
    }
}
