import ArgumentParser
import Exposition
import Foundation
import Logging
import WebServer

/// `serve`: the synthetic snapshot served exactly as the exporter serves a scrape.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serves a synthetic snapshot through WebServer + ExporterRoutes + MetricsPageStore until SIGINT/SIGTERM.")

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
        // What Poller.publishSnapshot does after a poll, then what the CLI's publish closure does.
        let plain = TextFormat.encodeBytes(snapshot.families())
        let gzip = try Gzip.compress(plain)
        let store = MetricsPageStore()
        store.update(plain: plain, gzip: gzip)
        if let dumpDir {
            try Data(plain).write(to: URL(fileURLWithPath: dumpDir).appendingPathComponent("metrics.txt"))
            try Data(gzip).write(to: URL(fileURLWithPath: dumpDir).appendingPathComponent("metrics.txt.gz"))
        }
        let routes = try ExporterRoutes(
            telemetryPath: "/metrics", version: "bench", prefectURL: "http://127.0.0.1:4200/api",
            isReady: { true }, metricsPage: { store.current })
        var configuration = WebServerConfiguration(listenAddress: "127.0.0.1:\(port)")
        configuration.threadPoolSize = threads
        let server = try WebServer(configuration: configuration, handler: routes, logger: Logger(label: "bench.web"))
        say("serve: \(seriesCount) series (\(snapshot.shape)), plain \(plain.count) bytes, gzip \(gzip.count) bytes, "
            + "\(threads) threads, on http://127.0.0.1:\(server.port)/metrics")
        let signal = await waitForTerminationSignal()
        server.stop()
        say("serve: stopped by \(signal)")
    }
}
