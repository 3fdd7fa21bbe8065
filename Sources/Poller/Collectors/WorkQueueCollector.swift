import PrefectAPI

/// Every work queue, with its status and last poll time as Prefect reports them.
struct WorkQueueCollector: Collector {
    static let name = "work_queues"

    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> [WorkQueue] {
        try await context.client.workQueues()
    }
}
