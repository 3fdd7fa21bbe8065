import ExporterCLI
import Testing

@Suite("PrometheusDuration")
struct DurationParserTests {
    static let valid: [(String, Duration)] = [
        ("0", Duration.zero),
        ("0s", .zero),
        ("500ms", .milliseconds(500)),
        ("1ms", .milliseconds(1)),
        ("15s", .seconds(15)),
        ("90s", .seconds(90)),
        ("1m", .seconds(60)),
        ("1h", .seconds(3_600)),
        ("1h30m", .seconds(5_400)),
        ("1m30s", .seconds(90)),
        ("1h0m5s", .seconds(3_605)),
        ("1m1ms", .milliseconds(60_001)),
        ("1s500ms", .milliseconds(1_500)),
        ("2d", .seconds(172_800)),
        ("1w", .seconds(604_800)),
        ("1y", .seconds(31_536_000)),
        ("1y2w3d4h5m6s7ms", .milliseconds(33_019_506_007)),
        ("007s", .seconds(7)),
        ("9223372036854775807ms", .milliseconds(Int64.max)),
    ]

    @Test(arguments: valid)
    func validDurations(text: String, expected: Duration) {
        #expect(PrometheusDuration.parse(text) == expected)
    }

    @Test(arguments: [
        "", "1", "1x", "m", "ms", "s1", "30s1m", "1s1s", "1ms1s", "-1s", "+1s", "1.5s", "1,5s", " 1s", "1s ", "1 s",
        "1S", "1M", "1sx", "1mss", "1ms500", "١s", "１s", "1h-5m", "0x10s", "9223372036854775808ms", "106751991168d",
    ])
    func invalidDurations(text: String) {
        #expect(PrometheusDuration.parse(text) == nil)
    }

    @Test("a sum that overflows Int64 is rejected, not a crash")
    func overflowingSumIsRejected() {
        // 250000000y (7.884e18 ms) + 5000000000w (3.024e18 ms) overflows Int64.
        #expect(PrometheusDuration.parse("250000000y5000000000w") == nil)
    }
}
