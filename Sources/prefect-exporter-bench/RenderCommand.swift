import ArgumentParser
import Exposition
import Foundation
import HTTPClient
import Logging
import Poller
import Rendering

/// `render`: how long one snapshot takes to aggregate, encode and compress.
struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Times PrefectFamilies.build, TextFormat.encodeBytes, Gzip.compress and the whole ExpositionMerger.update on a synthetic snapshot.")

    @Option(help: "Target number of series (sample lines) in the exposition.")
    var series = 10_000

    @Option(name: .customLong("repeat"), help: "Timed runs of each step (after one warm-up run).")
    var repetitions = 50

    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    struct Figures: Encodable {
        var targetSeries: Int
        var series: Int
        var families: Int
        var shape: String
        var plainBytes: Int
        var gzipBytes: Int
        var repetitions: Int
        var buildSeconds: Summary
        var encodeSeconds: Summary
        var gzipSeconds: Summary
        var openMetricsBytes: Int
        var openMetricsSeconds: Summary
        /// ExpositionMerger.update: what the exporter renders after each poll (both formats, plain and gzip).
        var mergerSeconds: Summary
        /// Anonymous RSS (heap) at the start, after the snapshot and its families were built, and after
        /// the merger's updates (it keeps the last page and families).
        var anonymousRSSStart: Int
        var anonymousRSSFamilies: Int
        var anonymousRSSMerger: Int
    }

    func validate() throws {
        guard series > 0 else { throw ValidationError("--series must be positive") }
        guard repetitions > 0 else { throw ValidationError("--repeat must be positive") }
    }

    func run() throws {
        let memoryStart = ResidentMemory.read()
        let now = Date().timeIntervalSince1970
        let (snapshot, seriesCount) = SyntheticSnapshot.make(series: series, now: now)
        var families = snapshot.families()
        var plain = TextFormat.encodeBytes(families)
        var gzip = try Gzip.compress(plain)

        var openMetrics = OpenMetricsFormat.encodeBytes(families)
        let memoryFamilies = ResidentMemory.read()
        let build = timeRepeatedly(repetitions) { families = snapshot.families() }
        let encode = timeRepeatedly(repetitions) { plain = TextFormat.encodeBytes(families) }
        let compress = timeRepeatedly(repetitions) { gzip = (try? Gzip.compress(plain)) ?? [] }
        let encodeOpenMetrics = timeRepeatedly(repetitions) { openMetrics = OpenMetricsFormat.encodeBytes(families) }
        let merger = Exporting.merger(logger: Logger(label: "bench.merger")) { _ in }
        let poll = PollerSnapshot(health: [], prefect: families)
        merger.update(target: 0, with: poll)
        let merge = timeRepeatedly(repetitions) { merger.update(target: 0, with: poll) }
        let memoryMerger = ResidentMemory.read()

        let figures = Figures(
            targetSeries: series, series: seriesCount, families: families.filter { !$0.metrics.isEmpty }.count,
            shape: snapshot.shape.description, plainBytes: plain.count, gzipBytes: gzip.count, repetitions: repetitions,
            buildSeconds: Summary(build), encodeSeconds: Summary(encode), gzipSeconds: Summary(compress),
            openMetricsBytes: openMetrics.count, openMetricsSeconds: Summary(encodeOpenMetrics),
            mergerSeconds: Summary(merge), anonymousRSSStart: memoryStart.anonymous,
            anonymousRSSFamilies: memoryFamilies.anonymous, anonymousRSSMerger: memoryMerger.anonymous)
        say("render: \(figures.series) series in \(figures.families) families (\(figures.shape)), --series \(series) --repeat \(repetitions)")
        say("  bytes: plain \(figures.plainBytes) (\(formatKiB(figures.plainBytes))), gzip \(figures.gzipBytes) "
            + "(\(formatKiB(figures.gzipBytes)), \(String(format: "%.1f", Double(figures.plainBytes) / Double(max(1, figures.gzipBytes))))x)")
        for (name, summary) in [
            ("PrefectFamilies.build", figures.buildSeconds), ("TextFormat.encodeBytes", figures.encodeSeconds),
            ("Gzip.compress (level 6)", figures.gzipSeconds), ("OpenMetricsFormat.encode", figures.openMetricsSeconds),
            ("ExpositionMerger.update", figures.mergerSeconds),
        ] {
            say("  \(name.padding(toLength: 24, withPad: " ", startingAt: 0)) median \(formatMilliseconds(summary.median))"
                + "  p90 \(formatMilliseconds(summary.p90))")
        }
        say("  (ExpositionMerger.update is the exporter's whole render after a poll: text and OpenMetrics "
            + "(\(figures.openMetricsBytes) bytes), each plain and gzip)")
        say("  anonymous RSS: \(formatMiB(figures.anonymousRSSStart)) at start, \(formatMiB(figures.anonymousRSSFamilies)) "
            + "with the snapshot, its families and one rendering, \(formatMiB(figures.anonymousRSSMerger)) after the merger's "
            + "updates; VmHWM \(formatMiB(ResidentMemory.read().peak))")
        if let json { try writeJSON(figures, to: json) }
    }
}
