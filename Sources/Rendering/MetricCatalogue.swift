import Collectors
public import Exposition
import Poller
import PrefectAPI

/// Every metric family the exporter can serve, each declared once in Swift: by the collector that
/// feeds it, by the poller (health) or by the page (build info, dropped series, `process_*`).
/// `prefect-exporter metrics` prints it; the alert rules, dashboards, runbook and README are
/// checked against that output by `scripts/check-monitoring`.
public enum MetricCatalogue {
    /// One family and where it comes from.
    public struct Entry: Sendable {
        public var descriptor: FamilyDescriptor
        /// The collector that feeds it (`work_pools`, ...), `exporter` for the exporter's own
        /// families, or `process` for the `process_*` ones.
        public var source: String
        /// Whether, with several Prefect targets, its series carry the `prefect` label (false for
        /// the families written once per exporter: build info and `process_*`).
        public var perTarget: Bool
    }

    /// Every family, in the order served.
    public static let entries: [Entry] = {
        var entries = ExporterFamilies.families.map { Entry(descriptor: $0, source: "exporter", perTarget: true) }
        entries.append(Entry(descriptor: PageFamilies.seriesDropped, source: "exporter", perTarget: true))
        entries.append(Entry(descriptor: PageFamilies.buildInfoDescriptor, source: "exporter", perTarget: false))
        entries += ProcessMetrics.descriptors.map { Entry(descriptor: $0, source: "process", perTarget: false) }
        entries += PrefectCollectors.families.map {
            Entry(descriptor: $0, source: PrefectCollectors.collectorOfFamily[$0.name] ?? "", perTarget: true)
        }
        return entries
    }()

    /// The catalogue as JSON: `{"families": [{"name", "type", "labels", "source", "per_target", "accumulates", "help"}]}`,
    /// one family per line, in the order served.
    public static func json() -> String {
        let lines = entries.map { entry in
            let family = entry.descriptor
            let object: JSONValue = .object([
                (key: "name", value: .string(family.name)), (key: "type", value: .string(family.type.rawValue)),
                (key: "labels", value: .array(family.labels.map(JSONValue.string))), (key: "source", value: .string(entry.source)),
                (key: "per_target", value: .bool(entry.perTarget)), (key: "accumulates", value: .bool(family.accumulates)),
                (key: "help", value: .string(family.help)),
            ])
            return "    " + object.serialized
        }
        return "{\"families\": [\n" + lines.joined(separator: ",\n") + "\n]}\n"
    }

    /// The catalogue as a table for people: name, type, labels and help, one family per line.
    public static func text() -> String {
        entries.map { entry in
            let family = entry.descriptor
            let labels = family.labels.isEmpty ? "-" : family.labels.joined(separator: ",")
            return "\(family.name)\t\(family.type.rawValue)\t\(labels)\t\(entry.source)\t\(family.help)"
        }.joined(separator: "\n") + "\n"
    }
}
