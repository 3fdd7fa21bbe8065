import Aggregation
import ArgumentParser
import Foundation
import HTTPClient
import Logging
import Poller
import PrefectAPI
import WebServer

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
        var exposedBytes: Int
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
        var rssAt: [String: Int]
        var peakRSSBytes: Int
        /// (max − min) / min of VmRSS over polls 10..K, or over all polls when there are fewer.
        var rssSpread: Double
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
        // The exporter's wiring (ExporterMain.run), with default settings.
        let statistics = RequestStatistics()
        let transport = CurlHTTPClient(configuration: HTTPClientConfiguration(
            requestTimeout: .milliseconds(Int64(timeout * 1000)), userAgent: "prefect-exporter-bench"))
        let client = PrefectClient(
            configuration: PrefectClientConfiguration(baseURL: url, maxConcurrentRequests: maxConcurrentRequests),
            transport: transport, observer: statistics.record)
        let store = MetricsPageStore()
        let exposed = LockedValue(0)
        let poller = Poller(
            client: client,
            configuration: PollerConfiguration(interval: pause > .zero ? pause : .seconds(30)),
            statistics: statistics, logger: logger
        ) { snapshot in
            store.update(plain: snapshot.plain, gzip: snapshot.gzip)
            exposed.withLock { $0 = snapshot.plain.count }
        }

        say("poll: \(url), \(polls) polls, interval \(interval), max concurrent requests \(maxConcurrentRequests)")
        let start = residentMemory()
        say("  before the first poll: rss \(formatMiB(start.current)), peak \(formatMiB(start.peak))")
        var perPoll: [PollFigures] = []
        var failures = 0
        for index in 1...polls {
            let cpuBefore = processCPUSeconds()
            let wallBefore = monotonicSeconds()
            let report = await poller.pollOnce()
            let wall = monotonicSeconds() - wallBefore
            let cpu = processCPUSeconds() - cpuBefore
            let memory = residentMemory()
            let figures = PollFigures(
                poll: index, success: report.success, requests: report.requests, bytes: report.bytes, wallSeconds: wall,
                cpuSeconds: cpu, rssBytes: memory.current, peakRSSBytes: memory.peak,
                exposedBytes: exposed.withLock { $0 })
            perPoll.append(figures)
            if !report.success {
                failures += 1
                say("  poll \(index) FAILED: \(report.error.map { "\($0.message)" } ?? "skipped")")
                if index == 1 { throw ExitCode(1) }
            }
            let show = every > 0 ? index % every == 0 : (index <= 10 || index % 100 == 0)
            if show || index == polls {
                say(String(
                    format: "  poll %4d: requests %4d  bytes %9d  wall %8.1f ms  cpu %7.1f ms (%4.1f%%)  rss %@  peak %@  exposition %d bytes",
                    index, figures.requests, figures.bytes, wall * 1000, cpu * 1000, wall > 0 ? 100 * cpu / wall : 0,
                    formatMiB(memory.current), formatMiB(memory.peak), figures.exposedBytes))
            }
            if pause > .zero && index < polls { try await Task.sleep(for: pause) }
        }

        let steady = perPoll.count > 1 ? Array(perPoll.dropFirst()) : perPoll
        let cpuPerWall = steady.map(\.cpuSeconds).reduce(0, +) / max(1e-9, steady.map(\.wallSeconds).reduce(0, +))
        var rssAt: [String: Int] = [:]
        for checkpoint in [1, 10, 100, 1000, polls] where checkpoint <= polls {
            rssAt[String(checkpoint)] = perPoll[checkpoint - 1].rssBytes
        }
        let window = perPoll.count >= 10 ? Array(perPoll[9...]) : perPoll
        let rssValues = window.map(\.rssBytes)
        let rssMin = Double(rssValues.min() ?? 0)
        let rssSpread = rssMin > 0 ? (Double(rssValues.max() ?? 0) - rssMin) / rssMin : 0
        let reference = Double(window.first?.rssBytes ?? 0)
        let drift = reference > 0 ? (Double(perPoll.last?.rssBytes ?? 0) - reference) / reference : 0
        let figures = Figures(
            url: url, polls: polls, intervalSeconds: pause.seconds, maxConcurrentRequests: maxConcurrentRequests,
            failures: failures, requests: Summary(steady.map { Double($0.requests) }),
            bytes: Summary(steady.map { Double($0.bytes) }), wallSeconds: Summary(steady.map(\.wallSeconds)),
            cpuSeconds: Summary(steady.map(\.cpuSeconds)), cpuPerWall: cpuPerWall, rssAt: rssAt,
            peakRSSBytes: perPoll.map(\.peakRSSBytes).max() ?? 0, rssSpread: rssSpread, rssDriftFromPoll10: drift,
            perPoll: perPoll)

        say("  summary of polls \(perPoll.count > 1 ? "2-\(polls)" : "1") (median / p90):")
        say(String(format: "    requests %.0f / %.0f   bytes %.0f / %.0f", figures.requests.median, figures.requests.p90,
                   figures.bytes.median, figures.bytes.p90))
        say(String(format: "    wall %.1f / %.1f ms   cpu %.1f / %.1f ms   cpu/wall %.1f%%",
                   figures.wallSeconds.median * 1000, figures.wallSeconds.p90 * 1000, figures.cpuSeconds.median * 1000,
                   figures.cpuSeconds.p90 * 1000, cpuPerWall * 100))
        let checkpoints = [1, 10, 100, 1000, polls].filter { $0 <= polls }.reduce(into: [Int]()) {
            if !$0.contains($1) { $0.append($1) }
        }
        say("    rss at poll " + checkpoints.map { "\($0): \(formatMiB(rssAt[String($0)] ?? 0))" }.joined(separator: ", ")
            + "; peak (VmHWM) \(formatMiB(figures.peakRSSBytes))")
        say(String(format: "    rss spread over polls %@: %.1f%%, drift from poll %d to %d: %+.1f%%; failures: %d",
                   perPoll.count >= 10 ? "10-\(polls)" : "1-\(polls)", rssSpread * 100, perPoll.count >= 10 ? 10 : 1,
                   polls, drift * 100, failures))
        if let json { try writeJSON(figures, to: json) }
    }
}
