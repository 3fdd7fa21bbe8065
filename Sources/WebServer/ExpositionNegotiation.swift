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
        for element in HeaderListElement.elements(of: accept) {
            let weight = element.weight(allowingQuotes: true)
            let version = element.parameter("version").map(String.init)
            switch element.value {
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
