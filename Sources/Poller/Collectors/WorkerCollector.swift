import PrefectAPI

/// The workers of every pool: one request per pool, sent concurrently within the client's limit.
struct WorkerCollector: Collector {
    static let name = "workers"
    let pools: [String]
    var asksPrefect: Bool { !pools.isEmpty }

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [String: [Worker]] {
        try await concurrentMap(pools) { pool throws(PrefectAPIError) -> (String, [Worker]?) in
            do throws(PrefectAPIError) {
                return (pool, try await context.client.workers(inPool: pool))
            } catch where error.kind == .notFound {
                // The pool was deleted since it was listed, or Prefect cannot route its name (a
                // name with a line feed gets 404): that pool has no workers to report, and the
                // poll goes on rather than fail for every pool.
                return (pool, nil)
            }
        }.reduce(into: [:]) { $0[$1.0] = $1.1 }
    }
}
