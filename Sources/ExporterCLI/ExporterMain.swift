public import ArgumentParser
import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import HTTPClient
import Logging
import Poller
public import Rendering
import PrefectAPI
public import WebServer
import Locking

/// The `prefect-exporter` command: parses flags, then runs the exporter until SIGINT or SIGTERM.
/// Its subcommands `check` and `once` take the same flags.
public struct ExporterCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "prefect-exporter",
        abstract: "A Prometheus exporter for Prefect: flow runs, late runs, work pools, queues and workers.",
        usage: """
            prefect-exporter [<options>]
            prefect-exporter check [<options>]
            prefect-exporter once [<options>]
            prefect-exporter metrics [--format text|json]
            """,
        discussion: """
            The exporter polls the Prefect REST API in the background, read-only, every --prefect.poll-interval, \
            and serves the last snapshot on --web.telemetry-path. Scrapes never call Prefect. \
            Credentials come from the same environment variables as Prefect's own CLI (PREFECT_API_URL, \
            PREFECT_API_KEY, PREFECT_API_AUTH_STRING) or from files.

            Settings can also come from a YAML file (--config.file), which can list several Prefect targets; \
            flags win over the environment, which wins over the file. Without a subcommand the exporter runs; \
            'check' tests the configuration and each Prefect, 'once' prints one snapshot, 'metrics' lists every \
            metric family the exporter can serve.

            Endpoints: / (landing page), /metrics (text format 0.0.4, or OpenMetrics 1.0.0 when asked for), \
            /-/healthy, /-/ready.
            Exit status: 0 on a clean stop, 1 on a runtime failure, 2 on a bad flag, URL or file.
            """,
        version: ExporterVersion.version,
        subcommands: [CheckCommand.self, OnceCommand.self, MetricsCommand.self])

    @OptionGroup public var options: ExporterOptions

    public init() {}
}

/// Runs the exporter; returns the process exit status.
public enum ExporterMain {
    public static func main(arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Int32 {
        let command: any ParsableCommand
        do {
            command = try ExporterCommand.parseAsRoot(arguments)
        } catch {
            return reportParseError(error)
        }
        let options: ExporterOptions
        let mode: Mode
        switch command {
        case let check as CheckCommand:
            guard !check.options.once else {
                printError("--once cannot be combined with check; use 'prefect-exporter once' (see --help)")
                return 2
            }
            (options, mode) = (check.options, .check)
        case let once as OnceCommand: (options, mode) = (once.options, .once)
        case let exporter as ExporterCommand: (options, mode) = (exporter.options, exporter.options.once ? .once : .serve)
        default:
            // ArgumentParser's own commands, such as `help`.
            do {
                var other = command
                try other.run()
                return 0
            } catch {
                return reportParseError(error)
            }
        }
        let configuration: ExporterConfiguration
        do {
            configuration = try ExporterConfiguration.resolve(options, environment: ProcessInfo.processInfo.environment)
        } catch {
            printError("\(error)")
            return 2
        }
        let format = configuration.logFormat
        // `check` reports failures itself; the poller's logs would repeat them (unless debugging).
        let level = mode == .check && configuration.logLevel > .debug ? Logger.Level.critical : configuration.logLevel
        LoggingSystem.bootstrap { label in StructuredLogHandler(label: label, format: format, level: level) }
        switch mode {
        case .serve: return await run(configuration)
        case .once: return await runOnce(configuration)
        case .check: return await runCheck(configuration)
        }
    }

    /// What the command line asked for.
    enum Mode {
        /// Run the exporter (no subcommand).
        case serve
        /// `once` or `--once`.
        case once
        /// `check`.
        case check
    }

    /// Help, version and completion requests print to standard output and return 0; anything else
    /// prints one line to standard error and returns 2.
    static func reportParseError(_ error: any Error) -> Int32 {
        let status = ExporterCommand.exitCode(for: error)
        if status == .success {
            print(ExporterCommand.fullMessage(for: error))
            return 0
        }
        let message = ExporterCommand.message(for: error)
            .split(separator: "\n").first.map(String.init) ?? "invalid arguments"
        printError("\(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message) (see --help)")
        return 2
    }

    static func printError(_ message: String) {
        StandardStream.error.write(Array("prefect-exporter: \(message)\n".utf8))
    }

    static func run(_ configuration: ExporterConfiguration) async -> Int32 {
        let logger = Logger(label: "prefect-exporter")
        if configuration.once { return await runOnce(configuration) }
        FreedHeapMemory.keepLargeBlocksMapped()

        let store = MetricsPageStore()
        // Ready once every target's first poll was attempted.
        let attempted = LockedValue(0)
        let targetCount = configuration.targets.count
        let runtime = ExporterRuntime(
            configuration: configuration, logger: logger, includesProcessMetrics: true, rendersOpenMetrics: true
        ) { page in
            publish(page, to: store)
        }
        let server: WebServer
        do {
            let routes = try ExporterRoutes(
                telemetryPath: configuration.telemetryPath, version: ExporterVersion.version,
                prefectURL: runtime.prefectDescription,
                isReady: { attempted.withLock { $0 } >= targetCount },
                metricsPage: { store.current },
                openMetricsPage: { store.currentOpenMetrics })
            server = try WebServer(configuration: configuration.web, handler: routes, logger: logger)
        } catch {
            logger.error("cannot start the HTTP server: \(error)")
            return 1
        }
        logger.info(
            "prefect-exporter started",
            metadata: [
                "version": "\(ExporterVersion.version)", "listen": "\(server.listenAddress)", "port": "\(server.port)",
                "prefect_url": "\(runtime.prefectDescription)",
                "poll_interval": "\(configuration.poller.interval)",
            ])

        for target in runtime.targets { await target.poller.publishCurrent() }
        // Each target polls on its own: a slow or failing Prefect does not delay the others.
        let pollTasks = runtime.targets.map { target in
            Task {
                // Ready once the first poll was attempted, whatever its result.
                await target.poller.pollOnce()
                attempted.withLock { $0 += 1 }
                try? await Task.sleep(for: target.configuration.poller.interval)
                await target.poller.run()
            }
        }
        let signal = await waitForTerminationSignal()
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        for task in pollTasks { task.cancel() }
        server.stop()
        return 0
    }

    /// Hands a page to the web server's store: the text format now, OpenMetrics on first request.
    public static func publish(_ page: MergedExposition, to store: MetricsPageStore) {
        guard let openMetrics = page.openMetrics else {
            store.update(plain: page.text, gzip: page.textGzip)
            return
        }
        store.update(plain: page.text, gzip: page.textGzip) { () -> (plain: [UInt8], gzip: [UInt8]?) in
            let rendered = openMetrics.value
            return (rendered.plain, rendered.gzip)
        }
    }

    /// Suspends until SIGINT or SIGTERM arrives; returns the signal's name.
    static func waitForTerminationSignal() async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let resumed = LockedValue(false)
            var sources: [any DispatchSourceSignal] = []
            for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
                _ = signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    let first = resumed.withLock { done -> Bool in
                        defer { done = true }
                        return !done
                    }
                    if first { continuation.resume(returning: name) }
                }
                source.resume()
                sources.append(source)
            }
            _ = signal(SIGPIPE, SIG_IGN)
            // The sources must live for the rest of the process.
            SignalSources.keep(sources)
        }
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    private static let retained = LockedValue<[any DispatchSourceSignal]>([])

    static func keep(_ sources: [any DispatchSourceSignal]) {
        retained.withLock { $0 += sources }
    }
}
