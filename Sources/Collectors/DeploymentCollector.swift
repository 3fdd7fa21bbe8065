import Aggregation
import Exposition
import PrefectAPI

/// Every deployment, and the names of their flows (for `flow-name/deployment-name`, the
/// `deployment` label of every family).
struct DeploymentCollector: Collector {
    static let name = "deployments"
    static let stage = CollectorStage.inventory

    static let info = FamilyDescriptor(
        "prefect_deployment_info", .gauge, help: "Deployments with their flow and default work pool and queue; always 1.",
        labels: ["deployment", "flow", "work_pool", "work_queue"])
    static let status = FamilyDescriptor(
        "prefect_deployment_status", .gauge,
        help: "Deployment status, one series per possible status (READY, NOT_READY); 1 on the current one.",
        labels: ["deployment", "status"])
    static let paused = FamilyDescriptor(
        "prefect_deployment_paused", .gauge, help: "1 if the deployment's schedules are paused, else 0.", labels: ["deployment"])
    static let activeSchedules = FamilyDescriptor(
        "prefect_deployment_active_schedules", .gauge,
        help: "Active schedules of the deployment (0 when it has none, or all are switched off).", labels: ["deployment"])
    static let scheduleInterval = FamilyDescriptor(
        "prefect_deployment_schedule_interval_seconds", .gauge,
        help: "The shortest interval of the deployment's active interval schedules, in seconds; absent for cron and "
            + "rrule schedules and without an active schedule.",
        labels: ["deployment"])
    static let families = [info, status, paused, activeSchedules, scheduleInterval]

    static let statuses = ["READY", "NOT_READY"]

    func collect(_ context: CollectionContext) async throws(CollectorError) -> (deployments: [Deployment], flowNames: [String: String]) {
        do throws(PrefectAPIError) {
            let deployments = try await context.client.deployments()
            let flows = try await context.client.flows(ids: deployments.map(\.flowID))
            return (deployments, flows.reduce(into: [:]) { $0[$1.id] = $1.name })
        } catch {
            throw .api(error)
        }
    }

    static func contribute(
        _ output: (deployments: [Deployment], flowNames: [String: String]), to data: inout PollData, selection: WorkPoolSelection
    ) {
        data.deployments = output.deployments.filter { selection.includes($0.workPoolName ?? "") }
        data.flowNames = output.flowNames
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        let names = input.data.deploymentNames
        let deployments = input.data.deployments
            .map { (name: names[$0.id] ?? $0.name, deployment: $0) }
            .sorted { $0.name < $1.name }
        var info = info.family()
        var status = status.family()
        var paused = paused.family()
        var schedules = activeSchedules.family()
        var intervals = scheduleInterval.family()
        for (name, deployment) in deployments {
            let label = Label("deployment", name)
            info.metrics.append(Metric(
                labels: [
                    label, Label("flow", input.data.flowNames[deployment.flowID] ?? ""),
                    Label("work_pool", deployment.workPoolName ?? ""), Label("work_queue", deployment.workQueueName ?? ""),
                ],
                value: 1))
            let current = deployment.status ?? "NOT_READY"
            for candidate in statuses {
                status.metrics.append(Metric(labels: [label, Label("status", candidate)], value: current == candidate ? 1 : 0))
            }
            paused.metrics.append(Metric(labels: [label], value: deployment.paused ? 1 : 0))
            let active = deployment.schedules.filter(\.active)
            schedules.metrics.append(Metric(labels: [label], value: Double(active.count)))
            if let shortest = active.compactMap(\.interval).min() {
                intervals.metrics.append(Metric(labels: [label], value: shortest))
            }
        }
        return [info, status, paused, schedules, intervals]
    }
}
