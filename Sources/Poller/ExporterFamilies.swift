import Exposition
import PrefectAPI

/// The exporter's own health families. They are served whatever state Prefect is in.
enum ExporterFamilies {
    /// The health families of one poller (one Prefect target): `prefect_up` to `prefect_exporter_collector_*`.
    static func health(
        up: Bool, lastSuccess: Double?, pollDuration: Double, pollCounts: [String: Double],
        requests: [RequestStatistics.Key: Double], outcomes: [CollectorOutcome]
    ) -> [MetricFamily] {
        let families: [MetricFamily] = [
            MetricFamily(
                name: "prefect_up", help: "1 if the last poll of the Prefect API fully succeeded, else 0.", type: .gauge,
                metrics: [Metric(value: up ? 1 : 0)]),
            MetricFamily(
                name: "prefect_exporter_last_poll_success_timestamp_seconds",
                help: "When the last successful poll finished, in seconds since the epoch. Scrapes are served from the "
                    + "snapshot of the last poll and never call Prefect, so time() minus this is the age of the data.",
                type: .gauge,
                metrics: lastSuccess.map { [Metric(value: $0)] } ?? []),
            MetricFamily(
                name: "prefect_exporter_poll_duration_seconds", help: "Wall time of the last poll of the Prefect API.",
                type: .gauge, metrics: [Metric(value: pollDuration)]),
            MetricFamily(
                name: "prefect_exporter_polls_total",
                help: "Polls of the Prefect API by result: success, failure, or skipped while honouring Retry-After.",
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
