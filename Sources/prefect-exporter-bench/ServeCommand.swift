import ArgumentParser
import Exposition
import Foundation
import HTTPClient
import Logging
import Poller
import Rendering
import WebServer
import Locking

/// `serve`: the synthetic snapshot served exactly as the exporter serves a scrape.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serves a synthetic snapshot through ExpositionMerger, MetricsPageStore, ExporterRoutes and WebServer until SIGINT/SIGTERM.")

    @Option(help: "Target number of series (sample lines) in the exposition.")
    var series = 10_000

    @Option(help: "Port to listen on, on 127.0.0.1 (0 for any free port).")
    var port = 14_299

    @Option(help: "Web server threads (the exporter uses 2).")
    var threads = 2

    @Option(help: "Write the served bytes to <dir>/metrics.txt and <dir>/metrics.txt.gz (for the static comparison).")
    var dumpDir: String?

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let (snapshot, seriesCount) = SyntheticSnapshot.make(series: series, now: Date().timeIntervalSince1970)
        // A poller's snapshot, merged, rendered and stored as the exporter does after a poll.
        let store = MetricsPageStore()
        let rendered = LockedValue<MergedExposition?>(nil)
        let merger = Exporting.merger(logger: Logger(label: "bench.merger")) { page in
            Exporting.store(page, in: store)
            rendered.withLock { $0 = page }
        }
        merger.update(target: 0, with: PollerSnapshot(health: [], prefect: snapshot.families()))
        guard let page = rendered.withLock({ $0 }) else { throw ValidationError("the merger published no page") }
        let plain = page.text
        let gzip = page.textGzip ?? []
        if let dumpDir {
            try Data(plain).write(to: URL(fileURLWithPath: dumpDir).appendingPathComponent("metrics.txt"))
            try Data(gzip).write(to: URL(fileURLWithPath: dumpDir).appendingPathComponent("metrics.txt.gz"))
        }
        let routes = try Exporting.routes(store)
        var configuration = WebServerConfiguration(listenAddress: "127.0.0.1:\(port)")
        configuration.threadPoolSize = threads
        let server = try WebServer(configuration: configuration, handler: routes, logger: Logger(label: "bench.web"))
        say("serve: \(seriesCount) Prefect series (\(snapshot.shape)) + the exporter's own, "
            + "\(SyntheticSnapshot.countSeries(plain)) in all, plain \(plain.count) bytes, gzip \(gzip.count) bytes, "
            + "\(threads) threads, on http://127.0.0.1:\(server.port)/metrics")
        let signal = await waitForTerminationSignal()
        server.stop()
        say("serve: stopped by \(signal)")
    }
}
