public import ArgumentParser
import Rendering

/// `prefect-exporter metrics`: prints the metric catalogue, every family the exporter can serve.
public struct MetricsCommand: ParsableCommand {
    /// The output formats.
    public enum Format: String, ExpressibleByArgument, CaseIterable, Sendable {
        case text
        case json
    }

    public static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Print every metric family the exporter can serve: name, type, labels, source and help; then exit.",
        discussion: """
            Each family is declared once, by the collector that feeds it or by the exporter itself; this prints \
            those declarations, in the order served, without contacting Prefect. With several Prefect targets \
            the series of the families marked per_target also carry a 'prefect' label (all but build info and \
            process_*); histograms carry 'le' on their buckets. --format json prints \
            {"families": [{"name", "type", "labels", "source", "per_target", "accumulates", "help"}]}, \
            which scripts/check-monitoring compares with the alert rules, dashboards, runbook and README. \
            Exit status: 0.
            """)

    @Option(name: .customLong("format"), help: "Output format: text (tab-separated) or json.")
    public var format: Format = .text

    /// Creates the command; ArgumentParser fills in the options.
    public init() {}

    /// Prints the catalogue.
    public func run() {
        print(format == .json ? MetricCatalogue.json() : MetricCatalogue.text(), terminator: "")
    }
}
