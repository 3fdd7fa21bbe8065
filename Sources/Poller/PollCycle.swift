import Aggregation
import Foundation
import PrefectAPI

/// One poll: every collector, in two phases (the second needs the pools, queues and
/// deployments from the first), then the data for aggregation.
struct PollCycle {
    let context: CollectionContext

    struct Result: Sendable {
        var data: PollData?
        var outcomes: [CollectorOutcome]
        /// The first error, when the poll did not fully succeed.
        var error: PrefectAPIError?
    }

    func run() async -> Result {
        async let serverInfo = measure(ServerInfoCollector())
        async let pools = measure(WorkPoolCollector())
        async let queues = measure(WorkQueueCollector())
        async let deployments = measure(DeploymentCollector())
        async let active = measure(ActiveFlowRunCollector())
        async let finished = measure(FinishedFlowRunCollector())
        let phaseOne = await (serverInfo, pools, queues, deployments, active, finished)
        var outcomes = [phaseOne.0.outcome, phaseOne.1.outcome, phaseOne.2.outcome,
                        phaseOne.3.outcome, phaseOne.4.outcome, phaseOne.5.outcome]
        do {
            let server = try phaseOne.0.result.get()
            let workPools = try phaseOne.1.result.get()
            let workQueues = try phaseOne.2.result.get()
            let (deploymentList, flowNames) = try phaseOne.3.result.get()
            let activeRuns = try phaseOne.4.result.get()
            let (finishedRuns, startedRuns) = try phaseOne.5.result.get()

            let queueKeys = workQueues.compactMap { queue in
                queue.workPoolName.map { QueueKey(workPool: $0, workQueue: queue.name) }
            }
            async let workers = measure(WorkerCollector(pools: workPools.map(\.name)))
            async let upcoming = measure(UpcomingFlowRunCollector(queues: queueKeys))
            let phaseTwo = await (workers, upcoming)
            outcomes += [phaseTwo.0.outcome, phaseTwo.1.outcome]
            let data = PollData(
                serverVersion: server.version, apiVersion: server.apiVersion, workPools: workPools,
                workQueues: workQueues, workers: try phaseTwo.0.result.get(), deployments: deploymentList,
                flowNames: flowNames, activeRuns: activeRuns, upcomingRuns: try phaseTwo.1.result.get(),
                finishedRuns: finishedRuns, startedRuns: startedRuns)
            return Result(data: data, outcomes: outcomes, error: nil)
        } catch {
            return Result(data: nil, outcomes: outcomes, error: error)
        }
    }

    private func measure<C: Collector>(_ collector: C) async -> (result: Swift.Result<C.Output, PrefectAPIError>, outcome: CollectorOutcome) {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = await capture { () async throws(PrefectAPIError) in try await collector.collect(context) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let success: Bool
        if case .success = result { success = true } else { success = false }
        return (result, CollectorOutcome(name: collector.name, success: success, duration: seconds))
    }
}
