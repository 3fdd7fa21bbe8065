// libFuzzer entry point for the exposition encoders (Sources/Exposition, compiled into this
// binary by build.sh): the Prometheus text format 0.0.4 and OpenMetrics 1.0.0.
//
// The input bytes are turned into metric families: valid metric and label names (with the
// suffixes OpenMetrics treats specially: _total, _info, _seconds, _bytes), arbitrary label values
// and HELP text (any Unicode: quotes, backslashes, line breaks, NUL, U+FFFD), any type, arbitrary
// values (every Double bit pattern: NaN, ±Inf, -0, subnormals), histograms and created times.
// They are encoded with TextFormat and with OpenMetricsFormat, and each output is parsed back by
// a small strict parser below, which must give exactly the same families: names, HELP, types,
// units, labels in order, values, buckets and (OpenMetrics) created times to the millisecond.

@_cdecl("LLVMFuzzerTestOneInput")
public func expositionFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = ByteReader(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    let families = makeFamilies(&input)
    let written = families.filter { !$0.metrics.isEmpty }

    checkRoundTrip(
        of: "text format", output: TextFormat.encode(families), parse: { try StrictParser($0).parse() },
        expected: written.map { ParsedFamily(expecting: $0, openMetrics: false) })
    checkRoundTrip(
        of: "OpenMetrics", output: OpenMetricsFormat.encode(families), parse: { try OpenMetricsParser($0).parse() },
        expected: written.map { ParsedFamily(expecting: $0, openMetrics: true) })
    return 0
}

/// Parses an encoder's output back and requires exactly the families that were encoded.
func checkRoundTrip(of format: String, output: String, parse: (String) throws -> [ParsedFamily], expected: [ParsedFamily]) {
    let parsed: [ParsedFamily]
    do {
        parsed = try parse(output)
    } catch {
        fatalError("the \(format) output does not parse: \(error)\n\(output.debugDescription)")
    }
    require(parsed == expected, "\(format) round trip differs:\n\(output.debugDescription)\nexpected \(expected)\nparsed \(parsed)")
}

// MARK: - Families from bytes

struct ByteReader {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isEmpty: Bool { index >= bytes.count }

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func int(below bound: Int) -> Int { Int(byte()) % bound }

    /// A string of up to `max` bytes, read as UTF-8 with invalid sequences replaced by U+FFFD.
    mutating func text(max: Int) -> String {
        let count = min(int(below: max + 1), bytes.count - min(index, bytes.count))
        let slice = bytes[index..<(index + count)]
        index += count
        return String(decoding: slice, as: UTF8.self)
    }

    /// A Double from 8 bytes: any bit pattern. Or, half of the time, a small integer, a simple
    /// fraction, or a time near now with a fraction of a second.
    mutating func double() -> Double {
        switch byte() % 5 {
        case 0: return Double(Int(byte()) - 128)
        case 1: return Double(Int(byte()) - 128) / Double(Int(byte()) + 1)
        case 2: return 1_795_423_860 + Double(Int(byte()) - 128) / Double(Int(byte()) + 1)
        default:
            var bits: UInt64 = 0
            for _ in 0..<8 { bits = bits << 8 | UInt64(byte()) }
            return Double(bitPattern: bits)
        }
    }

    /// A valid metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no colon in label names).
    mutating func name(colons: Bool) -> String {
        let first = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_" + (colons ? ":" : ""))
        let rest = first + Array("0123456789")
        var name = String(first[int(below: first.count)])
        for _ in 0..<int(below: 12) { name.append(rest[int(below: rest.count)]) }
        return name
    }
}

