import Aggregation
import Dispatch
import PrefectAPI

/// What the poller keeps of each collector between polls: its last good output. A collector that
/// fails leaves its entry as it was, so the collectors that depend on it (the workers need the
/// pools, the upcoming counts need the queues) go on with the last good list.
struct CollectedData: Sendable {
    var serverInfo: (version: String?, apiVersion: String?)?
    var workPools: [WorkPool]?
    var workQueues: [WorkQueue]?
    var deployments: (deployments: [Deployment], flowNames: [String: String])?
    var workers: [String: [Worker]]?
    var inFlightRuns: [FlowRun]?
    var upcomingRuns: [QueueKey: Int]?
    var dueRuns = DueRunLedger()

    /// The data for aggregation: every last good output, restricted to the selected work pools.
    /// Active runs are the in-flight runs and the due runs of the ledger (listed within the
    /// selection's scopes already).
    func pollData(selection: WorkPoolSelection) -> PollData {
        let deployments = deployments?.deployments ?? []
        return PollData(
            serverVersion: serverInfo?.version, apiVersion: serverInfo?.apiVersion,
            workPools: (workPools ?? []).filter { selection.includes($0.name) },
            workQueues: (workQueues ?? []).filter { selection.includes($0.workPoolName ?? "") },
            workers: workers ?? [:],
            deployments: deployments.filter { selection.includes($0.workPoolName ?? "") },
            flowNames: self.deployments?.flowNames ?? [:],
            activeRuns: (inFlightRuns ?? []).filter { selection.includes($0.workPoolName ?? "") }, dueRuns: dueRuns,
            upcomingRuns: upcomingRuns ?? [:])
    }
}

/// One poll: every collector, each failing alone. Phase one reads the inventory (server, pools,
/// queues, deployments); phase two the workers and flow runs, with the freshest inventory known;
/// then the due-run ledger is synced with what phase two saw leave.
struct PollCycle {
    let context: CollectionContext
    let selection: WorkPoolSelection
    /// How far each due-run window reaches back before the previous sync, in seconds.
    let dueRunOverlap: Double

    struct Result: Sendable {
        /// The collected data: this poll's outputs where a collector succeeded, the last good ones elsewhere.
        var collected: CollectedData
        /// Finished and started runs, when `flow_runs_finished` succeeded.
        var history: (finished: [FlowRun], started: [FlowRun])?
        var outcomes: [CollectorOutcome]
    }

    func run(previous: CollectedData) async -> Result {
        var collected = previous
        async let serverInfo = measure(ServerInfoCollector(), context)
        async let pools = measure(WorkPoolCollector(), context)
        async let queues = measure(WorkQueueCollector(), context)
        async let deployments = measure(DeploymentCollector(), context)
        let phaseOne = await (serverInfo, pools, queues, deployments)
        var outcomes = [phaseOne.0.outcome, phaseOne.1.outcome, phaseOne.2.outcome, phaseOne.3.outcome]
        if case .success(let value) = phaseOne.0.result { collected.serverInfo = value }
        if case .success(let value) = phaseOne.1.result { collected.workPools = value }
        if case .success(let value) = phaseOne.2.result { collected.workQueues = value }
        if case .success(let value) = phaseOne.3.result { collected.deployments = value }

        if let stop = Self.reasonToStop(after: phaseOne.0.outcome, phaseOne.1.outcome, phaseOne.2.outcome, phaseOne.3.outcome) {
            // Prefect asked us to wait, or cannot be reached at all: phase two sends nothing.
            let names = [ActiveFlowRunCollector.name, FinishedFlowRunCollector.name, WorkerCollector.name, UpcomingFlowRunCollector.name]
            outcomes += names.map { CollectorOutcome(name: $0, duration: 0, error: stop, askedPrefect: false) }
            return Result(collected: collected, history: nil, outcomes: outcomes)
        }

        let selectedPools = collected.workPools?.filter { selection.includes($0.name) }.map(\.name)
        let scopes = runScopes(pools: selectedPools)
        let scoped = context.scoped(to: scopes ?? [])
        let poolsInput = Self.input(selectedPools, missing: "the work-pool list")
        let scopesInput = Self.input(scopes, missing: "the work-pool list (for --prefect.work-pool-include/exclude)")
        let queueList = collected.workQueues.map { list in
            list.filter { selection.includes($0.workPoolName ?? "") }
        }
        let queuesInput = Self.input(queueList, missing: "the work-queue list")

        async let workers = measure(WorkerCollector.name, scoped, input: poolsInput) { pools in
            WorkerCollector(pools: pools)
        }
        async let upcoming = measure(UpcomingFlowRunCollector.name, scoped, input: queuesInput) { list in
            UpcomingFlowRunCollector(queues: Self.upcomingQueues(list), includeNoPool: selection.includes(""))
        }
        async let finished = measure(FinishedFlowRunCollector.name, scoped, input: scopesInput) { (_: [FlowRunQueries.Scope]) in
            FinishedFlowRunCollector()
        }
        async let inFlight = measure(ActiveFlowRunCollector.name, scoped, input: scopesInput) { (_: [FlowRunQueries.Scope]) in
            ActiveFlowRunCollector()
        }
        let phaseTwo = await (workers, upcoming, finished, inFlight)
        if case .success(let value) = phaseTwo.0.result { collected.workers = value }
        if case .success(let value) = phaseTwo.1.result { collected.upcomingRuns = value }

        // The due runs: only once the in-flight runs are known, since both make up `flow_runs_active`.
        var active = phaseTwo.3.outcome
        var history: (finished: [FlowRun], started: [FlowRun])?
        if case .success(let value) = phaseTwo.2.result { history = value }
        if case .success(let inFlightRuns) = phaseTwo.3.result {
            let start = DispatchTime.now().uptimeNanoseconds
            let sync = DueRunSync(context: scoped, overlap: dueRunOverlap)
            let departures = inFlightRuns + (history.map { $0.finished + $0.started } ?? [])
            let ledger = collected.dueRuns
            let synced: Swift.Result<(ledger: DueRunLedger, complete: Bool), PrefectAPIError> = await capture {
                () async throws(PrefectAPIError) in try await sync.synced(ledger, departures: departures)
            }
            active.duration += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            switch synced {
            case .success(let result) where result.complete:
                collected.dueRuns = result.ledger
                collected.inFlightRuns = inFlightRuns
            case .success(let result):
                collected.dueRuns = result.ledger
                active.error = .listingDueRuns(listed: result.ledger.count)
            case .failure(let error):
                active.error = CollectorError.api(error)
            }
        }
        outcomes += [active, phaseTwo.2.outcome, phaseTwo.0.outcome, phaseTwo.1.outcome]
        return Result(collected: collected, history: history, outcomes: outcomes)
    }

