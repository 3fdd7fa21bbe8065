import Aggregation
import Exposition
import PrefectAPI
import HTTPClient
import Locking

/// The runs that are due or in flight: `prefect_flow_runs`, the late runs and the running time.
///
/// The in-flight runs (PENDING, RUNNING, PAUSED and CANCELLING) are a set bounded by what is
/// happening now, and are listed each poll. The due SCHEDULED runs can pile up by the thousand,
/// so they are kept between polls in a ``DueRunLedger`` that ``DueRunSync`` brings up to date at
/// a cost bounded by what changed, once this poll's in-flight and finished runs are known (they
/// tell which due runs have left).
struct ActiveFlowRunCollector: Collector {
    static let name = "flow_runs_active"
    static let stage = CollectorStage.runs

    static let runs = FamilyDescriptor(
        "prefect_flow_runs", .gauge,
        help: "Flow runs that are due or in flight, by state: every PENDING, RUNNING, PAUSED and CANCELLING run, "
            + "and SCHEDULED runs whose scheduled start has passed. Future scheduled runs are in prefect_flow_runs_upcoming.",
        labels: ["work_pool", "work_queue", "deployment", "state_type", "state_name"])
    static let late = FamilyDescriptor(
        "prefect_flow_runs_late", .gauge,
        help: "SCHEDULED flow runs whose scheduled start is more than --prefect.late-after in the past, whatever their "
            + "state name (Prefect's late-runs service may not have renamed them Late yet).",
        labels: ["work_pool", "work_queue", "deployment"])
    static let lateness = FamilyDescriptor(
        "prefect_flow_run_lateness_seconds", .histogram, help: "How late each currently late flow run is, in seconds.",
        labels: ["work_pool", "work_queue"])
    static let maxLateness = FamilyDescriptor(
        "prefect_flow_run_max_lateness_seconds", .gauge,
        help: "Lateness of the latest currently late flow run, in seconds; 0 when none is late.", labels: ["work_pool", "work_queue"])
    static let running = FamilyDescriptor(
        "prefect_flow_run_running_seconds", .histogram, help: "How long each RUNNING flow run has been running, in seconds.",
        labels: ["work_pool", "work_queue"])
    static let maxRunning = FamilyDescriptor(
        "prefect_flow_run_max_running_seconds", .gauge,
        help: "How long the longest RUNNING flow run has been running, in seconds; 0 when none runs.",
        labels: ["work_pool", "work_queue"])
    static let families = [runs, late, lateness, maxLateness, running, maxRunning]

    struct Output: Sendable {
        var inFlight: [FlowRun]
        var dueRuns: DueRunLedger
    }

    /// The ledger between polls; it grows over several polls while a large pile is listed.
    private final class State: Sendable {
        let ledger = LockedValue(DueRunLedger())
    }

    private let state = State()
    /// How far each due-run window reaches back before the previous sync, in seconds.
    let dueRunOverlap: Double

    init(dueRunOverlap: Double) {
        self.dueRunOverlap = dueRunOverlap
    }

    func collect(_ context: CollectionContext) async throws(CollectorError) -> Output {
        let inFlight = try await context.flowRuns(matching: FlowRunQueries.inFlight(), sort: FlowRunQueries.Sort.id)
        // The runs that finished or started in this poll left the due set too.
        let departed = await context.outputOfThisPoll(FinishedFlowRunCollector.self)?.departed ?? []
        let sync = DueRunSync(context: context, scopes: try context.requireRunScopes(), overlap: dueRunOverlap)
        let ledger = state.ledger.withLock { $0 }
        let synced: (ledger: DueRunLedger, complete: Bool)
        do throws(PrefectAPIError) {
            synced = try await sync.synced(ledger, departures: inFlight + departed)
        } catch {
            throw .api(error)
        }
        state.ledger.withLock { $0 = synced.ledger }
        guard synced.complete else { throw .listingDueRuns(listed: synced.ledger.count) }
        return Output(inFlight: Self.stillInFlight(inFlight, departed: departed), dueRuns: synced.ledger)
    }

    /// The in-flight runs without those that the finished-runs query of the same poll shows ended.
    /// The two queries are answered at different moments of the poll; a run that ended between them
    /// would otherwise be counted as running and as finished on the same page.
    static func stillInFlight(_ inFlight: [FlowRun], departed: [FlowRun]) -> [FlowRun] {
        let ended = Set(departed.compactMap { run in
            run.stateType.map { StateType.terminal.contains($0) } == true ? run.id : nil
        })
        return ended.isEmpty ? inFlight : inFlight.filter { !ended.contains($0.id) }
    }

    static func contribute(_ output: Output, to data: inout PollData, selection: WorkPoolSelection) {
        data.activeRuns = output.inFlight.filter { selection.includes($0.workPoolName ?? "") }
        data.dueRuns = output.dueRuns
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        let known = input.known
        let tally = RunsNow(data: input.data, known: known, settings: input.settings, now: input.now)
        return [
            runs.family(tally.states.keys.sorted().map { key in
                Metric(
                    labels: known.runLabels(key.run.queue, deployment: key.run.deployment)
                        + [Label("state_type", key.stateType.rawValue), Label("state_name", key.stateName)],
                    value: Double(tally.states[key] ?? 0))
            }),
            late.family(tally.late.keys.sorted().map { key in
                Metric(labels: known.runLabels(key.queue, deployment: key.deployment), value: Double(tally.late[key] ?? 0))
            }),
            lateness.family(histograms(tally.lateness)),
            maxLateness.family(gauges(tally.maxLateness)),
            running.family(histograms(tally.running)),
            maxRunning.family(gauges(tally.maxRunning)),
        ]
    }

    private static func histograms(_ values: [QueueKey: Histogram]) -> [Metric] {
        values.keys.sorted().compactMap { queue in values[queue].map { Metric(labels: queue.labels, histogram: $0) } }
    }

    private static func gauges(_ values: [QueueKey: Double]) -> [Metric] {
        values.keys.sorted().map { Metric(labels: $0.labels, value: values[$0] ?? 0) }
    }
}
