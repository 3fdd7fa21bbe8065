import Foundation
import PrefectAPI
import Testing

@Suite("JSONValue")
struct JSONValueTests {
    @Test func scalars() {
        #expect(JSONValue.null.serialized == "null")
        #expect(JSONValue.bool(true).serialized == "true")
        #expect(JSONValue.bool(false).serialized == "false")
        #expect(JSONValue.string("").serialized == "\"\"")
        #expect(JSONValue.array([]).serialized == "[]")
        #expect(JSONValue.object([]).serialized == "{}")
    }

    @Test(arguments: [
        (0.0, "0"), (1, "1"), (-1, "-1"), (200, "200"), (-0.0, "0"), (1.5, "1.5"), (-2.25, "-2.25"), (0.1, "0.1"),
        (123_456_789_012_345, "123456789012345"), (999_999_999_999_999, "999999999999999"), (1e15, "1000000000000000.0"),
        (1_704_164_645.25, "1704164645.25"), (1e-7, "1e-07"),
    ])
    func numbersAreIntegersWhenWhole(value: Double, text: String) {
        #expect(JSONValue.number(value).serialized == text)
    }

    @Test func literalsBuildTheRightCases() {
        let value: JSONValue = ["s": "x", "i": 7, "b": true, "a": [1, "two", false], "o": ["n": .null]]
        #expect(value.serialized == #"{"s":"x","i":7,"b":true,"a":[1,"two",false],"o":{"n":null}}"#)
    }

    @Test func objectKeysKeepTheirGivenOrder() {
        let value: JSONValue = ["zeta": 1, "alpha": 2, "mid": 3, "alpha2": 4]
        #expect(value.serialized == #"{"zeta":1,"alpha":2,"mid":3,"alpha2":4}"#)
        let reversed: JSONValue = ["alpha2": 4, "mid": 3, "alpha": 2, "zeta": 1]
        #expect(reversed.serialized == #"{"alpha2":4,"mid":3,"alpha":2,"zeta":1}"#)
    }

