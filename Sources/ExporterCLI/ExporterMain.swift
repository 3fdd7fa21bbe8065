public import ArgumentParser
import Dispatch
import Foundation
import HTTPClient
import Logging
import Poller
import PrefectAPI
import WebServer

/// The `prefect-exporter` command: parses flags, then runs the exporter until SIGINT or SIGTERM.
public struct ExporterCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "prefect-exporter",
        abstract: "A Prometheus exporter for Prefect: flow runs, late runs, work pools, queues and workers.",
        discussion: """
            The exporter polls the Prefect REST API in the background, read-only, every --prefect.poll-interval, \
            and serves the last snapshot on --web.telemetry-path. Scrapes never call Prefect. \
            Credentials come from the same environment variables as Prefect's own CLI (PREFECT_API_URL, \
            PREFECT_API_KEY, PREFECT_API_AUTH_STRING) or from files.

            Endpoints: / (landing page), /metrics, /-/healthy, /-/ready.
            Exit status: 0 on a clean stop, 1 on a runtime failure, 2 on a bad flag, URL or file.
            """,
        version: ExporterVersion.version)

    @OptionGroup public var options: ExporterOptions

    public init() {}
}

/// Runs the exporter; returns the process exit status.
public enum ExporterMain {
    public static func main(arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Int32 {
        let command: ExporterCommand
        do {
            command = try ExporterCommand.parse(arguments)
        } catch {
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
        let configuration: ExporterConfiguration
        do {
            configuration = try ExporterConfiguration.resolve(command.options, environment: ProcessInfo.processInfo.environment)
        } catch {
            printError("\(error)")
            return 2
        }
        let format = configuration.logFormat
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in StructuredLogHandler(label: label, format: format, level: level) }
        return await run(configuration)
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("prefect-exporter: \(message)\n".utf8))
    }

    static func run(_ configuration: ExporterConfiguration) async -> Int32 {
        let logger = Logger(label: "prefect-exporter")
        let statistics = RequestStatistics()
        let transport = CurlHTTPClient(configuration: configuration.http)
        let client = PrefectClient(configuration: configuration.prefect, transport: transport, observer: statistics.record)

        if configuration.once {
            let output = LockedValue<[UInt8]>([])
            let poller = Poller(
                client: client, configuration: configuration.poller, statistics: statistics, logger: logger
            ) { snapshot in output.withLock { $0 = snapshot.plain } }
            let report = await poller.pollOnce()
            FileHandle.standardOutput.write(Data(output.withLock { $0 }))
            return report.success ? 0 : 1
        }

        let store = MetricsPageStore()
        let ready = LockedValue(false)
        let poller = Poller(
            client: client, configuration: configuration.poller, statistics: statistics, logger: logger
        ) { snapshot in
            store.update(plain: snapshot.plain, gzip: snapshot.gzip)
        }
        let server: WebServer
        do {
            let routes = try ExporterRoutes(
                telemetryPath: configuration.telemetryPath, version: ExporterVersion.version,
                prefectURL: configuration.prefect.redactedBaseURL,
                isReady: { ready.withLock { $0 } },
                metricsPage: { store.current })
            server = try WebServer(configuration: configuration.web, handler: routes, logger: logger)
        } catch {
            logger.error("cannot start the HTTP server: \(error)")
            return 1
        }
        logger.info(
            "prefect-exporter started",
            metadata: [
                "version": "\(ExporterVersion.version)", "listen": "\(server.listenAddress)", "port": "\(server.port)",
                "prefect_url": "\(configuration.prefect.redactedBaseURL)",
                "poll_interval": "\(configuration.poller.interval)",
            ])

        await poller.publishCurrent()
        let pollTask = Task {
            // Ready once the first poll was attempted, whatever its result.
            await poller.pollOnce()
            ready.withLock { $0 = true }
            try? await Task.sleep(for: configuration.poller.interval)
            await poller.run()
        }
        let signal = await waitForTerminationSignal()
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        pollTask.cancel()
        server.stop()
        return 0
    }

    /// Suspends until SIGINT or SIGTERM arrives; returns the signal's name.
    static func waitForTerminationSignal() async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let resumed = LockedValue(false)
            var sources: [any DispatchSourceSignal] = []
            for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
                Foundation.signal(number, SIG_IGN)
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
            Foundation.signal(SIGPIPE, SIG_IGN)
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
