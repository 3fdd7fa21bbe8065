/// Content-coding negotiation (RFC 9110, section 12.5.3).
public enum ContentCoding {
    /// Whether an `Accept-Encoding` value accepts gzip: `gzip` or `x-gzip` with a nonzero weight,
    /// or, when neither is named, `*` with a nonzero weight. `gzip;q=0` refuses it. A missing
    /// header gets the uncompressed page.
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzipWeight: Int?
        var wildcardWeight: Int?
        for element in HeaderListElement.elements(of: acceptEncoding) where !element.value.isEmpty {
            let weight = element.weight(allowingQuotes: false)
            switch element.value {
            case "gzip", "x-gzip": gzipWeight = max(gzipWeight ?? 0, weight)
            case "*": wildcardWeight = max(wildcardWeight ?? 0, weight)
            default: break
            }
        }
        if let gzipWeight { return gzipWeight > 0 }
        if let wildcardWeight { return wildcardWeight > 0 }
        return false
    }
}
