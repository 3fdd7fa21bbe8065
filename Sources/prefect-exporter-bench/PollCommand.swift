import Aggregation
import ArgumentParser
import Exposition
import Foundation
import HTTPClient
import Logging
import Poller
import Rendering
import PrefectAPI
import WebServer
import Locking

/// `poll`: the real Poller against a real Prefect, one `pollOnce()` at a time, with the cost of each.
struct PollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poll",
        abstract: "Runs the exporter's Poller K times against a Prefect API and prints the cost of each poll.")

    @Option(help: "Prefect API URL, including /api.")
    var url: String

    @Option(help: "Number of polls.")
    var polls = 10

    @Option(help: "Pause between polls (0s, 100ms, 1s, ...).")
    var interval = "0s"

    @Option(help: "Requests a poll may have in flight at once (--prefect.max-concurrent-requests).")
    var maxConcurrentRequests = 4

    @Option(help: "Timeout of one API request, in seconds.")
    var timeout = 30.0

    @Option(help: "Print every poll's line (default: polls 1-10, then every 100th and the last).")
    var every = 0

    @Option(help: "Also write every poll's figures and the summary as JSON to this file.")
    var json: String?

    struct PollFigures: Encodable {
        var poll: Int
        var success: Bool
        var requests: Int
        var bytes: Int
        var wallSeconds: Double
        var cpuSeconds: Double
        var rssBytes: Int
        var peakRSSBytes: Int
        var anonymousRSSBytes: Int
        var fileRSSBytes: Int
        var exposedBytes: Int
        /// Collectors that failed in this poll, as `name: reason` (a poll with some is partial).
        var failedCollectors: [String]
        /// `prefect_exporter_collector_duration_seconds` of this poll, by collector.
        var collectorSeconds: [String: Double]
    }

    struct Figures: Encodable {
        var url: String
        var polls: Int
        var intervalSeconds: Double
        var maxConcurrentRequests: Int
        var failures: Int
        var requests: Summary
        var bytes: Summary
        var wallSeconds: Summary
        var cpuSeconds: Summary
        /// Total CPU over total wall time, polls 2..K (poll 1 warms up caches and connections).
        var cpuPerWall: Double
        /// Median of each collector's duration.
        var collectorSeconds: [String: Double]
        var rssAt: [String: Int]
        var anonymousRSSAt: [String: Int]
        var peakRSSBytes: Int
        /// The first poll of the window used for RSS flatness: 100 with 200 polls or more, else 10, else 1.
        var rssWindowStart: Int
        /// (max − min) / min of VmRSS over the window.
        var rssSpread: Double
        /// (last − first) / first of VmRSS over the window.
        var rssDrift: Double
        /// (last − poll 10) / poll 10, warm-up included.
        var rssDriftFromPoll10: Double
        var perPoll: [PollFigures]
    }

    func validate() throws {
        guard polls > 0 else { throw ValidationError("--polls must be positive") }
        guard parseDuration(interval) != nil else { throw ValidationError("--interval: not a duration: \(interval)") }
        guard (1...64).contains(maxConcurrentRequests) else {
            throw ValidationError("--max-concurrent-requests must be between 1 and 64")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let pause = parseDuration(interval) ?? .zero
        let logger = Logger(label: "bench.poll")
        // The exporter's wiring (ExporterRuntime, as ExporterMain.run builds it), with default settings.
        let store = MetricsPageStore()
        let exposed = LockedValue((bytes: 0, collectors: [String: Double]()))
        let runtime = Exporting.runtime(
            url: url, timeout: timeout, maxConcurrentRequests: maxConcurrentRequests,
            interval: pause > .zero ? pause : .seconds(30), logger: logger
        ) { page in
            Exporting.store(page, in: store)
            let collectors = Self.collectorDurations(page.families)
            exposed.withLock { $0 = (page.text.count, collectors) }
        }
        let poller = runtime.targets[0].poller

        say("poll: \(url), \(polls) polls, interval \(interval), max concurrent requests \(maxConcurrentRequests)")
        let start = ResidentMemory.read()
        say("  before the first poll: rss \(formatMiB(start.current)) (anon \(formatMiB(start.anonymous)), file "
            + "\(formatMiB(start.file))), peak \(formatMiB(start.peak))")
        var perPoll: [PollFigures] = []
        var failures = 0
        for index in 1...polls {
            let cpuBefore = processCPUSeconds()
            let wallBefore = monotonicSeconds()
            let report = await poller.pollOnce()
            let wall = monotonicSeconds() - wallBefore
            let cpu = processCPUSeconds() - cpuBefore
            let memory = ResidentMemory.read()
            let failed = report.failures.map { "\($0.collector): \($0.error.reason)" }
            // Failed: skipped, or no collector succeeded. A partial poll (some collectors failed,
            // e.g. a large pile of due runs still being listed) counts, with its failures noted.
            let answered = !report.skipped && report.outcomes.contains { $0.success }
            let figures = PollFigures(
                poll: index, success: answered, requests: report.requests, bytes: report.bytes, wallSeconds: wall,
                cpuSeconds: cpu, rssBytes: memory.current, peakRSSBytes: memory.peak,
                anonymousRSSBytes: memory.anonymous, fileRSSBytes: memory.file,
                exposedBytes: exposed.withLock { $0.bytes }, failedCollectors: failed,
                collectorSeconds: exposed.withLock { $0.collectors })
            perPoll.append(figures)
            if !answered {
                failures += 1
                say("  poll \(index) FAILED: \(report.error.map { "\($0.message)" } ?? "skipped")")
                if index == 1 { throw ExitCode(1) }
            } else if !failed.isEmpty {
                say("  poll \(index) partial, failed collectors: \(failed.joined(separator: ", "))")
            }
            let show = every > 0 ? index % every == 0 : (index <= 10 || index % 100 == 0)
            if show || index == polls {
                say(String(
                    format: "  poll %4d: requests %4d  bytes %9d  wall %8.1f ms  cpu %7.1f ms (%4.1f%%)  rss %@ (anon %@)  peak %@  exposition %d bytes",
                    index, figures.requests, figures.bytes, wall * 1000, cpu * 1000, wall > 0 ? 100 * cpu / wall : 0,
                    formatMiB(memory.current), formatMiB(memory.anonymous), formatMiB(memory.peak), figures.exposedBytes))
            }
            if pause > .zero && index < polls { try await Task.sleep(for: pause) }
        }

        let steady = perPoll.count > 1 ? Array(perPoll.dropFirst()) : perPoll
        let cpuPerWall = steady.map(\.cpuSeconds).reduce(0, +) / max(1e-9, steady.map(\.wallSeconds).reduce(0, +))
        let checkpoints = [1, 10, 100, 1000, polls].filter { $0 <= polls }.reduce(into: [Int]()) {
            if !$0.contains($1) { $0.append($1) }
        }
        var rssAt: [String: Int] = [:]
        var anonymousRSSAt: [String: Int] = [:]
        for checkpoint in checkpoints {
            rssAt[String(checkpoint)] = perPoll[checkpoint - 1].rssBytes
            anonymousRSSAt[String(checkpoint)] = perPoll[checkpoint - 1].anonymousRSSBytes
        }
        // Flatness after warm-up: threads, malloc arenas and library pages settle in the first polls.
        let windowStart = polls >= 200 ? 100 : (polls >= 10 ? 10 : 1)
        let window = Array(perPoll[(windowStart - 1)...])
        let rssValues = window.map { Double($0.rssBytes) }
        let rssMin = rssValues.min() ?? 0
        let rssSpread = rssMin > 0 ? ((rssValues.max() ?? 0) - rssMin) / rssMin : 0
        func drift(from first: Double) -> Double { first > 0 ? (Double(perPoll.last?.rssBytes ?? 0) - first) / first : 0 }
        let figures = Figures(
            url: url, polls: polls, intervalSeconds: pause.seconds, maxConcurrentRequests: maxConcurrentRequests,
            failures: failures, requests: Summary(steady.map { Double($0.requests) }),
            bytes: Summary(steady.map { Double($0.bytes) }), wallSeconds: Summary(steady.map(\.wallSeconds)),
            cpuSeconds: Summary(steady.map(\.cpuSeconds)), cpuPerWall: cpuPerWall,
            collectorSeconds: Self.medianByCollector(steady), rssAt: rssAt,
            anonymousRSSAt: anonymousRSSAt, peakRSSBytes: perPoll.map(\.peakRSSBytes).max() ?? 0,
            rssWindowStart: windowStart, rssSpread: rssSpread, rssDrift: drift(from: rssValues.first ?? 0),
            rssDriftFromPoll10: drift(from: Double(perPoll[min(10, polls) - 1].rssBytes)), perPoll: perPoll)

        say("  summary of polls \(perPoll.count > 1 ? "2-\(polls)" : "1") (median / p90):")
        say(String(format: "    requests %.0f / %.0f   bytes %.0f / %.0f", figures.requests.median, figures.requests.p90,
                   figures.bytes.median, figures.bytes.p90))
        say(String(format: "    wall %.1f / %.1f ms   cpu %.1f / %.1f ms   cpu/wall %.1f%%",
                   figures.wallSeconds.median * 1000, figures.wallSeconds.p90 * 1000, figures.cpuSeconds.median * 1000,
                   figures.cpuSeconds.p90 * 1000, cpuPerWall * 100))
        say("    collectors (median ms): " + figures.collectorSeconds.sorted { $0.key < $1.key }
            .map { String(format: "%@ %.1f", $0.key, $0.value * 1000) }.joined(separator: ", "))
        say("    rss at poll " + checkpoints.map {
            "\($0): \(formatMiB(rssAt[String($0)] ?? 0)) (anon \(formatMiB(anonymousRSSAt[String($0)] ?? 0)))"
        }.joined(separator: ", ") + "; peak (VmHWM) \(formatMiB(figures.peakRSSBytes))")
        say(String(format: "    rss over polls %d-%d: spread %.1f%%, drift %+.1f%% (from poll 10: %+.1f%%); failures: %d",
                   windowStart, polls, rssSpread * 100, figures.rssDrift * 100, figures.rssDriftFromPoll10 * 100, failures))
        if let json { try writeJSON(figures, to: json) }
    }

    /// The collector durations a snapshot reports.
    static func collectorDurations(_ families: [MetricFamily]) -> [String: Double] {
        var durations: [String: Double] = [:]
        for family in families where family.name == "prefect_exporter_collector_duration_seconds" {
            for metric in family.metrics {
                if case .number(let value) = metric.value, let name = metric.labels.first(where: { $0.name == "collector" }) {
                    durations[name.value] = value
                }
            }
        }
        return durations
    }

    static func medianByCollector(_ polls: [PollFigures]) -> [String: Double] {
        var values: [String: [Double]] = [:]
        for poll in polls {
            for (name, seconds) in poll.collectorSeconds { values[name, default: []].append(seconds) }
        }
        return values.mapValues { Summary($0).median }
    }
}
