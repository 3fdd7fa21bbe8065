import Aggregation
import Exposition
import PrefectAPI

/// Concurrency limits (Prefect's V2 limits): global limits, tag limits (`tag:<tag>`) and
/// deployment limits (`deployment:<id>`), with their slots. A saturated limit is the usual reason
/// runs wait in `AwaitingConcurrencySlot`. One paged request per poll. With the work pools split
/// between exporters, each limit is reported by one of them (see ``isReported(_:selected:known:settings:)``).
struct ConcurrencyLimitCollector: Collector {
    static let name = "concurrency_limits"
    static let stage = CollectorStage.inventory

    static let limit = FamilyDescriptor(
        "prefect_concurrency_limit", .gauge,
        help: "Slots of a concurrency limit. kind is global, tag or deployment; name is the limit's name, the tag, or "
            + "the deployment (flow/deployment, its id when unknown).",
        labels: ["kind", "name"])
    static let activeSlots = FamilyDescriptor(
        "prefect_concurrency_limit_active_slots", .gauge, help: "Slots of a concurrency limit taken now.",
        labels: ["kind", "name"])
    static let active = FamilyDescriptor(
        "prefect_concurrency_limit_active", .gauge, help: "1 if the concurrency limit is enforced, 0 if it is switched off.",
        labels: ["kind", "name"])
    static let families = [limit, activeSlots, active]

    func collect(_ context: CollectionContext) async throws(CollectorError) -> [ConcurrencyLimit] {
        do throws(PrefectAPIError) {
            return try await context.client.concurrencyLimits()
        } catch {
            throw .api(error)
        }
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        let names = input.data.deploymentNames
        let allDeployments = Set((input.outputs.last(DeploymentCollector.self)?.deployments ?? []).map(\.id))
        let labelled = (input.outputs.last(Self.self) ?? [])
            .filter { isReported($0, selected: names, known: allDeployments, settings: input.settings) }
            .map { (labels: labels(of: $0, deploymentNames: names), limit: $0) }
            .sorted { ($0.labels[0].value, $0.labels[1].value) < ($1.labels[0].value, $1.labels[1].value) }
        return [
            limit.family(labelled.map { Metric(labels: $0.labels, value: Double($0.limit.limit)) }),
            activeSlots.family(labelled.map { Metric(labels: $0.labels, value: Double($0.limit.activeSlots)) }),
            active.family(labelled.map { Metric(labels: $0.labels, value: $0.limit.active ? 1 : 0) }),
        ]
    }

    /// Whether this exporter reports a limit when work pools are split between exporters
    /// (`--prefect.work-pool-include/exclude`): a deployment's limit belongs to the exporter that
    /// reports the deployment; global and tag limits, and limits of deployments no exporter knows,
    /// belong to the one that reports runs without a work pool, so each limit is reported once.
    static func isReported(
        _ limit: ConcurrencyLimit, selected: [String: String], known: Set<String>, settings: AggregationSettings
    ) -> Bool {
        guard limit.name.hasPrefix("deployment:") else { return settings.includesRunsWithoutPool }
        let id = String(limit.name.dropFirst(11))
        if selected[id] != nil { return true }
        return !known.contains(id) && settings.includesRunsWithoutPool
    }

    /// `kind` and `name`: a tag limit is named by its tag, a deployment limit by its deployment.
    static func labels(of limit: ConcurrencyLimit, deploymentNames: [String: String]) -> [Label] {
        if limit.name.hasPrefix("tag:") {
            return [Label("kind", "tag"), Label("name", String(limit.name.dropFirst(4)))]
        }
        if limit.name.hasPrefix("deployment:") {
            let id = String(limit.name.dropFirst(11))
            return [Label("kind", "deployment"), Label("name", deploymentNames[id] ?? id)]
        }
        return [Label("kind", "global"), Label("name", limit.name)]
    }
}
