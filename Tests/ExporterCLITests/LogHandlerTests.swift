@testable import ExporterCLI
import Logging
import Testing

@Suite("StructuredLogHandler")
struct LogHandlerTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("poll_failed", "poll_failed"),
        ("http://127.0.0.1:4200/api", "http://127.0.0.1:4200/api"),
        ("zürich✓", "zürich✓"),
        ("", #""""#),
        ("two words", #""two words""#),
        ("a=b", #""a=b""#),
        (#"say "hi""#, #""say \"hi\"""#),
        (#"back\slash"#, #""back\\slash""#),
        ("line\nbreak", #""line\nbreak""#),
        ("tab\there", #""tab\there""#),
        ("cr\r", #""cr\r""#),
        ("bell\u{07}", #""bell\u0007""#),
        ("del\u{7F}", #""del\u007f""#),
    ])
    func logfmtValuesAreQuotedOnlyWhenNeeded(raw: String, formatted: String) {
        #expect(StructuredLogHandler.logfmtValue(raw) == formatted)
    }

    @Test(arguments: [
        ("", #""""#),
        ("plain words", #""plain words""#),
        (#"q" b\ n"#, #""q\" b\\ n""#),
        ("\n\r\t", #""\n\r\t""#),
        ("\u{0}\u{1F}\u{7F}", #""\u0000\u001f\u007f""#),
        ("ü 🚀 /", #""ü 🚀 /""#),
    ])
    func jsonStringsAreEscaped(raw: String, formatted: String) {
        #expect(StructuredLogHandler.jsonString(raw) == formatted)
    }

    @Test(arguments: [
        (Logger.Level.trace, "debug"), (.debug, "debug"), (.info, "info"), (.notice, "info"), (.warning, "warn"),
        (.error, "error"), (.critical, "error"),
    ])
    func levelNames(level: Logger.Level, name: String) {
        #expect(StructuredLogHandler.levelName(level) == name)
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        let stamp = StructuredLogHandler.timestamp()
        // 2026-11-23T08:51:26.123Z
        #expect(stamp.count == 24)
        #expect(stamp.hasSuffix("Z"))
        #expect(Array(stamp)[10] == "T")
        #expect(Array(stamp)[19] == ".")
        #expect(StructuredLogHandler.timestamp(1_795_423_886.123_9) == "2026-11-23T08:51:26.123Z")
        #expect(StructuredLogHandler.timestamp(1_795_423_886.999_9) == "2026-11-23T08:51:26.999Z")
        #expect(StructuredLogHandler.timestamp(1_795_423_886) == "2026-11-23T08:51:26.000Z")
    }

    @Test func metadataAndLevelAreStored() {
        var handler = StructuredLogHandler(label: "test", format: .json, level: .warning)
        #expect(handler.logLevel == .warning)
        handler[metadataKey: "url"] = "http://x"
        #expect(handler[metadataKey: "url"] == "http://x")
        #expect(handler.metadata == ["url": "http://x"])
        handler.logLevel = .debug
        #expect(handler.logLevel == .debug)
    }

    @Test func formatsParseFromTheirNames() {
        #expect(LogFormat(rawValue: "logfmt") == .logfmt)
        #expect(LogFormat(rawValue: "json") == .json)
        #expect(LogFormat(rawValue: "JSON") == nil)
    }
}

@Suite("ConfigurationError")
struct ConfigurationErrorTests {
    @Test func descriptionIsOneLineNamingTheSetting() {
        let error = ConfigurationError(setting: "--prefect.timeout", problem: "'x' is not a duration")
        #expect(error.description == "--prefect.timeout: 'x' is not a duration")
        #expect("\(error)" == "--prefect.timeout: 'x' is not a duration")
    }
}
