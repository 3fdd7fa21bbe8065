import Exposition
import Foundation
import HTTPClient
@testable import Collectors
@testable import Poller
import PrefectAPI
import Testing

private let deploy = "fixture-flow/fixture-deploy"
private let deployHigh = "fixture-flow/fixture-deploy-high"

private func finished(_ families: [MetricFamily], _ queue: String, _ deployment: String, _ type: String) -> Double? {
    value(families, "prefect_flow_runs_finished_total", [
        "work_pool": "fixture-pool", "work_queue": queue, "deployment": deployment, "state_type": type,
    ])
}

private func polls(_ families: [MetricFamily], _ result: String) -> Double? {
    value(families, "prefect_exporter_polls_total", ["result": result])
}

private func requests(_ families: [MetricFamily], _ endpoint: String, _ code: String) -> Double? {
    value(families, "prefect_exporter_api_requests_total", ["endpoint": endpoint, "code": code])
}

@Suite("Poller")
struct PollerTests {
    @Test func firstSuccessfulPollPublishesEverything() async throws {
        let harness = try Harness()
        let (report, snapshot) = try await harness.poll(at: firstPoll)
        #expect(report.success)
        #expect(!report.skipped)
        #expect(report.error == nil)
        // 17 as before the due-run ledger, plus its fifteen checks (/flow_runs/count: each state-name
        // group, and four random slices of each) and the two counts of its audit (the cell, and its
        // known runs by id), one for the concurrency limits, and fifteen one-run lookups of the three
        // deployments (each one's next run, and its last run in each of the four terminal states),
        // done once after the exporter starts.
        #expect(report.requests == 50)
        #expect(report.duration >= 0)
        let families = snapshot.families

        #expect(value(families, "prefect_up") == 1)
        #expect(value(families, "prefect_exporter_last_poll_success_timestamp_seconds") == firstPoll)
        #expect(polls(families, "success") == 1)
        #expect(polls(families, "failure") == 0)
        #expect(polls(families, "skipped") == 0)
        for name in prefectFamilyNames + exporterFamilyNames {
            #expect(has(families, name), "\(name)")
        }
        #expect(families.filter { $0.name == "prefect_up" }.count == 1)

        let collectors = families.first { $0.name == "prefect_exporter_collector_success" }?.metrics.map { labelDictionary($0)["collector"] ?? "" }
        #expect(collectors == [
            "server_info", "work_pools", "work_queues", "deployments", "flow_runs_active", "flow_runs_finished", "workers",
            "flow_runs_upcoming", "concurrency_limits", "deployment_schedules",
        ])
        #expect(families.first { $0.name == "prefect_exporter_collector_success" }?.metrics.allSatisfy { $0.value == .number(1) } == true)
        #expect(families.first { $0.name == "prefect_exporter_collector_duration_seconds" }?.metrics.count == 10)

        // The Prefect families are the aggregation of the recorded data at the poll's time.
        #expect(value(families, "prefect_server_info", ["version": "3.8.8", "api_version": "0.8.4"]) == 1)
        #expect(value(families, "prefect_flow_runs_late", ["work_pool": "fixture-pool", "work_queue": "default", "deployment": deploy]) == 3)
        #expect(value(families, "prefect_flow_runs_upcoming", ["work_pool": "fixture-pool", "work_queue": "default"]) == 1)
        #expect(value(families, "prefect_flow_runs_upcoming", ["work_pool": "fixture-pool", "work_queue": "fixture-high"]) == 0)
        #expect(value(families, "prefect_work_pool_workers", ["work_pool": "fixture-pool", "status": "ONLINE"]) == 2)
        #expect(value(families, "prefect_flow_runs", [
            "work_pool": "", "work_queue": "", "deployment": "", "state_type": "RUNNING", "state_name": "Running",
        ]) == 1)
        #expect(finished(families, "default", deploy, "COMPLETED") == 1)
        #expect(finished(families, "default", deploy, "CANCELLED") == 1)
        #expect(finished(families, "fixture-high", deployHigh, "FAILED") == 1)
        #expect(finished(families, "default", deploy, "FAILED") == 0)

    }

    @Test func pollCostCountsRequestsAndWireBytes() async throws {
        let harness = try Harness()
        let (report, _) = try await harness.poll(at: firstPoll)
        var bytes = 0
        for name in ["work_pools", "work_queues", "workers", "deployments", "flows"] {
            bytes += try recordedFixture(name).count
        }
        // Two flow-run queries each for the active and for the finished/started collectors.
        for name in ["flow_runs_in_flight", "flow_runs_finished", "flow_runs_started"] {
            bytes += try recordedFixture(name).count
        }
        // The fake filters the due runs as Prefect would, and serialises them again.
        bytes += try JSONSerialization.data(withJSONObject: harness.fake.recordedDueRuns()).count
        // "0.8.4", "3.8.8", [] for the pool without workers, twenty-two counts of one digit (five
        // upcoming, fifteen due checks, two audit counts), [] for the concurrency limits
        bytes += 7 + 7 + 2 + 22 + 2
        // The deployment lookups, as the fake answers them.
        for request in harness.fake.requests {
            let body = String(decoding: request.body ?? [], as: UTF8.self)
            if harness.fake.isScheduleLookup(body) { bytes += harness.fake.scheduleLookup(body).count }
        }
        #expect(report.bytes == bytes)
        #expect(harness.fake.requests.count == report.requests)
    }

    @Test func requestsOfOnePollGoToTheRightEndpoints() async throws {
        let harness = try Harness()
        _ = try await harness.poll(at: firstPoll)
        var counts: [String: Int] = [:]
        for path in harness.fake.paths { counts[path, default: 0] += 1 }
        #expect(counts == [
            "/version": 1, "/admin/version": 1, "/work_pools/filter": 1, "/work_queues/filter": 1, "/deployments/filter": 1,
            "/flows/filter": 1, "/work_pools/fixture-pool/workers/filter": 1, "/work_pools/fixture-paused-pool/workers/filter": 1,
            "/flow_runs/filter": 19, "/flow_runs/count": 22, "/v2/concurrency_limits/filter": 1,
        ])
        // Strictly read-only: never the worker polling endpoints.
        #expect(!harness.fake.paths.contains { $0.contains("get_scheduled_flow_runs") })
        let methods = Dictionary(grouping: harness.fake.requests, by: { $0.method }).mapValues(\.count)
        #expect(methods == [.get: 2, .post: 48])
    }

    @Test func apiRequestCountersReflectTheResponses() async throws {
        let harness = try Harness(adminStatus: 404)
        let first = try await harness.poll(at: firstPoll)
        #expect(first.report.success)
        var families = first.snapshot.families
        // Prefect Cloud has no /admin: the version is empty and the poll still succeeds.
        #expect(value(families, "prefect_server_info", ["version": "", "api_version": "0.8.4"]) == 1)
        #expect(requests(families, "/admin/version", "404") == 1)
        #expect(requests(families, "/version", "200") == 1)
        #expect(requests(families, "/flow_runs/filter", "200") == 19)
        #expect(requests(families, "/flow_runs/count", "200") == 22)
        #expect(requests(families, "/work_pools/{name}/workers/filter", "200") == 2)
        let total = families.first { $0.name == "prefect_exporter_api_requests_total" }?.metrics.reduce(0.0) { sum, metric in
            if case .number(let number) = metric.value { return sum + number }
            return sum
        }
        #expect(total == 50)

        harness.fake.set(.transportFailure(.timeout))
        let second = try await harness.poll(at: firstPoll + 30)
        #expect(!second.report.success)
        families = second.snapshot.families
        for endpoint in ["/version", "/work_pools/filter", "/work_queues/filter", "/deployments/filter"] {
            #expect(requests(families, endpoint, "timeout") == 1, "\(endpoint)")
        }
        #expect(requests(families, "/flow_runs/filter", "200") == 19)
        #expect(requests(families, "/flow_runs/filter", "timeout") == nil)
        #expect(harness.statistics.totals[RequestStatistics.Key(endpoint: "/version", code: "timeout")] == 1)
    }

    @Test func failureKeepsServingTheLastGoodDataUntilMaxStaleness() async throws {
        let harness = try Harness(maxStaleness: .seconds(300))
        _ = try await harness.poll(at: firstPoll)
        harness.fake.set(.transportFailure(.connectionError))

        let failed = try await harness.poll(at: firstPoll + 30)
        #expect(!failed.report.success)
        #expect(!failed.report.skipped)
        #expect(failed.report.error?.kind == .transport(.connectionError))
        var families = failed.snapshot.families
        #expect(value(families, "prefect_up") == 0)
        #expect(polls(families, "failure") == 1)
        #expect(polls(families, "success") == 1)
        #expect(value(families, "prefect_exporter_last_poll_success_timestamp_seconds") == firstPoll)
        for name in prefectFamilyNames { #expect(has(families, name), "\(name)") }
        #expect(families.first { $0.name == "prefect_exporter_collector_success" }?.metrics.map(\.value).contains(.number(0)) == true)

        families = try await harness.poll(at: firstPoll + 300).snapshot.families
        for name in prefectFamilyNames { #expect(has(families, name), "\(name) at the staleness limit") }

        families = try await harness.poll(at: firstPoll + 300.5).snapshot.families
        for name in prefectFamilyNames { #expect(!has(families, name), "\(name) after the staleness limit") }
        for name in exporterFamilyNames { #expect(has(families, name), "\(name)") }
        #expect(value(families, "prefect_up") == 0)
        #expect(polls(families, "failure") == 3)
        #expect(value(families, "prefect_exporter_last_poll_success_timestamp_seconds") == firstPoll)

        // Recovery brings everything back.
        harness.fake.set(.normal)
        let recovered = try await harness.poll(at: firstPoll + 400)
        #expect(recovered.report.success)
        #expect(value(recovered.snapshot.families, "prefect_up") == 1)
        for name in prefectFamilyNames { #expect(has(recovered.snapshot.families, name), "\(name)") }
    }

    @Test func aFirstPollThatFailsServesOnlyTheExportersOwnFamilies() async throws {
        let harness = try Harness()
        harness.fake.set(.status(500, headers: [:]))
        let (report, snapshot) = try await harness.poll(at: firstPoll)
        #expect(!report.success)
        #expect(report.error?.kind == .httpStatus)
        #expect(report.error?.status == 500)
        for name in prefectFamilyNames { #expect(!has(snapshot.families, name), "\(name)") }
        for name in exporterFamilyNames { #expect(has(snapshot.families, name), "\(name)") }
        #expect(!has(snapshot.families, "prefect_exporter_last_poll_success_timestamp_seconds"))
        #expect(value(snapshot.families, "prefect_up") == 0)
    }

    @Test func aRequestBudgetStretchesTheIntervalAndIsServed() async throws {
        let harness = try Harness(maxRequestsPerMinute: 40)
        let first = try await harness.poll(at: firstPoll)
        #expect(first.report.success)
        // Over a budget of 40 a minute, a poll of N requests every 30 s becomes one every N × 60 / 40 s.
        let requests = Double(first.report.requests)
        #expect(requests > 20)
        #expect(value(first.snapshot.families, "prefect_exporter_poll_interval_seconds") == requests * 60 / 40)
        #expect(value(first.snapshot.families, "prefect_exporter_request_budget_per_minute", ["route": "all"]) == 40)
        // The poll itself waited for the budget when it needed more than 40 requests.
        let waited = try #require(value(first.snapshot.families, "prefect_exporter_request_budget_wait_seconds_total"))
        #expect(requests > 40 ? waited > 0 : waited == 0)

        let unbounded = try Harness()
        let plain = try await unbounded.poll(at: firstPoll)
        #expect(value(plain.snapshot.families, "prefect_exporter_poll_interval_seconds") == 30)
        #expect(!has(plain.snapshot.families, "prefect_exporter_request_budget_per_minute"))
    }

    @Test(arguments: [429, 503])
    func retryAfterSkipsPollsWithoutRequests(code: Int) async throws {
        let harness = try Harness(retries: 2)
        harness.fake.set(.status(code, headers: ["retry-after": "60"]))
        let limited = try await harness.poll(at: firstPoll)
        #expect(!limited.report.success)
        #expect(!limited.report.skipped)
        #expect(limited.report.error?.kind == .rateLimited)
        #expect(limited.report.error?.retryAfter == 60)
        let sent = harness.fake.requests.count
        // No retries within the poll either, and once the first answer asked to wait, nothing more
        // is sent: at most the inventory's five requests, those already on their way.
        #expect((1...5).contains(sent))

        for offset in [1.0, 30, 59.9] {
            let skipped = try await harness.poll(at: firstPoll + offset)
            #expect(skipped.report.skipped, "at +\(offset)s")
            #expect(!skipped.report.success)
            #expect(skipped.report.requests == 0)
            #expect(harness.fake.requests.count == sent, "a skipped poll sent a request")
            #expect(value(skipped.snapshot.families, "prefect_up") == 0)
        }
        let families = try #require(harness.snapshots.last).families
        #expect(polls(families, "skipped") == 3)
        #expect(polls(families, "failure") == 1)
        #expect(polls(families, "success") == 0)
        #expect(requests(families, "/version", String(code)) == 1)

        harness.fake.set(.normal)
        let resumed = try await harness.poll(at: firstPoll + 60)
        #expect(!resumed.report.skipped)
        #expect(resumed.report.success)
        #expect(harness.fake.requests.count == sent + 50)
        #expect(value(resumed.snapshot.families, "prefect_exporter_poll_interval_seconds") == 30)
        #expect(polls(resumed.snapshot.families, "success") == 1)
        #expect(polls(resumed.snapshot.families, "skipped") == 3)
    }

    @Test func finishedCountersDoNotGrowWhenTheSameRunsComeBack() async throws {
        let harness = try Harness()
        var snapshots: [[MetricFamily]] = []
        for offset in [0.0, 30, 60, 90, 180] {
            let (report, snapshot) = try await harness.poll(at: firstPoll + offset)
            #expect(report.success)
            snapshots.append(snapshot.families)
        }
        for families in snapshots {
            #expect(finished(families, "default", deploy, "COMPLETED") == 1)
            #expect(finished(families, "default", deploy, "CANCELLED") == 1)
            #expect(finished(families, "fixture-high", deployHigh, "FAILED") == 1)
            let delays = families.first { $0.name == "prefect_flow_run_start_delay_seconds" }?.metrics.reduce(UInt64(0)) { sum, metric in
                if case .histogram(let histogram) = metric.value { return sum + histogram.count }
                return sum
            }
            // Five runs that ran; the run cancelled before it ran has a start_time but run_count 0.
            #expect(delays == 5)
        }
    }

    @Test func historyWindowReachesBackByTheOverlapAndMovesForward() async throws {
        let harness = try Harness()
        for offset in [0.0, 30, 120] {
            _ = try await harness.poll(at: firstPoll + offset)
        }
        let windows = harness.fake.requests
            .map { String(decoding: $0.body ?? [], as: UTF8.self) }
            .filter { $0.contains(#""end_time""#) && !harness.fake.isScheduleLookup($0) }
        // The exporter started at 08:51:00; the overlap is max(60 s, 2 × 30 s).
        #expect(windows.count == 3)
        #expect(windows[0].contains(#""end_time":{"after_":"2026-11-23T08:51:00.000000Z"}"#))
        #expect(windows[1].contains(#""end_time":{"after_":"2026-11-23T08:51:00.000000Z"}"#))
        #expect(windows[2].contains(#""end_time":{"after_":"2026-11-23T08:51:30.000000Z"}"#))
        let started = harness.fake.requests
            .map { String(decoding: $0.body ?? [], as: UTF8.self) }
            .filter { $0.contains(#""start_time""#) }
        #expect(started.last?.contains(#""start_time":{"after_":"2026-11-23T08:51:30.000000Z","is_null_":false}"#) == true)
    }

    @Test func publishCurrentBeforeTheFirstPoll() async throws {
        let harness = try Harness()
        #expect(await harness.poller.attempted == false)
        await harness.poller.publishCurrent()
        let families = try #require(harness.snapshots.last).families
        #expect(value(families, "prefect_up") == 0)
        #expect(polls(families, "success") == 0)
        #expect(polls(families, "failure") == 0)
        #expect(polls(families, "skipped") == 0)
        #expect(!has(families, "prefect_exporter_last_poll_success_timestamp_seconds"))
        #expect(!has(families, "prefect_exporter_api_requests_total"))
        for name in prefectFamilyNames { #expect(!has(families, name), "\(name)") }
        #expect(harness.fake.requests.isEmpty)
        _ = try await harness.poll(at: firstPoll)
        #expect(await harness.poller.attempted == true)
    }
}

@Suite("Poller work-pool selection")
struct PollerSelectionTests {
    @Test func anIncludedPoolOnly() async throws {
        let selection = try WorkPoolSelection(includePattern: "fixture-pool", excludePattern: nil)
        let harness = try Harness(selection: selection)
        let (report, snapshot) = try await harness.poll(at: firstPoll)
        #expect(report.success)
        // The inventory (7), flow runs of one pool (4), one pool's workers, three queues' upcoming
        // counts, fifteen due-run checks and two audit counts, and ten lookups of the pool's two
        // deployments.
        #expect(report.requests == 42)
        let families = snapshot.families
        #expect(families.first { $0.name == "prefect_work_pool_info" }?.metrics.map(labelDictionary) == [
            ["work_pool": "fixture-pool", "type": "process"],
        ])
        for family in families where family.name.hasPrefix("prefect_flow_run") || family.name.hasPrefix("prefect_work_queue") {
            for metric in family.metrics {
                #expect(labelDictionary(metric)["work_pool"] == "fixture-pool", "\(family.name) \(labelDictionary(metric))")
            }
        }
        #expect(!families.contains { $0.name == "prefect_deployment_info" && $0.metrics.contains { labelDictionary($0)["deployment"] == "fixture-other-flow/fixture-served" } })
        let runBodies = harness.fake.requests.filter { $0.url.hasSuffix("/flow_runs/filter") }.map { String(decoding: $0.body ?? [], as: UTF8.self) }
            .filter { !harness.fake.isScheduleLookup($0) }
        #expect(runBodies.count == 4)
        #expect(runBodies.allSatisfy { $0.contains(#""work_pools":{"name":{"any_":["fixture-pool"]}}"#) })
        #expect(!harness.fake.paths.contains("/work_pools/fixture-paused-pool/workers/filter"))
    }

    @Test func excludingAPoolKeepsRunsWithoutOne() async throws {
        let selection = try WorkPoolSelection(includePattern: nil, excludePattern: "fixture-paused-.*")
        let harness = try Harness(selection: selection)
        let (report, snapshot) = try await harness.poll(at: firstPoll)
        #expect(report.success)
        let runBodies = harness.fake.requests.filter { $0.url.hasSuffix("/flow_runs/filter") }.map { String(decoding: $0.body ?? [], as: UTF8.self) }
            .filter { !harness.fake.isScheduleLookup($0) }
        // Each of the four queries once for the selected pools and once for runs with no pool.
        #expect(runBodies.count == 8)
        #expect(runBodies.filter { $0.contains(#""work_pools":{"name":{"any_":["fixture-pool"]}}"#) }.count == 4)
        #expect(runBodies.filter { $0.contains(#""work_queue_name":{"is_null_":true}"#) }.count == 4)
        // The fake answers both scopes with the same runs; each run still counts once.
        #expect(finished(snapshot.families, "default", deploy, "COMPLETED") == 1)
        #expect(value(snapshot.families, "prefect_flow_runs", [
            "work_pool": "fixture-pool", "work_queue": "default", "deployment": deploy, "state_type": "SCHEDULED", "state_name": "Late",
        ]) == 2)
        #expect(value(snapshot.families, "prefect_flow_runs_upcoming", ["work_pool": "", "work_queue": ""]) == 0)
        #expect(!snapshot.families.contains { $0.metrics.contains { labelDictionary($0)["work_pool"] == "fixture-paused-pool" } })
    }
}

@Suite("WorkPoolSelection")
struct WorkPoolSelectionTests {
    @Test func allIncludesEverything() {
        #expect(!WorkPoolSelection.all.isFiltering)
        for pool in ["", "a", "prod-eu", "ünï cøde / slash"] {
            #expect(WorkPoolSelection.all.includes(pool))
        }
    }

    @Test(arguments: [
        ("prod-eu", true), ("prod-", true), ("prod", false), ("my-prod-eu", false), ("prod-eu-x", true), ("", false), ("PROD-eu", false),
    ])
    func includePatternsAreFullyAnchored(pool: String, included: Bool) throws {
        let selection = try WorkPoolSelection(includePattern: "prod-.*", excludePattern: nil)
        #expect(selection.isFiltering)
        #expect(selection.includes(pool) == included)
    }

    @Test(arguments: [("test", false), ("dev", false), ("testing", true), ("my-dev", true), ("", true)])
    func excludePatternsAreFullyAnchored(pool: String, included: Bool) throws {
        let selection = try WorkPoolSelection(includePattern: nil, excludePattern: "test|dev")
        #expect(selection.includes(pool) == included)
    }

    @Test func excludeWinsOverInclude() throws {
        let selection = try WorkPoolSelection(includePattern: "team-.*|", excludePattern: "team-b")
        #expect(selection.includes("team-a"))
        #expect(!selection.includes("team-b"))
        #expect(selection.includes(""))
        #expect(!selection.includes("other"))
    }

    @Test(arguments: ["([", "*", "a{2,1}", "(?<", "[z-a]"])
    func invalidPatternsAreRejected(pattern: String) {
        do {
            _ = try WorkPoolSelection(includePattern: pattern, excludePattern: nil)
            Issue.record("'\(pattern)' compiled")
        } catch {
            #expect(error.pattern == pattern)
            #expect(error.description == "invalid regular expression '\(pattern)': it does not compile; check brackets, parentheses and escapes")
        }
    }
}

@Suite("RequestStatistics")
struct RequestStatisticsTests {
    @Test func totalsAndPollCost() {
        let statistics = RequestStatistics()
        statistics.record(RequestRecord(endpoint: "/a", code: "200", wireBytes: 10))
        statistics.record(RequestRecord(endpoint: "/a", code: "200", wireBytes: 5))
        statistics.record(RequestRecord(endpoint: "/a", code: "timeout", wireBytes: 0))
        statistics.record(RequestRecord(endpoint: "/b", code: "503", wireBytes: 7))
        let cost = statistics.takePollCost()
        #expect(cost.requests == 4)
        #expect(cost.bytes == 22)
        let second = statistics.takePollCost()
        #expect(second.requests == 0)
        #expect(second.bytes == 0)
        #expect(statistics.totals == [
            RequestStatistics.Key(endpoint: "/a", code: "200"): 2, RequestStatistics.Key(endpoint: "/a", code: "timeout"): 1,
            RequestStatistics.Key(endpoint: "/b", code: "503"): 1,
        ])
        #expect(RequestStatistics.Key(endpoint: "/a", code: "timeout") < RequestStatistics.Key(endpoint: "/b", code: "200"))
    }

    @Test func concurrentRecordsAreAllCounted() async {
        let statistics = RequestStatistics()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for _ in 0..<500 { statistics.record(RequestRecord(endpoint: "/e\(task % 2)", code: "200", wireBytes: 1)) }
                }
            }
        }
        #expect(statistics.totals.values.reduce(0, +) == 4_000)
        #expect(statistics.takePollCost().bytes == 4_000)
    }

    @Test(arguments: [(Duration.milliseconds(1_500), 1.5), (.seconds(30), 30), (.zero, 0), (.microseconds(250), 0.00025)])
    func durationSeconds(duration: Duration, seconds: Double) {
        #expect(duration.seconds == seconds)
    }
}
