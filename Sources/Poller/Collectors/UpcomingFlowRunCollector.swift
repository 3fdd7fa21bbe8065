import Aggregation
import PrefectAPI

/// Counts of future SCHEDULED runs per work queue, with `/flow_runs/count`: one small request
/// per queue (plus one for runs without a queue), however many runs the schedules created.
struct UpcomingFlowRunCollector: Collector {
    /// A work queue to count runs in: its labels and its id (the filter uses the id).
    struct Queue: Sendable {
        var key: QueueKey
        var id: String
    }

    static let name = "flow_runs_upcoming"
    let queues: [Queue]
    /// Whether to count runs with no work queue too.
    let includeNoPool: Bool
    var asksPrefect: Bool { !queues.isEmpty || includeNoPool }

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [QueueKey: Int] {
        let targets: [Queue?] = queues + (includeNoPool ? [nil] : [])
        return try await concurrentMap(targets) { queue throws(PrefectAPIError) in
            let filter = FlowRunQueries.scheduledUpcoming(now: context.now, workQueueID: queue?.id)
            return (queue?.key ?? .none, try await context.client.countFlowRuns(matching: filter))
        }.reduce(into: [:]) { $0[$1.0] = $1.1 }
    }
}
