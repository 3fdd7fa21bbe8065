import PrefectAPI

/// Runs that finished, and runs that started, since the history window's start: bounded by the
/// rate of runs times the poll interval, never by the whole history.
struct FinishedFlowRunCollector: Collector {
    static let name = "flow_runs_finished"

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> (finished: [FlowRun], started: [FlowRun]) {
        async let finished = capture { () async throws(PrefectAPIError) in
            try await context.flowRuns(
                matching: FlowRunQueries.finished(since: context.historyQueryStart), sort: FlowRunQueries.Sort.endTimeDescending)
        }
        async let started = capture { () async throws(PrefectAPIError) in
            try await context.flowRuns(
                matching: FlowRunQueries.started(since: context.historyQueryStart), sort: FlowRunQueries.Sort.startTimeDescending)
        }
        let (finishedRuns, startedRuns) = await (finished, started)
        return (try finishedRuns.get(), try startedRuns.get())
    }
}
