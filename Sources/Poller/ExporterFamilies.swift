import Exposition
import PrefectAPI

/// The exporter's own health families. They are served whatever state Prefect is in.
enum ExporterFamilies {
    /// The health families of one poller (one Prefect target): `prefect_up` to `prefect_exporter_collector_*`.
    static func health(
        up: Bool, lastSuccess: Double?, pollDuration: Double, pollCounts: [String: Double],
        requests: [RequestStatistics.Key: Double], outcomes: [CollectorOutcome], collectorLastSuccess: [String: Double]
    ) -> [MetricFamily] {
        let families: [MetricFamily] = [
            MetricFamily(
                name: "prefect_up",
                help: "1 if Prefect answered the last poll (at least one collector succeeded), else 0. A failing "
                    + "collector shows in prefect_exporter_collector_success.",
                type: .gauge,
                metrics: [Metric(value: up ? 1 : 0)]),
            MetricFamily(
                name: "prefect_exporter_last_poll_success_timestamp_seconds",
                help: "When the last poll that Prefect answered (prefect_up 1) finished, in seconds since the epoch. "
                    + "Scrapes never call Prefect; the age of each collector's data is in "
                    + "prefect_exporter_collector_last_success_timestamp_seconds.",
                type: .gauge,
                metrics: lastSuccess.map { [Metric(value: $0)] } ?? []),
            MetricFamily(
                name: "prefect_exporter_poll_duration_seconds", help: "Wall time of the last poll of the Prefect API.",
                type: .gauge, metrics: [Metric(value: pollDuration)]),
            MetricFamily(
                name: "prefect_exporter_polls_total",
                help: "Polls of the Prefect API by result: success (every collector succeeded), partial (some failed), "
                    + "failure (all failed), or skipped while honouring Retry-After.",
                type: .counter,
                metrics: pollCounts.keys.sorted().map { Metric(labels: [Label("result", $0)], value: pollCounts[$0] ?? 0) }),
            MetricFamily(
                name: "prefect_exporter_api_requests_total",
                help: "Requests to the Prefect API by route template and HTTP status code, or transport failure "
                    + "(timeout, connection_error, tls_error, response_too_large, error).",
                type: .counter,
                metrics: requests.keys.sorted().map {
                    Metric(labels: [Label("endpoint", $0.endpoint), Label("code", $0.code)], value: requests[$0] ?? 0)
                }),
            MetricFamily(
                name: "prefect_exporter_collector_success",
                help: "1 if the collector succeeded in the last poll, else 0.", type: .gauge,
                metrics: outcomes.map { Metric(labels: [Label("collector", $0.name)], value: $0.success ? 1 : 0) }),
            MetricFamily(
                name: "prefect_exporter_collector_duration_seconds",
                help: "How long the collector took in the last poll.", type: .gauge,
                metrics: outcomes.map { Metric(labels: [Label("collector", $0.name)], value: $0.duration) }),
            MetricFamily(
                name: "prefect_exporter_collector_last_success_timestamp_seconds",
                help: "When the collector last succeeded, in seconds since the epoch; absent before its first success. "
                    + "Its families keep their last good values until --prefect.max-staleness after this, then disappear.",
                type: .gauge,
                metrics: collectorLastSuccess.keys.sorted().map {
                    Metric(labels: [Label("collector", $0)], value: collectorLastSuccess[$0] ?? 0)
                }),
        ]
        return families
    }

    /// `prefect_exporter_build_info`: once per exporter, whatever the number of targets.
    static func buildInfo(version: String, revision: String) -> MetricFamily {
        MetricFamily(
            name: "prefect_exporter_build_info", help: "The exporter's version and revision; always 1.", type: .gauge,
            metrics: [Metric(labels: [Label("version", version), Label("revision", revision)], value: 1)])
    }
}