func makeFamilies(_ input: inout ByteReader) -> [MetricFamily] {
    var families: [MetricFamily] = []
    var used: Set<String> = []
    for familyIndex in 0..<(1 + input.int(below: 4)) {
        let type: MetricType = [.counter, .gauge, .histogram][input.int(below: 3)]
        // Unique names, also once OpenMetrics drops _total or _info (the index stays at the end of
        // what is left), and no family may end in a suffix that a histogram's series take.
        let suffixes = ["", "_total", "_info", "_seconds", "_bytes", "_seconds_total", "_bytes_total", "_seconds_info"]
        let name = input.name(colons: true) + "_f\(familyIndex)" + suffixes[input.int(below: suffixes.count)]
        guard used.insert(name).inserted else { continue }
        var family = MetricFamily(name: name, help: input.text(max: 40), type: type)
        for _ in 0..<input.int(below: 4) {
            var labels: [Label] = []
            var labelNames: Set<String> = []
            for _ in 0..<input.int(below: 4) {
                let labelName = input.name(colons: false)
                // `le` is the bucket label; names starting with `__` are reserved.
                guard labelName != "le", !labelName.hasPrefix("__"), labelNames.insert(labelName).inserted else { continue }
                labels.append(Label(labelName, input.text(max: 24)))
            }
            let created: Double? = input.byte() % 2 == 0 ? nil : input.double()
            if type == .histogram {
                var bounds: [Double] = []
                for _ in 0..<input.int(below: 5) { bounds.append(input.double()) }
                var histogram = Histogram(upperBounds: bounds)
                for _ in 0..<input.int(below: 6) { histogram.observe(input.double()) }
                family.metrics.append(Metric(labels: labels, histogram: histogram, created: created))
            } else {
                // An _info gauge is an OpenMetrics info family only while every value is 1.
                let value = name.hasSuffix("_info") && input.byte() % 2 == 0 ? 1 : input.double()
                family.metrics.append(Metric(labels: labels, value: value, created: created))
            }
        }
        families.append(family)
        if input.isEmpty { break }
    }
    return families
}

// MARK: - What the encoder should have written, and what the parser read

enum Value: Equatable, CustomStringConvertible {
    case number(Double)
    case histogram(bounds: [Double], cumulative: [UInt64], count: UInt64, sum: Double)

    static func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

    static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.number(let a), .number(let b)): return same(a, b)
        case let (.histogram(b1, c1, n1, s1), .histogram(b2, c2, n2, s2)):
            return b1.count == b2.count && zip(b1, b2).allSatisfy { same($0, $1) } && c1 == c2 && n1 == n2 && same(s1, s2)
        default: return false
        }
    }

    var description: String {
        switch self {
        case .number(let value): return "\(value)"
        case let .histogram(bounds, cumulative, count, sum): return "hist(\(bounds) \(cumulative) n=\(count) sum=\(sum))"
        }
    }
}

struct ParsedSeries: Equatable, CustomStringConvertible {
    var labels: [Label]
    var value: Value
    /// OpenMetrics' `_created` sample, if any.
    var created: Double? = nil

    static func == (lhs: ParsedSeries, rhs: ParsedSeries) -> Bool {
        lhs.labels == rhs.labels && lhs.value == rhs.value && sameTime(lhs.created, rhs.created)
    }

    /// Created times are written to the millisecond: equal within half a millisecond, plus the
    /// rounding of a Double of that size.
    static func sameTime(_ a: Double?, _ b: Double?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        if Value.same(a, b) { return true }
        return a.isFinite && b.isFinite && abs(a - b) <= 0.0005 + 4 * max(a.ulp, b.ulp)
    }

    var description: String { "\(labels) \(value)" + (created.map { " created=\($0)" } ?? "") }
}

struct ParsedFamily: Equatable {
    var name: String
    var help: String
    var type: String
    var unit: String?
    var series: [ParsedSeries]

    init(name: String, help: String, type: String, unit: String? = nil, series: [ParsedSeries]) {
        self.name = name
        self.help = help
        self.type = type
        self.unit = unit
        self.series = series
    }

