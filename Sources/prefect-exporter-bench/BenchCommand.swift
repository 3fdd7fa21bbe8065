import ArgumentParser

/// The benchmark driver. Every subcommand runs the exporter's own library code (aggregation,
/// text format, gzip, web server, poller); nothing of the exporter is copied here.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prefect-exporter-bench",
        abstract: "Benchmarks of prefect-exporter: render, serve and poll figures (used by scripts/bench).",
        discussion: """
            render  times PrefectFamilies.build, TextFormat.encodeBytes and Gzip.compress on a synthetic snapshot.
            serve   serves that snapshot through WebServer + ExporterRoutes + MetricsPageStore, for wrk.
            poll    runs the real Poller against a Prefect server and prints the cost of each poll.
            """,
        subcommands: [RenderCommand.self, ServeCommand.self, PollCommand.self])
}
