/// Parses durations written the Prometheus way: `1h30m`, `15s`, `500ms`, `2d`, `1w`, `1y`.
public enum PrometheusDuration {
    /// Returns nil unless the whole text is a valid duration. Units must appear in descending order.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [
            ("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000),
            ("m", 60_000), ("s", 1000), ("ms", 1),
        ]
        var rest = Substring(text)
        var total: Int64 = 0
        var lastUnit = -1
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return .zero }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix { $0.isASCII && $0.isLetter }
            // "ms" must not be read as "m" followed by "s".
            let unitText = letters.hasPrefix("ms") ? "ms" : String(letters.prefix(1))
            guard let unitIndex = units.firstIndex(where: { $0.0 == unitText }), unitIndex > lastUnit else { return nil }
            lastUnit = unitIndex
            rest = rest.dropFirst(unitText.count)
            let (product, overflow) = value.multipliedReportingOverflow(by: units[unitIndex].1)
            guard !overflow else { return nil }
            let (sum, sumOverflow) = total.addingReportingOverflow(product)
            guard !sumOverflow else { return nil }
            total = sum
        }
        return .milliseconds(total)
    }
}
