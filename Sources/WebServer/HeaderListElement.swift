/// One element of a comma-separated header such as `Accept` or `Accept-Encoding`
/// (RFC 9110, section 5.6.1): `gzip;q=0.5` or `text/plain; version=0.0.4`.
struct HeaderListElement {
    /// The value before any parameter, trimmed and lowercased: a content coding or a media range.
    let value: String
    /// The `name=value` parameters in order: names trimmed and lowercased, values trimmed, quotes kept.
    let parameters: [(name: String, value: Substring)]

    /// The elements of a header value, empty ones included (with an empty `value`).
    static func elements(of header: String) -> [HeaderListElement] {
        header.split(separator: ",").map { element in
            let parts = element.split(separator: ";", omittingEmptySubsequences: false)
            let parameters = parts.dropFirst().compactMap { parameter -> (name: String, value: Substring)? in
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2 else { return nil }
                return (pair[0].trimmingOptionalWhitespace().lowercased(), pair[1].trimmingOptionalWhitespace())
            }
            return HeaderListElement(value: (parts.first ?? "").trimmingOptionalWhitespace().lowercased(), parameters: parameters)
        }
    }

    /// The last parameter of that name, without surrounding double quotes.
    func parameter(_ name: String) -> Substring? {
        guard var value = parameters.last(where: { $0.name == name })?.value else { return nil }
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
        return value
    }

    /// The weight (`q`) in thousandths: 1000 without one, 0 when it is not a qvalue, so that an
    /// unreadable weight refuses rather than guesses. A quoted weight is read only when
    /// `allowingQuotes` (media ranges tolerate it; content codings never did).
    func weight(allowingQuotes: Bool) -> Int {
        let raw = parameters.last(where: { $0.name == "q" })?.value
        guard let value = allowingQuotes ? parameter("q") : raw else { return 1000 }
        return Self.parseQValue(value) ?? 0
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
    fileprivate func trimmingOptionalWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
