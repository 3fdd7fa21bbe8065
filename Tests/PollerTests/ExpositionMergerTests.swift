import Exposition
import Foundation
import HTTPClient
import Logging
@testable import Poller
@testable import Rendering
import PrefectAPI
import Testing
import Locking

/// Records warnings, to check what the merger logs.
private final class RecordedLog: Sendable {
    private let lines = LockedValue<[(Logger.Level, String, Logger.Metadata)]>([])
    func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) { lines.withLock { $0.append((level, message, metadata)) } }
    var all: [(Logger.Level, String, Logger.Metadata)] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "merger-tests") { _ in RecordingHandler(log: self) }
    }
}

private struct RecordingHandler: LogHandler {
    let log: RecordedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { log.append(event.level, "\(event.message)", event.metadata ?? [:]) }
}

/// Every page the merger published.
private final class Pages: Sendable {
    private let all = LockedValue<[MergedExposition]>([])
    func append(_ page: MergedExposition) { all.withLock { $0.append(page) } }
    var count: Int { all.withLock { $0.count } }
    var last: MergedExposition? { all.withLock { $0.last } }
}

private func health(up: Bool, polls: Double) -> [MetricFamily] {
    [
        MetricFamily(name: "prefect_up", help: "Up.", type: .gauge, metrics: [Metric(value: up ? 1 : 0)]),
        MetricFamily(
            name: "prefect_exporter_polls_total", help: "Polls.", type: .counter,
            metrics: [Metric(labels: [Label("result", "success")], value: polls)]),
    ]
}

private func prefect(pools: [String], finished: Double = 0) -> [MetricFamily] {
    [
        MetricFamily(
            name: "prefect_work_pool_info", help: "Pools.", type: .gauge,
            metrics: pools.map { Metric(labels: [Label("work_pool", $0), Label("type", "process")], value: 1) }),
        MetricFamily(
            name: "prefect_flow_runs_finished_total", help: "Finished.", type: .counter,
            metrics: pools.map { Metric(labels: [Label("work_pool", $0), Label("state_type", "COMPLETED")], value: finished) }),
    ]
}

