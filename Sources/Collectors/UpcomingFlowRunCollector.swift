import Aggregation
import Exposition
import PrefectAPI

/// Counts of future SCHEDULED runs per work queue, with `/flow_runs/count`: one small request
/// per selected queue (plus one for runs without a queue), however many runs the schedules
/// created. Needs the work-queue list (this poll's, or the last good one).
struct UpcomingFlowRunCollector: Collector {
    static let name = "flow_runs_upcoming"
    static let stage = CollectorStage.runs

    static let upcoming = FamilyDescriptor(
        "prefect_flow_runs_upcoming", .gauge,
        help: "SCHEDULED flow runs whose scheduled start is still in the future, counted per work queue.",
        labels: ["work_pool", "work_queue"])
    static let families = [upcoming]

    /// A work queue to count runs in: its labels and its id (the filter uses the id); nil for the
    /// runs with no work queue.
    private struct Target: Sendable {
        var key: QueueKey
        var id: String?
    }

    func collect(_ context: CollectionContext) async throws(CollectorError) -> [QueueKey: Int] {
        let targets = try Self.targets(context)
        let client = context.client
        do throws(PrefectAPIError) {
            return try await concurrentMap(targets) { target throws(PrefectAPIError) in
                let filter = FlowRunQueries.scheduledUpcoming(now: context.now, workQueueID: target.id)
                return (target.key, try await client.countFlowRuns(matching: filter))
            }.reduce(into: [:]) { $0[$1.0] = $1.1 }
        } catch {
            throw .api(error)
        }
    }

    func asksPrefect(_ context: CollectionContext) -> Bool {
        (try? Self.targets(context).isEmpty == false) ?? false
    }

    /// The selected queues, and the runs with no queue when the selection includes them.
    private static func targets(_ context: CollectionContext) throws(CollectorError) -> [Target] {
        let queues = try context.require(WorkQueueCollector.self, as: "the work-queue list")
        var targets: [Target] = queues.compactMap { queue in
            guard let pool = queue.workPoolName, context.selection.includes(pool) else { return nil }
            return Target(key: QueueKey(workPool: pool, workQueue: queue.name), id: queue.id)
        }
        if context.selection.includes("") { targets.append(Target(key: .none, id: nil)) }
        return targets
    }

    static func contribute(_ output: [QueueKey: Int], to data: inout PollData, selection: WorkPoolSelection) {
        data.upcomingRuns = output
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        var counts = input.data.upcomingRuns
        for queue in input.known.queues where counts[queue] == nil { counts[queue] = 0 }
        return [upcoming.family(counts.keys.sorted().map { Metric(labels: $0.labels, value: Double(counts[$0] ?? 0)) })]
    }
}
