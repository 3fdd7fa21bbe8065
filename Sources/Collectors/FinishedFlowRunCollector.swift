import Aggregation
import Exposition
import PrefectAPI
import HTTPClient
import Locking

/// Runs that finished, and runs that started, since the history window's start: bounded by the
/// rate of runs times the poll interval, never by the whole history. Each poll's runs are counted
/// into a ``RunHistory`` this collector keeps (each run once), which its families report.
struct FinishedFlowRunCollector: Collector {
    static let name = "flow_runs_finished"
    static let stage = CollectorStage.runs

    static let finished = FamilyDescriptor(
        "prefect_flow_runs_finished_total", .counter,
        help: "Flow runs that reached a terminal state (COMPLETED, FAILED, CRASHED, CANCELLED) since the exporter "
            + "started; each run is counted once.",
        labels: ["work_pool", "work_queue", "deployment", "state_type"])
    static let startDelay = FamilyDescriptor(
        "prefect_flow_run_start_delay_seconds", .histogram,
        help: "How long after their expected start time runs started (start_time - expected_start_time), for runs "
            + "that started since the exporter started.",
        labels: ["work_pool", "work_queue"], accumulates: true)
    static let duration = FamilyDescriptor(
        "prefect_flow_run_duration_seconds", .histogram,
        help: "Run time (Prefect's total_run_time) of runs that finished after they had started, since the exporter "
            + "started.",
        labels: ["work_pool", "work_queue", "state_type"], accumulates: true)
    static let families = [finished, startDelay, duration]

    /// The history as of this poll, and the runs the poll saw finish or start (the due-run ledger
    /// drops them).
    struct Output: Sendable {
        var history: RunHistory
        var departed: [FlowRun]
    }

    private final class State: Sendable {
        let history: LockedValue<RunHistory>
        init(_ history: RunHistory) { self.history = LockedValue(history) }
    }

    private let state: State

    /// - Parameters:
    ///   - startTime: when counting starts (the exporter's start), seconds since the epoch.
    ///   - overlap: how far each query window reaches back before the previous poll, in seconds.
    init(startTime: Double, overlap: Double, settings: AggregationSettings) {
        state = State(RunHistory(startTime: startTime, overlap: overlap, settings: settings))
    }

    func collect(_ context: CollectionContext) async throws(CollectorError) -> Output {
        let since = state.history.withLock { $0.queryStart }
        async let finished = capture { () async throws(CollectorError) in
            try await context.flowRuns(matching: FlowRunQueries.finished(since: since), sort: FlowRunQueries.Sort.endTimeDescending)
        }
        async let started = capture { () async throws(CollectorError) in
            try await context.flowRuns(matching: FlowRunQueries.started(since: since), sort: FlowRunQueries.Sort.startTimeDescending)
        }
        let (finishedResult, startedResult) = (await finished, await started)
        if let cause = CollectorError.cause(among: [finishedResult.failure, startedResult.failure].compactMap { $0 }) {
            throw cause
        }
        let (finishedRuns, startedRuns) = (try finishedResult.get(), try startedResult.get())
        // The deployment labels as the other families give them (the selected deployments).
        var names = PollData()
        if let deployments = context.inputs.last(DeploymentCollector.self) {
            DeploymentCollector.contribute(deployments, to: &names, selection: context.selection)
        }
        let deploymentNames = names.deploymentNames
        let inSelection = { (run: FlowRun) in context.selection.includes(run.workPoolName ?? "") }
        let history = state.history.withLock { history in
            history.ingest(
                finished: finishedRuns.filter(inSelection), started: startedRuns.filter(inSelection),
                deploymentNames: deploymentNames, pollTime: context.now)
            return history
        }
        return Output(history: history, departed: finishedRuns + startedRuns)
    }

    static func contribute(_ output: Output, to data: inout PollData, selection: WorkPoolSelection) {
        data.history = output.history
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        guard let history = input.data.history else { return [] }
        let known = input.known
        let settings = input.settings
        var finishedCounts = history.finished
        for key in known.runKeys {
            for type in StateType.terminal {
                let finishedKey = RunHistory.FinishedKey(queue: key.queue, deployment: key.deployment, stateType: type)
                if finishedCounts[finishedKey] == nil { finishedCounts[finishedKey] = 0 }
            }
        }
        let finishedFamily = finished.family(finishedCounts.keys.sorted().map { key in
            Metric(
                labels: known.runLabels(key.queue, deployment: key.deployment) + [Label("state_type", key.stateType.rawValue)],
                value: finishedCounts[key] ?? 0)
        })

        var startDelays = history.startDelays
        for queue in known.queues where startDelays[queue] == nil {
            startDelays[queue] = Histogram(upperBounds: settings.startDelayBuckets)
        }
        let startDelayFamily = startDelay.family(startDelays.keys.sorted().compactMap { queue in
            startDelays[queue].map { Metric(labels: queue.labels, histogram: $0) }
        })

        var durations = history.durations
        for queue in known.queues {
            for type in StateType.terminal {
                let key = RunHistory.DurationKey(queue: queue, stateType: type)
                if durations[key] == nil { durations[key] = Histogram(upperBounds: settings.durationBuckets) }
            }
        }
        let durationFamily = duration.family(durations.keys.sorted().compactMap { key in
            durations[key].map { Metric(labels: key.queue.labels + [Label("state_type", key.stateType.rawValue)], histogram: $0) }
        })
        return [finishedFamily, startDelayFamily, durationFamily]
    }
}