    @Test(arguments: [
        ("plain", #""plain""#),
        ("say \"hi\"", #""say \"hi\"""#),
        (#"back\slash"#, #""back\\slash""#),
        ("line\nbreak", #""line\nbreak""#),
        ("cr\rtab\t", #""cr\rtab\t""#),
        ("\u{01}\u{1F}\u{0B}\u{08}\u{0C}", #""\u0001\u001f\u000b\u0008\u000c""#),
        ("nul\u{0}", #""nul\u0000""#),
        ("a/b", #""a/b""#),
        ("zürich ✓ 🚀", #""zürich ✓ 🚀""#),
        ("\u{7F}", "\"\u{7F}\""),
    ])
    func stringsAreEscaped(raw: String, text: String) {
        #expect(JSONValue.string(raw).serialized == text)
    }

    @Test func keysAreEscapedToo() {
        let value: JSONValue = .object([(key: "k\"ey\n", value: .string("v"))])
        #expect(value.serialized == #"{"k\"ey\n":"v"}"#)
    }

    @Test func serializedTextIsValidJSONThatRoundTrips() throws {
        let tricky = "q\" b\\ n\n r\r t\t c\u{01} u\u{2028} ü 🚀"
        let value: JSONValue = ["text": .string(tricky), "list": [1, .number(2.5), .null, true], "nested": ["deeper": ["x": "y"]]]
        let parsed = try #require(
            try JSONSerialization.jsonObject(with: Data(value.serialized.utf8)) as? [String: Any])
        #expect(parsed["text"] as? String == tricky)
        let list = try #require(parsed["list"] as? [Any])
        #expect(list.count == 4)
        #expect((list[0] as? NSNumber)?.intValue == 1)
        #expect((list[1] as? NSNumber)?.doubleValue == 2.5)
        #expect(list[2] is NSNull)
        #expect(((parsed["nested"] as? [String: Any])?["deeper"] as? [String: String])?["x"] == "y")
    }

    @Test func equalityComparesSerialization() {
        #expect(JSONValue.number(1) == 1)
        #expect(JSONValue.number(1.0) == .number(1))
        #expect((["a": 1, "b": 2] as JSONValue) == ["a": 1, "b": 2])
        #expect((["a": 1, "b": 2] as JSONValue) != ["b": 2, "a": 1])
        #expect(JSONValue.string("1") != .number(1))
        #expect(JSONValue.null != .bool(false))
        #expect(JSONValue.array([]) != .object([]))
    }
}

@Suite("FlowRunQueries")
struct FlowRunQueriesTests {
    /// 2024-01-02T03:04:05.25Z.
    static let now = 1_704_164_645.25

    @Test func inFlight() {
        #expect(FlowRunQueries.inFlight().serialized
            == #"{"flow_runs":{"state":{"type":{"any_":["PENDING","RUNNING","PAUSED","CANCELLING"]}}}}"#)
    }

    // No state-type filter: a run with a next scheduled start is SCHEDULED (Prefect's
    // SetNextScheduledStartTime), and the filter made Prefect scan a whole pile on SQLite.
    @Test func scheduledDue() {
        #expect(FlowRunQueries.scheduledDue(now: Self.now).serialized
            == #"{"flow_runs":{"next_scheduled_start_time":{"before_":"2024-01-02T03:04:05.250000Z"}}}"#)
    }

    @Test func scheduledDueNarrowed() {
        #expect(FlowRunQueries.scheduledDue(now: Self.now, from: Self.now - 60, names: ["Late"], deploymentIDs: ["d1"]).serialized
            == #"{"flow_runs":{"state":{"name":{"any_":["Late"]}},"next_scheduled_start_time":"#
            + #"{"before_":"2024-01-02T03:04:05.250000Z","after_":"2024-01-02T03:03:05.250000Z"},"#
            + #""deployment_id":{"any_":["d1"]}}}"#)
        #expect(FlowRunQueries.scheduledDue(now: Self.now, excludingNames: ["Scheduled", "Late"]).serialized
            == #"{"flow_runs":{"state":{"name":{"not_any_":["Scheduled","Late"]}},"next_scheduled_start_time":"#
            + #"{"before_":"2024-01-02T03:04:05.250000Z"}}}"#)
    }

    @Test func scheduledUpcomingInOneQueueStartsOneMicrosecondAfterNow() {
        #expect(FlowRunQueries.scheduledUpcoming(now: Self.now, workQueueID: "2d8c-queue-id").serialized
            == #"{"flow_runs":{"next_scheduled_start_time":{"after_":"2024-01-02T03:04:05.250001Z"}},"#
            + #""work_pool_queues":{"id":{"any_":["2d8c-queue-id"]}}}"#)
    }

    @Test func scheduledUpcomingWithoutQueueSelectsRunsWithNoQueue() {
        #expect(FlowRunQueries.scheduledUpcoming(now: Self.now, workQueueID: nil).serialized
            == #"{"flow_runs":{"next_scheduled_start_time":{"after_":"2024-01-02T03:04:05.250001Z"},"work_queue_name":{"is_null_":true}}}"#)
    }

    @Test func finishedFiltersOnEndTimeOnly() {
        // No state-type filter: it made the query 40 times slower on SQLite (RunHistory re-checks the type).
        #expect(FlowRunQueries.finished(since: Self.now).serialized
            == #"{"flow_runs":{"end_time":{"after_":"2024-01-02T03:04:05.250000Z"}}}"#)
    }

    @Test func startedExcludesRunsThatNeverStarted() {
        // Since Prefect 3.4.1 `start_time.after_` alone also matches future scheduled runs.
        let text = FlowRunQueries.started(since: Self.now).serialized
        #expect(text == #"{"flow_runs":{"start_time":{"after_":"2024-01-02T03:04:05.250000Z","is_null_":false}}}"#)
        #expect(text.contains(#""is_null_":false"#))
    }

    @Test func restrictToAllLeavesTheBodyAlone() {
        let body = FlowRunQueries.finished(since: Self.now)
        #expect(FlowRunQueries.restrict(body, to: .all) == body)
    }

    @Test func restrictToPoolsAddsAWorkPoolsFilter() {
        #expect(FlowRunQueries.restrict(FlowRunQueries.inFlight(), to: .pools(["a", "b \"c\""])).serialized
            == #"{"flow_runs":{"state":{"type":{"any_":["PENDING","RUNNING","PAUSED","CANCELLING"]}}},"#
            + #""work_pools":{"name":{"any_":["a","b \"c\""]}}}"#)
    }

    @Test func restrictToNoPoolSelectsRunsWithoutAQueue() {
        #expect(FlowRunQueries.restrict(FlowRunQueries.started(since: Self.now), to: .noPool).serialized
            == #"{"flow_runs":{"start_time":{"after_":"2024-01-02T03:04:05.250000Z","is_null_":false},"#
            + #""work_queue_name":{"is_null_":true}}}"#)
    }

    @Test func restrictLeavesNonObjectsAndBodiesWithoutFlowRunsAlone() {
        let array: JSONValue = [1, 2]
        #expect(FlowRunQueries.restrict(array, to: .pools(["p"])) == array)
        let other: JSONValue = ["deployments": [:]]
        #expect(FlowRunQueries.restrict(other, to: .noPool) == other)
    }

    @Test func sortOrdersArePrefectEnumValues() {
        #expect(FlowRunQueries.Sort.id == "ID_DESC")
        #expect(FlowRunQueries.Sort.nextScheduledStartAscending == "NEXT_SCHEDULED_START_TIME_ASC")
        #expect(FlowRunQueries.Sort.endTimeDescending == "END_TIME_DESC")
        #expect(FlowRunQueries.Sort.startTimeDescending == "START_TIME_DESC")
    }

    @Test func stateTypeSets() {
        #expect(StateType.nonTerminal.map(\.rawValue) == ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"])
        #expect(StateType.terminal.map(\.rawValue) == ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"])
        #expect(StateType(rawValue: "RUNNING") == .running)
        #expect(StateType.cancelled < .running)
        #expect(StateType.crashed.description == "CRASHED")
    }
}
