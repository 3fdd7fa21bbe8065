public import Exposition

/// The families the page adds once, whatever the number of Prefect targets.
public enum PageFamilies {
    public static let buildInfoDescriptor = FamilyDescriptor(
        "prefect_exporter_build_info", .gauge, help: "The exporter's version and revision; always 1.",
        labels: ["version", "revision"])
    public static let seriesDropped = FamilyDescriptor(
        "prefect_exporter_series_dropped_total", .counter,
        help: "Series left out of Prefect-derived families by --metrics.max-series-per-family, by family, "
            + "counted at each poll.",
        labels: ["family"])

    /// `prefect_exporter_build_info`.
    static func buildInfo(version: String, revision: String) -> MetricFamily {
        buildInfoDescriptor.family([Metric(labels: [Label("version", version), Label("revision", revision)], value: 1)])
    }
}
