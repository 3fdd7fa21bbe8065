@testable import PrefectAPI
import Testing

/// 2024-01-02T03:04:05Z.
private let reference = 1_704_164_645.0

@Suite("PrefectTimestamp")
struct TimestampTests {
    @Test(arguments: [
        ("2024-01-02T03:04:05Z", reference),
        ("2024-01-02T03:04:05z", reference),
        ("2024-01-02t03:04:05Z", reference),
        ("2024-01-02T03:04:05+00:00", reference),
        ("2024-01-02T03:04:05-00:00", reference),
        ("2024-01-02T03:04:05+0000", reference),
        ("2024-01-02T03:04:05", reference),
        ("2024-01-02 03:04:05", reference),
        ("2024-01-02 03:04:05+00:00", reference),
        ("2024-01-02T03:04:05-05:30", reference + 19_800),
        ("2024-01-02T03:04:05-0530", reference + 19_800),
        ("2024-01-02T03:04:05+05:30", reference - 19_800),
        ("2024-01-02T03:04:05+0530", reference - 19_800),
        ("2024-01-02T03:04:05+14:00", reference - 50_400),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59Z", -1),
        ("2000-02-29T12:00:00Z", 951_825_600),
        ("2100-03-01T00:00:00Z", 4_107_542_400),
        ("2016-12-31T23:59:60Z", 1_483_228_800),
        ("2026-11-23T08:52:00Z", 1_795_423_920),
    ])
    func parsesWholeSeconds(text: String, expected: Double) {
        #expect(PrefectTimestamp.parse(text) == expected)
    }

    @Test(arguments: [
        ("2024-01-02T03:04:05Z", 0.0),
        ("2024-01-02T03:04:05.5Z", 0.5),
        ("2024-01-02T03:04:05.250Z", 0.25),
        ("2024-01-02T03:04:05.123Z", 0.123),
        ("2024-01-02T03:04:05.123456Z", 0.123456),
        ("2024-01-02T03:04:05.123456789Z", 0.123456789),
        ("2024-01-02T03:04:05.000001+00:00", 0.000001),
        ("2024-01-02T03:04:05.999999", 0.999999),
        ("2024-01-02T03:04:05,75Z", 0.75),
        ("2024-01-02 03:04:05.107891+00:00", 0.107891),
    ])
    func parsesFractions(text: String, fraction: Double) throws {
        let parsed = try #require(PrefectTimestamp.parse(text))
        #expect(abs(parsed - (reference + fraction)) < 1e-6, "\(parsed) vs \(reference + fraction)")
        #expect(parsed.rounded(.down) == reference)
    }

    @Test func fractionWithOffsetAppliesBoth() throws {
        let parsed = try #require(PrefectTimestamp.parse("2026-11-23T04:30:12.5-05:30"))
        #expect(parsed == 1_795_428_012.5)
    }

    @Test(arguments: [
        "", "2024", "2024-01-02", "2024-01-02T03:04", "2024-01-02T03:04:0",
        "2024/01/02T03:04:05Z", "2024-01-02X03:04:05Z", "2024-01-02T03-04-05Z", "2024-01-02T03:04.05Z",
        "abcd-01-02T03:04:05Z", "2024-1-02T03:04:05Z", " 2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z ",
        "2024-00-02T03:04:05Z", "2024-13-02T03:04:05Z", "2024-01-00T03:04:05Z", "2024-01-32T03:04:05Z",
        "2024-01-02T24:00:00Z", "2024-01-02T03:60:05Z", "2024-01-02T03:04:61Z",
        "2024-01-02T03:04:05.Z", "2024-01-02T03:04:05.", "2024-01-02T03:04:05X", "2024-01-02T03:04:05ZZ",
        "2024-01-02T03:04:05Zjunk", "2024-01-02T03:04:05+5", "2024-01-02T03:04:05+05:3", "2024-01-02T03:04:05+05:",
        "2024-01-02T03:04:05+", "2024-01-02T03:04:05+05:30:00", "2024-01-02T03:04:05 UTC", "2024-01-02T03:04:05.12a",
        "not a timestamp at all",
    ])
    func rejectsInvalidText(text: String) {
        #expect(PrefectTimestamp.parse(text) == nil)
    }

    @Test(arguments: [
        (reference, "2024-01-02T03:04:05.000000Z"),
        (reference + 0.5, "2024-01-02T03:04:05.500000Z"),
        (reference + 0.25, "2024-01-02T03:04:05.250000Z"),
        (0, "1970-01-01T00:00:00.000000Z"),
        (-1, "1969-12-31T23:59:59.000000Z"),
        (-0.5, "1969-12-31T23:59:59.500000Z"),
        (951_825_600, "2000-02-29T12:00:00.000000Z"),
        (4_107_542_400, "2100-03-01T00:00:00.000000Z"),
        (1_795_423_920, "2026-11-23T08:52:00.000000Z"),
        (59.9999996, "1970-01-01T00:01:00.000000Z"),
    ])
    func formatsUTCWithMicroseconds(seconds: Double, text: String) {
        #expect(PrefectTimestamp.format(seconds) == text)
    }

    @Test(arguments: [0.0, 1, reference, reference + 0.123456, 1_795_423_886.107891, 951_825_600.000001, -86_400.25, 253_402_300_799])
    func formatThenParseRoundTrips(seconds: Double) throws {
        let parsed = try #require(PrefectTimestamp.parse(PrefectTimestamp.format(seconds)))
        #expect(abs(parsed - seconds) < 1e-6, "\(PrefectTimestamp.format(seconds))")
    }

    @Test(arguments: [
        "2024-01-02T03:04:05.000000Z", "2026-11-23T08:51:26.107891Z", "1999-12-31T23:59:59.999999Z", "2000-03-01T00:00:00.000001Z",
    ])
    func parseThenFormatRoundTrips(text: String) throws {
        #expect(PrefectTimestamp.format(try epoch(text)) == text)
    }

    @Test func civilCalendarRoundTripsOverFourCenturies() {
        for days in stride(from: -146_097, through: 146_097 * 2, by: 17) {
            let (year, month, day) = PrefectTimestamp.civilFromDays(days)
            #expect(PrefectTimestamp.daysFromCivil(year: year, month: month, day: day) == days)
            #expect((1...12).contains(month) && (1...31).contains(day))
        }
        let epochDay = PrefectTimestamp.civilFromDays(0)
        #expect(epochDay.year == 1970 && epochDay.month == 1 && epochDay.day == 1)
        #expect(PrefectTimestamp.daysFromCivil(year: 2000, month: 3, day: 1) == 11_017)
    }
}
