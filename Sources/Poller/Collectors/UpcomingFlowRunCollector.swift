import Aggregation
import PrefectAPI

/// Counts of future SCHEDULED runs per work queue, with `/flow_runs/count`: one small request
/// per queue (plus one for runs without a queue), however many runs the schedules created.
struct UpcomingFlowRunCollector: Collector {
    let name = "flow_runs_upcoming"
    let queues: [QueueKey]
    /// Whether to count runs with no work queue too.
    let includeNoPool: Bool

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [QueueKey: Int] {
        let targets = queues + (includeNoPool ? [QueueKey.none] : [])
        return try await concurrentMap(targets) { queue throws(PrefectAPIError) in
            let filter = queue == .none
                ? FlowRunQueries.scheduledUpcoming(now: context.now, workPool: nil, workQueue: nil)
                : FlowRunQueries.scheduledUpcoming(now: context.now, workPool: queue.workPool, workQueue: queue.workQueue)
            return (queue, try await context.client.countFlowRuns(matching: filter))
        }.reduce(into: [:]) { $0[$1.0] = $1.1 }
    }
}
