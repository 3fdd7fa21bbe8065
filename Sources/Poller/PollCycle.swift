import Aggregation
import Foundation
import PrefectAPI

/// One poll: every collector, in two phases (the second needs the pools and queues from the
/// first), then the data for aggregation, restricted to the selected work pools.
struct PollCycle {
    let context: CollectionContext
    let selection: WorkPoolSelection

    struct Result: Sendable {
        var data: PollData?
        var outcomes: [CollectorOutcome]
        /// The first error, when the poll did not fully succeed.
        var error: PrefectAPIError?
    }

    func run() async -> Result {
        async let serverInfo = measure(ServerInfoCollector(), context)
        async let pools = measure(WorkPoolCollector(), context)
        async let queues = measure(WorkQueueCollector(), context)
        async let deployments = measure(DeploymentCollector(), context)
        let phaseOne = await (serverInfo, pools, queues, deployments)
        var outcomes = [phaseOne.0.outcome, phaseOne.1.outcome, phaseOne.2.outcome, phaseOne.3.outcome]
        do {
            let server = try phaseOne.0.result.get()
            let workPools = try phaseOne.1.result.get().filter { selection.includes($0.name) }
            let workQueues = try phaseOne.2.result.get().filter { selection.includes($0.workPoolName ?? "") }
            let (allDeployments, flowNames) = try phaseOne.3.result.get()
            let deploymentList = allDeployments.filter { selection.includes($0.workPoolName ?? "") }

            let scoped = context.scoped(to: runScopes(pools: workPools.map(\.name)))
            let upcomingQueues = workQueues.compactMap { queue in
                queue.workPoolName.map {
                    UpcomingFlowRunCollector.Queue(key: QueueKey(workPool: $0, workQueue: queue.name), id: queue.id)
                }
            }
            async let active = measure(ActiveFlowRunCollector(), scoped)
            async let finished = measure(FinishedFlowRunCollector(), scoped)
            async let workers = measure(WorkerCollector(pools: workPools.map(\.name)), scoped)
            async let upcoming = measure(
                UpcomingFlowRunCollector(queues: upcomingQueues, includeNoPool: selection.includes("")), scoped)
            let phaseTwo = await (active, finished, workers, upcoming)
            outcomes += [phaseTwo.0.outcome, phaseTwo.1.outcome, phaseTwo.2.outcome, phaseTwo.3.outcome]
            let inSelection = { (run: FlowRun) in selection.includes(run.workPoolName ?? "") }
            let (finishedRuns, startedRuns) = try phaseTwo.1.result.get()
            let data = PollData(
                serverVersion: server.version, apiVersion: server.apiVersion, workPools: workPools,
                workQueues: workQueues, workers: try phaseTwo.2.result.get(), deployments: deploymentList,
                flowNames: flowNames, activeRuns: try phaseTwo.0.result.get().filter(inSelection),
                upcomingRuns: try phaseTwo.3.result.get(),
                finishedRuns: finishedRuns.filter(inSelection), startedRuns: startedRuns.filter(inSelection))
            return Result(data: data, outcomes: outcomes, error: nil)
        } catch {
            return Result(data: nil, outcomes: outcomes, error: error)
        }
    }

    /// Without a selection, one scope covers every run. With one, runs are asked for by pool
    /// name, plus the runs with no pool when the selection includes the empty name.
    private func runScopes(pools: [String]) -> [FlowRunQueries.Scope] {
        guard selection.isFiltering else { return [.all] }
        var scopes: [FlowRunQueries.Scope] = []
        if !pools.isEmpty { scopes.append(.pools(pools)) }
        if selection.includes("") { scopes.append(.noPool) }
        return scopes
    }

    private func measure<C: Collector>(
        _ collector: C, _ context: CollectionContext
    ) async -> (result: Swift.Result<C.Output, PrefectAPIError>, outcome: CollectorOutcome) {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = await capture { () async throws(PrefectAPIError) in try await collector.collect(context) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let success: Bool
        if case .success = result { success = true } else { success = false }
        return (result, CollectorOutcome(name: collector.name, success: success, duration: seconds))
    }
}