    /// What a family should read back as. For OpenMetrics, as OpenMetricsFormat documents it: a
    /// counter's family name drops `_total` and its series carry `_created`; a gauge `x_info`
    /// whose values are all 1 is the info family `x`; histograms carry `_created`; a family name
    /// (counters: without `_total`) ending in `_seconds` or `_bytes` has that unit.
    init(expecting family: MetricFamily, openMetrics: Bool) {
        name = family.name
        help = family.help
        type = family.type.rawValue
        unit = nil
        var hasCreated = false
        if openMetrics {
            switch family.type {
            case .counter:
                if name.hasSuffix("_total") { name.removeLast(6) }
                hasCreated = true
            case .gauge:
                if name.hasSuffix("_info"), name.count > 5, family.metrics.allSatisfy({ $0.value == .number(1) }) {
                    name.removeLast(5)
                    type = "info"
                }
            case .histogram:
                hasCreated = true
            }
            if type != "info" {
                let familyName = name
                unit = ["seconds", "bytes"].first { familyName.hasSuffix("_" + $0) && familyName.count > $0.count + 1 }
            }
        }
        series = family.metrics.map { metric in
            let created = hasCreated ? metric.created : nil
            switch metric.value {
            case .number(let value):
                return ParsedSeries(labels: metric.labels, value: .number(value), created: created)
            case .histogram(let histogram):
                return ParsedSeries(
                    labels: metric.labels,
                    value: .histogram(
                        bounds: histogram.upperBounds, cumulative: histogram.cumulativeCounts, count: histogram.count,
                        sum: histogram.sum),
                    created: created)
            }
        }
    }
}

// MARK: - Strict parsers of the text format 0.0.4 and of OpenMetrics 1.0.0, as far as the encoders write them

// They work on Unicode scalars, as Prometheus works on bytes: Swift's Characters would merge a
// quote or a space with a following combining mark, and "\r\n" into one Character.

struct ParseError: Error, CustomStringConvertible {
    var description: String
}

typealias Scalars = ArraySlice<Unicode.Scalar>

struct Sample {
    var name: String
    var labels: [Label]
    var value: Double
    var valueText: String
}

/// The line syntax that both formats share.
enum Syntax {
    /// The lines of a text that must end with a line feed.
    /// A family's samples: the lines from `index` up to the next `#` line, at least one.
    static func samples(
        _ lines: some RandomAccessCollection<Scalars>, from index: inout Int, family name: String
    ) throws(ParseError) -> [Sample] {
        var samples: [Sample] = []
        while index < lines.count, lines[lines.index(lines.startIndex, offsetBy: index)].first != "#" {
            samples.append(try sample(lines[lines.index(lines.startIndex, offsetBy: index)]))
            index += 1
        }
        guard !samples.isEmpty else { throw ParseError(description: "family \(name) without samples") }
        return samples
    }

    static func lines(_ text: String) -> [Scalars] {
        require(text.isEmpty || text.hasSuffix("\n"), "output does not end with a line feed")
        var lines = Array(text.unicodeScalars).split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()  // after the final line feed
        return lines
    }

