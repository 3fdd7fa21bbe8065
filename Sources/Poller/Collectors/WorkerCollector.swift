import PrefectAPI

/// The workers of every pool: one request per pool, sent concurrently within the client's limit.
struct WorkerCollector: Collector {
    let name = "workers"
    let pools: [String]

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [String: [Worker]] {
        try await concurrentMap(pools) { pool throws(PrefectAPIError) in
            (pool, try await context.client.workers(inPool: pool))
        }.reduce(into: [:]) { $0[$1.0] = $1.1 }
    }
}
