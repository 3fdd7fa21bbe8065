import Collectors
public import Exposition
import PrefectAPI

/// The health families of one poller (one Prefect target). They are served whatever state Prefect is in.
public enum ExporterFamilies {
    public static let up = FamilyDescriptor(
        "prefect_up", .gauge,
        help: "1 if Prefect answered the last poll (at least one collector succeeded), else 0. A failing "
            + "collector shows in prefect_exporter_collector_success.")
    public static let lastPollSuccess = FamilyDescriptor(
        "prefect_exporter_last_poll_success_timestamp_seconds", .gauge,
        help: "When the last poll that Prefect answered (prefect_up 1) finished, in seconds since the epoch. "
            + "Scrapes never call Prefect; the age of each collector's data is in "
            + "prefect_exporter_collector_last_success_timestamp_seconds.")
    public static let pollDuration = FamilyDescriptor(
        "prefect_exporter_poll_duration_seconds", .gauge, help: "Wall time of the last poll of the Prefect API.")
    public static let polls = FamilyDescriptor(
        "prefect_exporter_polls_total", .counter,
        help: "Polls of the Prefect API by result: success (every collector succeeded), partial (some failed), "
            + "failure (all failed), or skipped while honouring Retry-After.",
        labels: ["result"])
    public static let apiRequests = FamilyDescriptor(
        "prefect_exporter_api_requests_total", .counter,
        help: "Requests to the Prefect API by route template and HTTP status code, or transport failure "
            + "(timeout, connection_error, tls_error, response_too_large, error).",
        labels: ["endpoint", "code"])
    public static let collectorSuccess = FamilyDescriptor(
        "prefect_exporter_collector_success", .gauge, help: "1 if the collector succeeded in the last poll, else 0.",
        labels: ["collector"])
    public static let collectorDuration = FamilyDescriptor(
        "prefect_exporter_collector_duration_seconds", .gauge, help: "How long the collector took in the last poll.",
        labels: ["collector"])
    public static let collectorLastSuccess = FamilyDescriptor(
        "prefect_exporter_collector_last_success_timestamp_seconds", .gauge,
        help: "When the collector last succeeded, in seconds since the epoch; absent before its first success. "
            + "Its families keep their last good values until --prefect.max-staleness after this, then disappear.",
        labels: ["collector"])

    public static let pollInterval = FamilyDescriptor(
        "prefect_exporter_poll_interval_seconds", .gauge,
        help: "The interval between polls now: --prefect.poll-interval, or longer while polls at that interval "
            + "would exceed the request budget (prefect_exporter_request_budget_per_minute).")
    public static let requestBudget = FamilyDescriptor(
        "prefect_exporter_request_budget_per_minute", .gauge,
        help: "Requests the exporter allows itself in any minute: route=\"all\" for --prefect.max-requests-per-minute, "
            + "or a route (such as flow_runs) for a limit learned from Prefect's 429 answers. Absent when unbounded.",
        labels: ["route"])
    public static let requestBudgetWait = FamilyDescriptor(
        "prefect_exporter_request_budget_wait_seconds_total", .counter,
        help: "Seconds requests waited to stay within --prefect.max-requests-per-minute.")

    /// Every health family, in the order served.
    public static let families = [
        up, lastPollSuccess, pollDuration, polls, apiRequests, collectorSuccess, collectorDuration, collectorLastSuccess,
        pollInterval, requestBudget, requestBudgetWait,
    ]

    /// The health families of one poller: `prefect_up` to `prefect_exporter_request_budget_wait_seconds_total`.
    static func health(
        up isUp: Bool, lastSuccess: Double?, pollDuration duration: Double, pollCounts: [String: Double],
        requests: [RequestStatistics.Key: Double], outcomes: [CollectorOutcome], collectorLastSuccess lastSuccesses: [String: Double],
        interval: Double, pacing: RequestPacer.Status
    ) -> [MetricFamily] {
        var budgets: [Metric] = pacing.budgetPerMinute.map { [Metric(labels: [Label("route", "all")], value: Double($0))] } ?? []
        budgets += pacing.learnedPerMinute.keys.sorted().map {
            Metric(labels: [Label("route", $0)], value: Double(pacing.learnedPerMinute[$0] ?? 0))
        }
        return [
            up.family([Metric(value: isUp ? 1 : 0)]),
            lastPollSuccess.family(lastSuccess.map { [Metric(value: $0)] } ?? []),
            pollDuration.family([Metric(value: duration)]),
            polls.family(pollCounts.keys.sorted().map { Metric(labels: [Label("result", $0)], value: pollCounts[$0] ?? 0) }),
            apiRequests.family(requests.keys.sorted().map {
                Metric(labels: [Label("endpoint", $0.endpoint), Label("code", $0.code)], value: requests[$0] ?? 0)
            }),
            collectorSuccess.family(outcomes.map { Metric(labels: [Label("collector", $0.name)], value: $0.success ? 1 : 0) }),
            collectorDuration.family(outcomes.map { Metric(labels: [Label("collector", $0.name)], value: $0.duration) }),
            collectorLastSuccess.family(lastSuccesses.keys.sorted().map {
                Metric(labels: [Label("collector", $0)], value: lastSuccesses[$0] ?? 0)
            }),
            pollInterval.family([Metric(value: interval)]),
            requestBudget.family(budgets),
            requestBudgetWait.family([Metric(value: pacing.waitedSeconds)]),
        ]
    }
}