    static func string(_ scalars: Scalars) -> String {
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars)
        return text
    }

    /// `# HELP name text`, with the text unescaped: the name and the text.
    static func help(_ line: Scalars, quotes: Bool, at index: Int) throws(ParseError) -> (name: String, help: String) {
        guard line.starts(with: "# HELP ".unicodeScalars) else {
            throw ParseError(description: "expected HELP at line \(index + 1)")
        }
        let rest = line.dropFirst(7)
        guard let space = rest.firstIndex(of: " ") else { throw ParseError(description: "HELP without text") }
        let name = string(rest[..<space])
        try checkName(name, colons: true)
        return (name, try unescape(rest[(space + 1)...], quotes: quotes))
    }

    /// `# TYPE name type`: the type, one of `types`.
    static func type(_ line: Scalars?, of name: String, types: [String], at index: Int) throws(ParseError) -> String {
        let text = line.map(string) ?? ""
        guard let type = types.first(where: { text == "# TYPE \(name) \($0)" }) else {
            throw ParseError(description: "expected TYPE of \(name) at line \(index + 1)")
        }
        return type
    }

    static func exactCount(_ value: Double) throws(ParseError) -> UInt64 {
        guard value >= 0, value == value.rounded(), value < 1.8e19, let count = UInt64(exactly: value) else {
            throw ParseError(description: "count \(value) is not a whole number")
        }
        return count
    }

    /// `name{label="value",…} value`
    static func sample(_ line: Scalars) throws(ParseError) -> Sample {
        var rest = line
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        let name = string(rest[..<nameEnd])
        try checkName(name, colons: true)
        rest = rest[nameEnd...]
        var labels: [Label] = []
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                if !labels.isEmpty {
                    guard rest.first == "," else { throw ParseError(description: "expected , between labels") }
                    rest = rest.dropFirst()
                }
                guard let equals = rest.firstIndex(of: "=") else { throw ParseError(description: "label without =") }
                let labelName = string(rest[..<equals])
                try checkName(labelName, colons: false)
                rest = rest[(equals + 1)...]
                guard rest.first == "\"" else { throw ParseError(description: "label value not quoted") }
                rest = rest.dropFirst()
                // The closing quote is the first one not escaped.
                var end = rest.startIndex
                var escaped = false
                while true {
                    guard end < rest.endIndex else { throw ParseError(description: "unterminated label value") }
                    let scalar = rest[end]
                    if escaped {
                        escaped = false
                    } else if scalar == "\\" {
                        escaped = true
                    } else if scalar == "\"" {
                        break
                    }
                    end += 1
                }
                labels.append(Label(labelName, try unescape(rest[..<end], quotes: true)))
                rest = rest[(end + 1)...]
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw ParseError(description: "no space before the value") }
        let valueText = rest.dropFirst()
        guard let value = number(valueText) else { throw ParseError(description: "bad value \(string(valueText))") }
        return Sample(name: name, labels: labels, value: value, valueText: string(valueText))
    }

    static func number(_ scalars: some Collection<Unicode.Scalar>) -> Double? {
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars)
        switch text {
        case "NaN": return .nan
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            // Swift's Double(_:) also takes "inf", "nan" and hex floats; the formats do not.
            guard !text.isEmpty, text.unicodeScalars.allSatisfy({ "0123456789.eE+-".unicodeScalars.contains($0) }) else {
                return nil
            }
            return Double(text)
        }
    }

    static func checkName(_ name: String, colons: Bool) throws(ParseError) {
        let scalars = Array(name.unicodeScalars)
        func letter(_ s: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" || (colons && s == ":")
        }
        guard let first = scalars.first, letter(first),
              scalars.dropFirst().allSatisfy({ letter($0) || ("0"..."9").contains($0) })
        else { throw ParseError(description: "bad name \(name.debugDescription)") }
    }

    /// Undoes the escapes: `\\` and `\n` everywhere, `\"` in label values (and, in OpenMetrics,
    /// in HELP). Anything else after a backslash, a raw line feed, or (where `\"` is the escape)
    /// a raw quote is an error.
    static func unescape(_ text: Scalars, quotes: Bool) throws(ParseError) -> String {
        var output = ""
        var escaped = false
        for scalar in text {
            if escaped {
                switch scalar {
                case "\\": output += "\\"
                case "n": output += "\n"
                case "\"" where quotes: output += "\""
                default: throw ParseError(description: "bad escape \\\(scalar)")
                }
                escaped = false
            } else if scalar == "\\" {
                escaped = true
            } else if scalar == "\n" || (quotes && scalar == "\"") {
                throw ParseError(description: "unescaped \(scalar.escaped(asASCII: true))")
            } else {
                output.unicodeScalars.append(scalar)
            }
        }
        guard !escaped else { throw ParseError(description: "trailing backslash") }
        return output
    }

    /// A histogram's series: `_bucket` lines with `le` last, ending with `le="+Inf"`, then the
    /// series named in `after` (in that order, with the same labels); their values are returned.
    static func histogram(
        _ samples: [Sample], from index: inout Int, name: String, after: [String]
    ) throws(ParseError) -> (labels: [Label], value: Value, after: [Double]) {
        var bounds: [Double] = []
        var cumulative: [UInt64] = []
        var labels: [Label]?
        var infinity: UInt64?
        while index < samples.count, samples[index].name == name + "_bucket" {
            var bucketLabels = samples[index].labels
            guard let le = bucketLabels.popLast(), le.name == "le" else { throw ParseError(description: "bucket without le last") }
            if let labels, labels != bucketLabels { throw ParseError(description: "bucket labels change within a series") }
            labels = bucketLabels
            let count = try exactCount(samples[index].value)
            if le.value == "+Inf" {
                infinity = count
                index += 1
                break
            }
            guard let bound = number(le.value.unicodeScalars[...]), bound.isFinite else {
                throw ParseError(description: "bad le \(le.value)")
            }
            bounds.append(bound)
            cumulative.append(count)
            index += 1
        }
        guard let labels, let infinity, index + after.count <= samples.count,
              zip(samples[index...], after).allSatisfy({ $0.name == name + $1 && $0.labels == labels })
        else { throw ParseError(description: "histogram \(name) is not buckets, +Inf, \(after.joined(separator: ", "))") }
        let values = samples[index..<(index + after.count)].map(\.value)
        index += after.count
        guard zip(cumulative, cumulative.dropFirst()).allSatisfy({ $0 <= $1 }), (cumulative.last ?? 0) <= infinity,
              zip(bounds, bounds.dropFirst()).allSatisfy({ $0 < $1 })
        else { throw ParseError(description: "buckets are not cumulative or bounds not increasing") }
        let countIndex = after.firstIndex(of: "_count") ?? 0, sumIndex = after.firstIndex(of: "_sum") ?? 0
        guard try exactCount(values[countIndex]) == infinity else {
            throw ParseError(description: "_count differs from the +Inf bucket")
        }
        return (labels, .histogram(bounds: bounds, cumulative: cumulative, count: infinity, sum: values[sumIndex]), values)
    }
}