    /// Without a selection, one scope covers every run. With one, runs are asked for by pool
    /// name, plus the runs with no pool when the selection includes the empty name; nil when the
    /// pools are needed but unknown.
    private func runScopes(pools: [String]?) -> [FlowRunQueries.Scope]? {
        guard selection.isFiltering else { return [.all] }
        guard let pools else { return nil }
        var scopes: [FlowRunQueries.Scope] = []
        if !pools.isEmpty { scopes.append(.pools(pools)) }
        if selection.includes("") { scopes.append(.noPool) }
        return scopes
    }

    private static func upcomingQueues(_ queues: [WorkQueue]) -> [UpcomingFlowRunCollector.Queue] {
        queues.compactMap { queue in
            queue.workPoolName.map { UpcomingFlowRunCollector.Queue(key: QueueKey(workPool: $0, workQueue: queue.name), id: queue.id) }
        }
    }

    /// Why phase two should not send a request: Prefect answered with `Retry-After`, or every
    /// phase-one collector failed (Prefect is unreachable, refuses the credentials, or is broken
    /// as a whole: more requests would only add to its load).
    private static func reasonToStop(after outcomes: CollectorOutcome...) -> CollectorError? {
        let errors = outcomes.compactMap { $0.error?.apiError }
        if let limited = errors.first(where: { $0.retryAfter != nil }) { return .api(limited) }
        return errors.count == outcomes.count ? errors.first.map(CollectorError.api) : nil
    }

    /// An input another collector provides, or the error that says it is missing.
    private static func input<Value>(_ value: Value?, missing: String) -> Swift.Result<Value, CollectorError> {
        value.map { .success($0) } ?? .failure(.missingInput(missing))
    }

    /// Runs a collector built from an input that another collector provides; when that input is
    /// missing the collector fails without a request.
    private func measure<C: Collector, Input: Sendable>(
        _ name: String, _ context: CollectionContext, input: Swift.Result<Input, CollectorError>,
        _ make: (Input) -> C
    ) async -> (result: Swift.Result<C.Output, CollectorError>, outcome: CollectorOutcome) {
        switch input {
        case .success(let value):
            return await measure(make(value), context)
        case .failure(let error):
            return (.failure(error), CollectorOutcome(name: name, duration: 0, error: error, askedPrefect: false))
        }
    }

    private func measure<C: Collector>(
        _ collector: C, _ context: CollectionContext
    ) async -> (result: Swift.Result<C.Output, CollectorError>, outcome: CollectorOutcome) {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = await capture { () async throws(PrefectAPIError) in try await collector.collect(context) }
            .mapError(CollectorError.api)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var error: CollectorError?
        if case .failure(let failure) = result { error = failure }
        return (result, CollectorOutcome(name: collector.name, duration: seconds, error: error, askedPrefect: collector.asksPrefect))
    }
}