private func labels(_ metric: Metric) -> [String: String] {
    Dictionary(metric.labels.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
}

@Suite("Exposition merger")
struct ExpositionMergerTests {
    private let start = 1_795_423_860.0

    private func merger(
        _ settings: ExpositionMerger.Settings, clock: TestClock, pages: Pages, log: RecordedLog = RecordedLog()
    ) -> ExpositionMerger {
        ExpositionMerger(settings: settings, startTime: start, logger: log.logger, clock: { clock.now }) { pages.append($0) }
    }

    @Test func aSingleTargetIsServedExactlyAsThePollerPublishesIt() async throws {
        let harness = try Harness()
        let (_, snapshot) = try await harness.poll(at: firstPoll)
        let pages = Pages()
        let merger = merger(
            ExpositionMerger.Settings(includesProcessMetrics: false, version: "1.2.3", revision: "abc123"),
            clock: TestClock(firstPoll), pages: pages)
        merger.update(target: 0, with: snapshot)
        let page = try #require(pages.last)
        let expected = snapshot.health + [PageFamilies.buildInfo(version: "1.2.3", revision: "abc123")] + snapshot.prefect
        #expect(String(decoding: page.text, as: UTF8.self) == TextFormat.encode(expected))
        #expect(try runGzip(["-d", "-c"], input: try #require(page.textGzip)) == page.text)
        let openMetrics = try #require(page.openMetrics)
        #expect(!openMetrics.isMade)
        #expect(try runGzip(["-d", "-c"], input: try #require(openMetrics.value.gzip)) == openMetrics.value.plain)
        #expect(openMetrics.isMade)
        #expect(String(decoding: openMetrics.value.plain, as: UTF8.self).hasSuffix("\n# EOF\n"))
        #expect(!page.families.contains { $0.metrics.contains { labels($0)["prefect"] != nil } })
    }

    @Test func processMetricsAndBuildInfoAppearOnce() throws {
        let pages = Pages()
        let merger = merger(
            ExpositionMerger.Settings(targetNames: ["prod", "staging"], includesProcessMetrics: true), clock: TestClock(start), pages: pages)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 1), prefect: prefect(pools: ["a"])))
        merger.update(target: 1, with: PollerSnapshot(health: health(up: false, polls: 0), prefect: []))
        let families = try #require(pages.last).families
        #expect(families.filter { $0.name == "prefect_exporter_build_info" }.count == 1)
        #expect(families.first { $0.name == "prefect_exporter_build_info" }?.metrics.count == 1)
        #expect(families.filter { $0.name == "process_open_fds" }.count == 1)
        #expect(families.first { $0.name == "process_open_fds" }?.metrics.first?.labels.isEmpty == true)
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_max_fds"] {
            #expect(families.contains { $0.name == name }, "\(name)")
        }
        #expect(families.first { $0.name == "process_cpu_seconds_total" }?.type == .counter)
    }

    @Test func severalTargetsAreLabelledAndMergedUnderOneHelpAndType() throws {
        let pages = Pages()
        let merger = merger(
            ExpositionMerger.Settings(targetNames: ["prod", "staging"], includesProcessMetrics: false, version: "9", revision: "r"),
            clock: TestClock(start), pages: pages)
        merger.update(target: 1, with: PollerSnapshot(health: health(up: false, polls: 0), prefect: []))
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 2), prefect: prefect(pools: ["a", "b"])))
        let page = try #require(pages.last)
        #expect(pages.count == 2)
        let text = String(decoding: page.text, as: UTF8.self)
        #expect(text == """
            # HELP prefect_up Up.
            # TYPE prefect_up gauge
            prefect_up{prefect="prod"} 1
            prefect_up{prefect="staging"} 0
            # HELP prefect_exporter_polls_total Polls.
            # TYPE prefect_exporter_polls_total counter
            prefect_exporter_polls_total{prefect="prod",result="success"} 2
            prefect_exporter_polls_total{prefect="staging",result="success"} 0
            # HELP prefect_exporter_build_info The exporter's version and revision; always 1.
            # TYPE prefect_exporter_build_info gauge
            prefect_exporter_build_info{version="9",revision="r"} 1
            # HELP prefect_work_pool_info Pools.
            # TYPE prefect_work_pool_info gauge
            prefect_work_pool_info{prefect="prod",work_pool="a",type="process"} 1
            prefect_work_pool_info{prefect="prod",work_pool="b",type="process"} 1
            # HELP prefect_flow_runs_finished_total Finished.
            # TYPE prefect_flow_runs_finished_total counter
            prefect_flow_runs_finished_total{prefect="prod",work_pool="a",state_type="COMPLETED"} 0
            prefect_flow_runs_finished_total{prefect="prod",work_pool="b",state_type="COMPLETED"} 0

            """)
        // Both targets with data: one family, series of both.
        merger.update(target: 1, with: PollerSnapshot(health: health(up: true, polls: 1), prefect: prefect(pools: ["a"])))
        let families = try #require(pages.last).families
        let pools = try #require(families.first { $0.name == "prefect_work_pool_info" })
        #expect(pools.metrics.map { labels($0)["prefect"] ?? "" } == ["prod", "prod", "staging"])
        #expect(families.filter { $0.name == "prefect_work_pool_info" }.count == 1)
    }

    @Test func createdTimesAreTheExporterStartOrWhenASeriesFirstAppeared() throws {
        let clock = TestClock(start + 30)
        let pages = Pages()
        let merger = merger(ExpositionMerger.Settings(includesProcessMetrics: true), clock: clock, pages: pages)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 1), prefect: prefect(pools: ["a"])))
        clock.set(start + 60)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 2), prefect: prefect(pools: ["a", "b"], finished: 1)))
        var families = try #require(pages.last).families
        func created(_ name: String, pool: String? = nil) -> Double? {
            families.first { $0.name == name }?.metrics.first { pool == nil || labels($0)["work_pool"] == pool }?.created
        }
        #expect(created("prefect_exporter_polls_total") == start)
        #expect(created("process_cpu_seconds_total") == start)
        #expect(created("prefect_flow_runs_finished_total", pool: "a") == start + 30)
        #expect(created("prefect_flow_runs_finished_total", pool: "b") == start + 60)
        #expect(created("prefect_up") == nil)
        #expect(created("prefect_work_pool_info") == nil)

        // A stale target (no Prefect families) keeps its times for when the series return.
        clock.set(start + 90)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: false, polls: 2), prefect: []))
        clock.set(start + 120)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 3), prefect: prefect(pools: ["a", "b"], finished: 2)))
        families = try #require(pages.last).families
        #expect(created("prefect_flow_runs_finished_total", pool: "a") == start + 30)
        // A series that disappeared from a good poll starts over when it returns.
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 4), prefect: prefect(pools: ["b"])))
        clock.set(start + 150)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 5), prefect: prefect(pools: ["a", "b"])))
        families = try #require(pages.last).families
        #expect(created("prefect_flow_runs_finished_total", pool: "a") == start + 150)
        let openMetrics = String(decoding: try #require(pages.last?.openMetrics).value.plain, as: UTF8.self)
        #expect(openMetrics.contains("prefect_flow_runs_finished_created{work_pool=\"a\",state_type=\"COMPLETED\"} 1795424010\n"))
        #expect(openMetrics.contains("prefect_exporter_polls_created{result=\"success\"} 1795423860\n"))
    }

    @Test func theCapKeepsTheFirstSeriesCountsTheRestAndWarnsOncePerFamily() throws {
        let pages = Pages()
        let log = RecordedLog()
        let merger = merger(
            ExpositionMerger.Settings(targetNames: ["prod", "staging"], maxSeriesPerFamily: 2, includesProcessMetrics: false),
            clock: TestClock(start), pages: pages, log: log)
        let many = prefect(pools: ["a", "b", "c", "d", "e"])
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 1), prefect: many))
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 2), prefect: many))
        merger.update(target: 1, with: PollerSnapshot(health: health(up: true, polls: 1), prefect: prefect(pools: ["a", "b"])))
        let families = try #require(pages.last).families
        let pools = try #require(families.first { $0.name == "prefect_work_pool_info" })
        #expect(pools.metrics.map { "\(labels($0)["prefect"] ?? ""):\(labels($0)["work_pool"] ?? "")" } == [
            "prod:a", "prod:b", "staging:a", "staging:b",
        ])
        let dropped = try #require(families.first { $0.name == "prefect_exporter_series_dropped_total" })
        #expect(dropped.type == .counter)
        #expect(dropped.metrics.map(labels) == [
            ["prefect": "prod", "family": "prefect_flow_runs_finished_total"], ["prefect": "prod", "family": "prefect_work_pool_info"],
        ])
        // Three series dropped from each family at each of the two polls.
        #expect(dropped.metrics.map(\.value) == [.number(6), .number(6)])
        #expect(dropped.metrics.allSatisfy { $0.created == start })
        // It sits with the exporter's own families, before build info.
        let names = families.map(\.name)
        #expect(names.firstIndex(of: "prefect_exporter_series_dropped_total") ?? 99 < names.firstIndex(of: "prefect_exporter_build_info") ?? 0)

        let warnings = log.all.filter { $0.0 == .warning }
        #expect(warnings.count == 2)
        #expect(Set(warnings.map { $0.2["family"].map { "\($0)" } ?? "" }) == ["prefect_work_pool_info", "prefect_flow_runs_finished_total"])
        #expect(warnings.allSatisfy { $0.2["prefect"].map { "\($0)" } == "prod" && $0.1.contains("--metrics.max-series-per-family") })
    }

    @Test func zeroMeansUnlimited() throws {
        let pages = Pages()
        let merger = merger(ExpositionMerger.Settings(maxSeriesPerFamily: 0, includesProcessMetrics: false), clock: TestClock(start), pages: pages)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 1), prefect: prefect(pools: (0..<500).map { "p\($0)" })))
        let families = try #require(pages.last).families
        #expect(families.first { $0.name == "prefect_work_pool_info" }?.metrics.count == 500)
        #expect(!families.contains { $0.name == "prefect_exporter_series_dropped_total" })
    }

    @Test func openMetricsCanBeTurnedOff() throws {
        let pages = Pages()
        let merger = merger(ExpositionMerger.Settings(includesProcessMetrics: false, rendersOpenMetrics: false), clock: TestClock(start), pages: pages)
        merger.update(target: 0, with: PollerSnapshot(health: health(up: true, polls: 1), prefect: []))
        #expect(pages.last != nil)
        #expect(pages.last?.openMetrics == nil)
        #expect(merger.current().text == pages.last?.text)
    }

    @Test func aPollerSplitsItsFamiliesIntoHealthAndPrefect() async throws {
        let snapshots = Snapshots()
        let clock = TestClock(firstPoll)
        let poller = Poller(
            client: PrefectClient(configuration: PrefectClientConfiguration(baseURL: FakePrefect.baseURL), transport: try FakePrefect()),
            configuration: PollerConfiguration(), statistics: RequestStatistics(),
            logger: Logger(label: "merger-tests", factory: { _ in SwiftLogNoOpLogHandler() }), clock: { clock.now },
            publish: { snapshots.append($0) })
        await poller.pollOnce()
        let snapshot = try #require(snapshots.last)
        #expect(snapshot.health.map(\.name) == [
            "prefect_up", "prefect_exporter_last_poll_success_timestamp_seconds", "prefect_exporter_poll_duration_seconds",
            "prefect_exporter_polls_total", "prefect_exporter_api_requests_total", "prefect_exporter_collector_success",
            "prefect_exporter_collector_duration_seconds", "prefect_exporter_collector_last_success_timestamp_seconds",
            "prefect_exporter_poll_interval_seconds", "prefect_exporter_request_budget_per_minute",
            "prefect_exporter_request_budget_wait_seconds_total",
        ])
        #expect(snapshot.prefect.first?.name == "prefect_server_info")
        #expect(!snapshot.prefect.contains { $0.name.hasPrefix("prefect_exporter_") || $0.name.hasPrefix("process_") })
        #expect(snapshot.families.map(\.name) == snapshot.health.map(\.name) + snapshot.prefect.map(\.name))
    }
}
