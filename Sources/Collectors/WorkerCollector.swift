import Aggregation
import Exposition
import PrefectAPI

/// The workers of every selected pool: one request per pool, sent concurrently within the
/// client's limit. Needs the work-pool list (this poll's, or the last good one).
struct WorkerCollector: Collector {
    static let name = "workers"
    static let stage = CollectorStage.runs

    static let workers = FamilyDescriptor(
        "prefect_work_pool_workers", .gauge, help: "Workers of the pool by status.", labels: ["work_pool", "status"])
    static let lastHeartbeat = FamilyDescriptor(
        "prefect_work_pool_last_worker_heartbeat_timestamp_seconds", .gauge,
        help: "Most recent heartbeat of any worker of the pool, in seconds since the epoch.", labels: ["work_pool"])
    static let families = [workers, lastHeartbeat]

    static let statuses = ["ONLINE", "OFFLINE"]

    func collect(_ context: CollectionContext) async throws(CollectorError) -> [String: [Worker]] {
        let pools = try Self.pools(context)
        let client = context.client
        do throws(PrefectAPIError) {
            return try await concurrentMap(pools) { pool throws(PrefectAPIError) -> (String, [Worker]?) in
                do throws(PrefectAPIError) {
                    return (pool, try await client.workers(inPool: pool))
                } catch where error.kind == .notFound {
                    // The pool was deleted since it was listed, or Prefect cannot route its name (a
                    // name with a line feed gets 404): that pool has no workers to report, and the
                    // poll goes on rather than fail for every pool.
                    return (pool, nil)
                }
            }.reduce(into: [:]) { $0[$1.0] = $1.1 }
        } catch {
            throw .api(error)
        }
    }

    func asksPrefect(_ context: CollectionContext) -> Bool {
        (try? Self.pools(context).isEmpty == false) ?? false
    }

    /// The names of the selected pools.
    private static func pools(_ context: CollectionContext) throws(CollectorError) -> [String] {
        try context.require(WorkPoolCollector.self, as: "the work-pool list")
            .filter { context.selection.includes($0.name) }.map(\.name)
    }

    static func contribute(_ output: [String: [Worker]], to data: inout PollData, selection: WorkPoolSelection) {
        data.workers = output
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        var workers = workers.family()
        var heartbeat = lastHeartbeat.family()
        for pool in input.data.workPools.sorted(by: { $0.name < $1.name }) {
            let poolLabel = Label("work_pool", pool.name)
            let poolWorkers = input.data.workers[pool.name] ?? []
            for candidate in statuses {
                let count = poolWorkers.filter { ($0.status ?? "OFFLINE") == candidate }.count
                workers.metrics.append(Metric(labels: [poolLabel, Label("status", candidate)], value: Double(count)))
            }
            if let latest = poolWorkers.compactMap(\.lastHeartbeatTime).max() {
                heartbeat.metrics.append(Metric(labels: [poolLabel], value: latest))
            }
        }
        return [workers, heartbeat]
    }
}