/// The text format 0.0.4: per family `# HELP`, `# TYPE`, then its samples.
struct StrictParser {
    private let lines: [Scalars]

    init(_ text: String) { lines = Syntax.lines(text) }

    func parse() throws(ParseError) -> [ParsedFamily] {
        var families: [ParsedFamily] = []
        var index = 0
        while index < lines.count {
            let (name, help) = try Syntax.help(lines[index], quotes: false, at: index)
            index += 1
            let type = try Syntax.type(index < lines.count ? lines[index] : nil, of: name, types: ["counter", "gauge", "histogram"], at: index)
            index += 1
            let samples = try Syntax.samples(lines, from: &index, family: name)
            families.append(ParsedFamily(name: name, help: help, type: type, series: try group(samples, name: name, type: type)))
        }
        return families
    }

    /// Turns a family's samples back into series; histogram samples come as buckets, then _sum, then _count.
    private func group(_ samples: [Sample], name: String, type: String) throws(ParseError) -> [ParsedSeries] {
        guard type == "histogram" else {
            return try samples.map { sample throws(ParseError) in
                guard sample.name == name else { throw ParseError(description: "sample \(sample.name) in family \(name)") }
                return ParsedSeries(labels: sample.labels, value: .number(sample.value))
            }
        }
        var series: [ParsedSeries] = []
        var index = 0
        while index < samples.count {
            let (labels, value, _) = try Syntax.histogram(samples, from: &index, name: name, after: ["_sum", "_count"])
            series.append(ParsedSeries(labels: labels, value: value))
        }
        return series
    }
}

