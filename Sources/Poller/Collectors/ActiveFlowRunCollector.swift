import Aggregation
import PrefectAPI

/// Runs that are in flight (PENDING, RUNNING, PAUSED and CANCELLING): a set bounded by what is
/// happening now. The due SCHEDULED runs, the other half of `flow_runs_active`, are kept between
/// polls in a ``DueRunLedger`` and brought up to date by ``DueRunSync`` once this query and the
/// finished-runs query have answered (they tell which due runs have left).
struct ActiveFlowRunCollector: Collector {
    static let name = "flow_runs_active"

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [FlowRun] {
        try await context.flowRuns(matching: FlowRunQueries.inFlight(), sort: FlowRunQueries.Sort.id)
    }
}
