/// Content-coding negotiation (RFC 9110, section 12.5.3).
public enum ContentCoding {
    /// Whether an `Accept-Encoding` value accepts gzip: `gzip` or `x-gzip` with a nonzero weight,
    /// or, when neither is named, `*` with a nonzero weight. `gzip;q=0` refuses it. A missing
    /// header gets the uncompressed page.
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzipWeight: Int?
        var wildcardWeight: Int?
        for element in acceptEncoding.split(separator: ",") {
            let parts = element.split(separator: ";", omittingEmptySubsequences: false)
            guard let first = parts.first else { continue }
            let coding = first.trimmingOptionalWhitespace().lowercased()
            guard !coding.isEmpty else { continue }
            var weight = 1000
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2, pair[0].trimmingOptionalWhitespace().lowercased() == "q" else { continue }
                // An unreadable weight refuses the coding rather than guessing.
                weight = parseQValue(pair[1].trimmingOptionalWhitespace()) ?? 0
            }
            switch coding {
            case "gzip", "x-gzip": gzipWeight = max(gzipWeight ?? 0, weight)
            case "*": wildcardWeight = max(wildcardWeight ?? 0, weight)
            default: break
            }
        }
        if let gzipWeight { return gzipWeight > 0 }
        if let wildcardWeight { return wildcardWeight > 0 }
        return false
    }

    /// Parses a qvalue (`0`, `0.5`, `1`, `1.000`) into thousandths; nil when it is not one.
    static func parseQValue(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        var thousandths = first == UInt8(ascii: "1") ? 1000 : 0
        guard bytes.count > 1 else { return thousandths }
        guard bytes[1] == UInt8(ascii: "."), bytes.count <= 5 else { return nil }
        var scale = 100
        for byte in bytes.dropFirst(2) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            thousandths += Int(byte - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        return thousandths <= 1000 ? thousandths : nil
    }
}

extension Substring {
    /// Trims spaces and horizontal tabs (HTTP's optional whitespace).
    func trimmingOptionalWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
