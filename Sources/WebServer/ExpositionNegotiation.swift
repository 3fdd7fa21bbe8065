/// Chooses between the text format 0.0.4 and OpenMetrics 1.0.0 from an `Accept` header (RFC 9110, section 12.5.1).
///
/// OpenMetrics is chosen when `application/openmetrics-text` is named with `version=1.0.0` or no
/// version, with a nonzero weight at least that of the text format. The text format's weight is
/// that of the most specific range naming it: `text/plain` (any version), else `text/*`, else `*/*`.
/// Wildcards never select OpenMetrics, and anything unreadable, or no header, gets the text format.
/// Prometheus 2.x and 3.x both ask for OpenMetrics 1.0.0 first by default.
public enum ExpositionNegotiation {
    /// An exposition format.
    public enum Format: Sendable, Equatable {
        /// `text/plain; version=0.0.4`.
        case text
        /// `application/openmetrics-text; version=1.0.0`.
        case openMetrics
    }

    /// The format to serve for an `Accept` header value.
    public static func format(forAccept accept: String?) -> Format {
        guard let accept else { return .text }
        var openMetricsWeight = 0
        var plainWeight: Int?
        var textWildcardWeight: Int?
        var anyWeight: Int?
        for element in accept.split(separator: ",") {
            let parts = element.split(separator: ";", omittingEmptySubsequences: false)
            guard let first = parts.first else { continue }
            let range = first.trimmingOptionalWhitespace().lowercased()
            var weight = 1000
            var version: String?
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2 else { continue }
                let name = pair[0].trimmingOptionalWhitespace().lowercased()
                var value = pair[1].trimmingOptionalWhitespace()
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
                switch name {
                case "q": weight = ContentCoding.parseQValue(value) ?? 0
                case "version": version = String(value)
                default: break
                }
            }
            switch range {
            case "application/openmetrics-text":
                if version == nil || version == "1.0.0" { openMetricsWeight = max(openMetricsWeight, weight) }
            case "text/plain": plainWeight = max(plainWeight ?? 0, weight)
            case "text/*": textWildcardWeight = max(textWildcardWeight ?? 0, weight)
            case "*/*": anyWeight = max(anyWeight ?? 0, weight)
            default: break
            }
        }
        let textWeight = plainWeight ?? textWildcardWeight ?? anyWeight ?? 0
        return openMetricsWeight > 0 && openMetricsWeight >= textWeight ? .openMetrics : .text
    }
}