/// OpenMetrics 1.0.0: per family `# HELP`, `# TYPE`, an optional `# UNIT`, then its samples; `# EOF` at the end.
struct OpenMetricsParser {
    private let lines: [Scalars]

    init(_ text: String) { lines = Syntax.lines(text) }

    func parse() throws(ParseError) -> [ParsedFamily] {
        guard let last = lines.last, Syntax.string(last) == "# EOF" else { throw ParseError(description: "no # EOF at the end") }
        let lines = self.lines.dropLast()
        var families: [ParsedFamily] = []
        var names: Set<String> = []
        var index = 0
        while index < lines.count {
            let (name, help) = try Syntax.help(lines[index], quotes: true, at: index)
            guard names.insert(name).inserted else { throw ParseError(description: "family \(name) twice") }
            index += 1
            let type = try Syntax.type(
                index < lines.count ? lines[index] : nil, of: name, types: ["counter", "gauge", "histogram", "info"], at: index)
            index += 1
            var unit: String?
            if index < lines.count, lines[index].starts(with: "# UNIT \(name) ".unicodeScalars) {
                let text = Syntax.string(lines[index].dropFirst("# UNIT \(name) ".unicodeScalars.count))
                // The unit is the end of the family name (OpenMetrics requires it), never an info's.
                guard !text.isEmpty, name.hasSuffix("_" + text), type != "info",
                      (try? Syntax.checkName(text, colons: false)) != nil
                else { throw ParseError(description: "bad UNIT \(text) of \(name)") }
                unit = text
                index += 1
            }
            let samples = try Syntax.samples(lines, from: &index, family: name)
            families.append(
                ParsedFamily(name: name, help: help, type: type, unit: unit, series: try group(samples, name: name, type: type)))
        }
        return families
    }

    private func group(_ samples: [Sample], name: String, type: String) throws(ParseError) -> [ParsedSeries] {
        var series: [ParsedSeries] = []
        var index = 0
        while index < samples.count {
            let sample = samples[index]
            switch type {
            case "gauge", "info":
                let expected = type == "info" ? name + "_info" : name
                guard sample.name == expected else { throw ParseError(description: "sample \(sample.name) in \(type) \(name)") }
                guard type != "info" || sample.valueText == "1" else { throw ParseError(description: "info value \(sample.valueText)") }
                series.append(ParsedSeries(labels: sample.labels, value: .number(sample.value)))
                index += 1
            case "counter":
                guard sample.name == name + "_total" else { throw ParseError(description: "sample \(sample.name) in counter \(name)") }
                index += 1
                let created = try self.created(samples, at: &index, name: name, labels: sample.labels)
                series.append(ParsedSeries(labels: sample.labels, value: .number(sample.value), created: created))
            default:
                let (labels, value, _) = try Syntax.histogram(samples, from: &index, name: name, after: ["_count", "_sum"])
                let created = try self.created(samples, at: &index, name: name, labels: labels)
                series.append(ParsedSeries(labels: labels, value: value, created: created))
            }
        }
        return series
    }

    /// The `_created` sample of the series with `labels`, if it comes next: a time with at most
    /// three decimals (OpenMetricsFormat writes milliseconds).
    private func created(_ samples: [Sample], at index: inout Int, name: String, labels: [Label]) throws(ParseError) -> Double? {
        guard index < samples.count, samples[index].name == name + "_created" else { return nil }
        let sample = samples[index]
        guard sample.labels == labels else { throw ParseError(description: "_created of another series") }
        let text = sample.valueText
        if !text.contains("e"), !text.contains("E"), let dot = text.firstIndex(of: ".") {
            guard (1...3).contains(text[text.index(after: dot)...].count) else {
                throw ParseError(description: "created time \(text) is not in milliseconds")
            }
        }
        index += 1
        return sample.value
    }
}
