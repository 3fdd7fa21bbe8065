import ArgumentParser
import Exposition
import Foundation

/// `render`: how long one snapshot takes to aggregate, encode and compress.
struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Times PrefectFamilies.build, TextFormat.encodeBytes and Gzip.compress on a synthetic snapshot.")

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
    }

    func validate() throws {
        guard series > 0 else { throw ValidationError("--series must be positive") }
        guard repetitions > 0 else { throw ValidationError("--repeat must be positive") }
    }

    func run() throws {
        let now = Date().timeIntervalSince1970
        let (snapshot, seriesCount) = SyntheticSnapshot.make(series: series, now: now)
        var families = snapshot.families()
        var plain = TextFormat.encodeBytes(families)
        var gzip = try Gzip.compress(plain)

        let build = timeRepeatedly(repetitions) { families = snapshot.families() }
        let encode = timeRepeatedly(repetitions) { plain = TextFormat.encodeBytes(families) }
        let compress = timeRepeatedly(repetitions) { gzip = (try? Gzip.compress(plain)) ?? [] }

        let figures = Figures(
            targetSeries: series, series: seriesCount, families: families.filter { !$0.metrics.isEmpty }.count,
            shape: snapshot.shape.description, plainBytes: plain.count, gzipBytes: gzip.count, repetitions: repetitions,
            buildSeconds: Summary(build), encodeSeconds: Summary(encode), gzipSeconds: Summary(compress))
        say("render: \(figures.series) series in \(figures.families) families (\(figures.shape)), --series \(series) --repeat \(repetitions)")
        say("  bytes: plain \(figures.plainBytes) (\(formatKiB(figures.plainBytes))), gzip \(figures.gzipBytes) "
            + "(\(formatKiB(figures.gzipBytes)), \(String(format: "%.1f", Double(figures.plainBytes) / Double(max(1, figures.gzipBytes))))x)")
        for (name, summary) in [
            ("PrefectFamilies.build", figures.buildSeconds), ("TextFormat.encodeBytes", figures.encodeSeconds),
            ("Gzip.compress (level 6)", figures.gzipSeconds),
        ] {
            say("  \(name.padding(toLength: 24, withPad: " ", startingAt: 0)) median \(formatMilliseconds(summary.median))"
                + "  p90 \(formatMilliseconds(summary.p90))")
        }
        let total = Summary(zip(zip(build, encode), compress).map { $0.0 + $0.1 + $1 })
        say("  \("build+encode+gzip".padding(toLength: 24, withPad: " ", startingAt: 0)) median \(formatMilliseconds(total.median))"
            + "  p90 \(formatMilliseconds(total.p90))")
        if let json { try writeJSON(figures, to: json) }
    }
}
