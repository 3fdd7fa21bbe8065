// libFuzzer entry point for the Prometheus text format (Sources/Exposition, compiled into this
// binary by build.sh).
//
// The input bytes are turned into metric families: valid metric and label names, arbitrary label
// values and HELP text (any Unicode: quotes, backslashes, line breaks, NUL, U+FFFD), any type, and
// arbitrary values (every Double bit pattern: NaN, ±Inf, -0, subnormals) and histograms. They are
// encoded with TextFormat, and the output is parsed back by the small strict parser below, which
// must give exactly the same families: names, HELP, types, labels in order, values and buckets.

@_cdecl("LLVMFuzzerTestOneInput")
public func expositionFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = ByteReader(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    let families = makeFamilies(&input)
    let text = TextFormat.encode(families)
    let parsed: [ParsedFamily]
    do {
        parsed = try StrictParser(text).parse()
    } catch {
        preconditionFailure("the encoder's output does not parse: \(error)\n\(text.debugDescription)")
    }
    let expected = families.filter { !$0.metrics.isEmpty }.map(ParsedFamily.init(expecting:))
    precondition(parsed == expected, "round trip differs:\n\(text.debugDescription)\nexpected \(expected)\nparsed \(parsed)")
    return 0
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

    /// A Double from 8 bytes: any bit pattern. Or, half of the time, a small integer or a simple fraction.
    mutating func double() -> Double {
        switch byte() % 4 {
        case 0: return Double(Int(byte()) - 128)
        case 1: return Double(Int(byte()) - 128) / Double(Int(byte()) + 1)
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
        // Unique names, and no family may end in a suffix that a histogram's series take.
        let name = input.name(colons: true) + "_f\(familyIndex)"
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
            if type == .histogram {
                var bounds: [Double] = []
                for _ in 0..<input.int(below: 5) { bounds.append(input.double()) }
                var histogram = Histogram(upperBounds: bounds)
                for _ in 0..<input.int(below: 6) { histogram.observe(input.double()) }
                family.metrics.append(Metric(labels: labels, histogram: histogram))
            } else {
                family.metrics.append(Metric(labels: labels, value: input.double()))
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

struct ParsedSeries: Equatable {
    var labels: [Label]
    var value: Value
}

struct ParsedFamily: Equatable {
    var name: String
    var help: String
    var type: String
    var series: [ParsedSeries]

    init(name: String, help: String, type: String, series: [ParsedSeries]) {
        self.name = name
        self.help = help
        self.type = type
        self.series = series
    }

    init(expecting family: MetricFamily) {
        name = family.name
        help = family.help
        type = family.type.rawValue
        series = family.metrics.map { metric in
            switch metric.value {
            case .number(let value):
                return ParsedSeries(labels: metric.labels, value: .number(value))
            case .histogram(let histogram):
                return ParsedSeries(
                    labels: metric.labels,
                    value: .histogram(
                        bounds: histogram.upperBounds, cumulative: histogram.cumulativeCounts, count: histogram.count,
                        sum: histogram.sum))
            }
        }
    }
}

// MARK: - A strict parser of the text format 0.0.4, as far as TextFormat writes it

// It works on Unicode scalars, as Prometheus works on bytes: Swift's Characters would merge a
// quote or a space with a following combining mark, and "\r\n" into one Character.

struct ParseError: Error, CustomStringConvertible {
    var description: String
}

typealias Scalars = ArraySlice<Unicode.Scalar>

struct StrictParser {
    private let lines: [Scalars]

    init(_ text: String) {
        precondition(text.isEmpty || text.hasSuffix("\n"), "output does not end with a line feed")
        var lines = Array(text.unicodeScalars).split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()  // after the final line feed
        self.lines = lines
    }

    func parse() throws(ParseError) -> [ParsedFamily] {
        var families: [ParsedFamily] = []
        var index = 0
        while index < lines.count {
            // # HELP name text
            let helpLine = lines[index]
            guard helpLine.starts(with: "# HELP ".unicodeScalars) else {
                throw ParseError(description: "expected HELP at line \(index + 1)")
            }
            let helpRest = helpLine.dropFirst(7)
            guard let space = helpRest.firstIndex(of: " ") else { throw ParseError(description: "HELP without text") }
            let name = string(helpRest[..<space])
            try checkName(name, colons: true)
            let help = try unescape(helpRest[(space + 1)...], quotes: false)
            index += 1
            // # TYPE name type
            let typeLine = index < lines.count ? string(lines[index]) : ""
            guard ["counter", "gauge", "histogram"].contains(where: { typeLine == "# TYPE \(name) \($0)" }) else {
                throw ParseError(description: "expected TYPE of \(name) at line \(index + 1)")
            }
            let type = String(typeLine.split(separator: " ").last ?? "")
            index += 1
            var samples: [(name: String, labels: [Label], value: Double)] = []
            while index < lines.count, lines[index].first != "#" {
                samples.append(try sample(lines[index]))
                index += 1
            }
            guard !samples.isEmpty else { throw ParseError(description: "family \(name) without samples") }
            families.append(ParsedFamily(name: name, help: help, type: type, series: try group(samples, name: name, type: type)))
        }
        return families
    }

    private func string(_ scalars: Scalars) -> String {
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars)
        return text
    }

    /// Turns a family's samples back into series; histogram samples come as buckets, then _sum, then _count.
    private func group(
        _ samples: [(name: String, labels: [Label], value: Double)], name: String, type: String
    ) throws(ParseError) -> [ParsedSeries] {
        guard type == "histogram" else {
            return try samples.map { sample throws(ParseError) in
                guard sample.name == name else { throw ParseError(description: "sample \(sample.name) in family \(name)") }
                return ParsedSeries(labels: sample.labels, value: .number(sample.value))
            }
        }
        var series: [ParsedSeries] = []
        var index = 0
        while index < samples.count {
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
            guard let labels, let infinity, index + 1 < samples.count,
                  samples[index].name == name + "_sum", samples[index].labels == labels,
                  samples[index + 1].name == name + "_count", samples[index + 1].labels == labels
            else { throw ParseError(description: "histogram \(name) is not buckets, +Inf, _sum, _count") }
            let count = try exactCount(samples[index + 1].value)
            guard count == infinity else { throw ParseError(description: "_count differs from the +Inf bucket") }
            guard zip(cumulative, cumulative.dropFirst()).allSatisfy({ $0 <= $1 }), (cumulative.last ?? 0) <= count,
                  zip(bounds, bounds.dropFirst()).allSatisfy({ $0 < $1 })
            else { throw ParseError(description: "buckets are not cumulative or bounds not increasing") }
            series.append(ParsedSeries(
                labels: labels, value: .histogram(bounds: bounds, cumulative: cumulative, count: count, sum: samples[index].value)))
            index += 2
        }
        return series
    }

    private func exactCount(_ value: Double) throws(ParseError) -> UInt64 {
        guard value >= 0, value == value.rounded(), value < 1.8e19, let count = UInt64(exactly: value) else {
            throw ParseError(description: "count \(value) is not a whole number")
        }
        return count
    }

    /// `name{label="value",…} value`
    private func sample(_ line: Scalars) throws(ParseError) -> (name: String, labels: [Label], value: Double) {
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
        return (name, labels, value)
    }

    private func number(_ scalars: some Collection<Unicode.Scalar>) -> Double? {
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars)
        switch text {
        case "NaN": return .nan
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            // Swift's Double(_:) also takes "inf", "nan" and hex floats; the format does not.
            guard !text.isEmpty, text.unicodeScalars.allSatisfy({ "0123456789.eE+-".unicodeScalars.contains($0) }) else {
                return nil
            }
            return Double(text)
        }
    }

    private func checkName(_ name: String, colons: Bool) throws(ParseError) {
        let scalars = Array(name.unicodeScalars)
        func letter(_ s: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" || (colons && s == ":")
        }
        guard let first = scalars.first, letter(first),
              scalars.dropFirst().allSatisfy({ letter($0) || ("0"..."9").contains($0) })
        else { throw ParseError(description: "bad name \(name.debugDescription)") }
    }

    /// Undoes the escapes: `\\` and `\n` everywhere, `\"` in label values. Anything else after a
    /// backslash, a raw line feed, or (in label values) a raw quote is an error.
    private func unescape(_ text: Scalars, quotes: Bool) throws(ParseError) -> String {
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
}
