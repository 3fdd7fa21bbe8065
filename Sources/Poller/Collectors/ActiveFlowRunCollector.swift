import PrefectAPI

/// Runs that are due or in flight: PENDING, RUNNING, PAUSED and CANCELLING runs, and SCHEDULED
/// runs whose start time has passed. Both sets are bounded by what is happening now, not by
/// history or by how far ahead schedules reach.
struct ActiveFlowRunCollector: Collector {
    let name = "flow_runs_active"

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [FlowRun] {
        async let inFlight = capture { () async throws(PrefectAPIError) in
            try await context.flowRuns(matching: FlowRunQueries.inFlight(), sort: FlowRunQueries.Sort.id)
        }
        async let due = capture { () async throws(PrefectAPIError) in
            try await context.flowRuns(
                matching: FlowRunQueries.scheduledDue(now: context.now), sort: FlowRunQueries.Sort.nextScheduledStartAscending)
        }
        let (inFlightRuns, dueRuns) = await (inFlight, due)
        return try inFlightRuns.get() + dueRuns.get()
    }
}
