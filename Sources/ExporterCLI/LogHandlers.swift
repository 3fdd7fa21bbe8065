import FoundationEssentials
public import Logging
import PrefectAPI

/// How log lines are written to standard error.
public enum LogFormat: String, Sendable {
    /// `ts=… level=info msg="…" key=value`, as Prometheus' own components log.
    case logfmt
    /// One JSON object per line.
    case json
}

/// A swift-log handler writing logfmt or JSON lines to standard error.
public struct StructuredLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let format: LogFormat
    private let label: String

    public init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Self.timestamp()), ("level", Self.levelName(event.level)), ("msg", "\(event.message)"),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            if let value = merged[key] { fields.append((key, "\(value)")) }
        }
        if event.level >= .warning || logLevel <= .debug {
            fields.append(("source", "\(URL(fileURLWithPath: event.file).lastPathComponent):\(event.line)"))
        }
        let line: String
        switch format {
        case .logfmt: line = fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json: line = "{" + fields.map { "\(Self.jsonString($0.0)):\(Self.jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        StandardStream.error.write(Array((line + "\n").utf8))
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: return "debug"
        case .info, .notice: return "info"
        case .warning: return "warn"
        case .error, .critical: return "error"
        }
    }

    /// `2026-11-23T08:51:26.123Z` (UTC, milliseconds). Formatted by hand: Foundation's
    /// ISO8601DateFormatter would load ICU's data into memory for the first log line.
    static func timestamp(_ seconds: Double = Date().timeIntervalSince1970) -> String {
        let milliseconds = (seconds * 1000).rounded(.down) / 1000
        return String(PrefectTimestamp.format(milliseconds).prefix(23)) + "Z"
    }

    /// Quotes a logfmt value when it holds spaces, quotes, `=` or control characters.
    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains {
            $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7f
        }
        return needsQuotes ? jsonString(value) : value
    }

    static func jsonString(_ value: String) -> String {
        var output = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output + "\""
    }
}
