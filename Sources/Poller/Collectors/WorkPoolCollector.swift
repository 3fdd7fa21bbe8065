import PrefectAPI

/// Every work pool.
struct WorkPoolCollector: Collector {
    static let name = "work_pools"

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [WorkPool] {
        try await context.client.workPools()
    }
}
