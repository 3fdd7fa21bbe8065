public import ArgumentParser
import Exposition
import HTTPClient
import Logging
import Poller
import PrefectAPI

/// `prefect-exporter check`: validates the flags and config file, polls each Prefect once and
/// prints what it found.
public struct CheckCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the configuration and each Prefect: version, auth, counts and warnings; then exit.",
        discussion: """
            Validates the flags, environment and --config.file as the exporter would, polls each configured \
            Prefect once, exactly as the exporter does, and prints for each: the Prefect version, whether the \
            credentials were accepted, how many work pools, work queues, deployments and unfinished flow runs \
            it has, and warnings worth acting on now (late runs, NOT_READY work pools, paused work queues with \
            scheduled runs). Takes the same flags as the exporter.

            Exit status: 0 if every collector of every Prefect succeeded (warnings do not fail the check), 1 if \
            one did not (the reason is printed: DNS, TLS, a rejected credential, a wrong URL path, or the \
            collectors that failed while Prefect answered, e.g. a 403 on one endpoint), 2 on a bad flag, config \
            file or credential file.
            """)

    /// The same flags as the exporter's.
    @OptionGroup public var options: ExporterOptions

    /// Creates the command; ArgumentParser fills in the options.
    public init() {}
}

/// `prefect-exporter once`: the same as `--once`.
public struct OnceCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "once",
        abstract: "Poll once, print the metrics in the text format and exit (the same as --once).",
        discussion: """
            The output suits node_exporter's textfile collector: write it to a temporary file and rename it into \
            the collector's directory. It has no process_* metrics, which node_exporter reports itself. \
            Exit status: 0 if every collector of every poll succeeded, 1 if one failed (the metrics are printed \
            anyway: prefect_up 0 when Prefect did not answer, prefect_exporter_collector_success 0 for a \
            collector that failed), 2 on a bad flag or file.
            """)

    /// The same flags as the exporter's.
    @OptionGroup public var options: ExporterOptions

    /// Creates the command; ArgumentParser fills in the options.
    public init() {}
}

extension ExporterMain {
    /// Polls every target once and prints the text format; 0 if every poll succeeded, else 1.
    static func runOnce(_ configuration: ExporterConfiguration) async -> Int32 {
        let logger = Logger(label: "prefect-exporter")
        let runtime = ExporterRuntime(
            configuration: configuration, logger: logger, includesProcessMetrics: false, rendersOpenMetrics: false
        ) { _ in }
        let reports = await runtime.pollAllOnce()
        StandardStream.output.write(runtime.merger.current().text)
        return reports.allSatisfy(\.success) ? 0 : 1
    }

    /// Runs `check`: prints a report per target on standard output and one line per failed target on
    /// standard error; 0 if every target answered, else 1.
    static func runCheck(_ configuration: ExporterConfiguration) async -> Int32 {
        let logger = Logger(label: "prefect-exporter")
        var sources = "flags and environment"
        if let file = configuration.configFile { sources += " and \(file)" }
        let count = configuration.targets.count
        print("Configuration: OK (\(sources); \(count) Prefect target\(count == 1 ? "" : "s"))")
        // Polled exactly as the exporter polls, through the same wiring.
        let runtime = ExporterRuntime(
            configuration: configuration, logger: logger, includesProcessMetrics: false, rendersOpenMetrics: false
        ) { _ in }
        let reports = await runtime.pollAllOnce()
        let results = zip(reports, runtime.targets).enumerated().map { index, entry in
            (index, entry.0, entry.1.snapshot?.prefect ?? [])
        }
        var failed = false
        for (index, report, families) in results {
            let target = configuration.targets[index]
            print("")
            print(CheckReport.render(target: target, report: report, summary: CheckSummary(families: families)), terminator: "")
            if !CheckReport.passes(report) {
                failed = true
                let name = target.name.map { "target '\($0)'" } ?? target.prefect.redactedBaseURL
                printError("check failed for \(name): \(CheckReport.failure(report, target: target))")
            }
        }
        return failed ? 1 : 0
    }
}
