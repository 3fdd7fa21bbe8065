import Aggregation
import Exposition
import PrefectAPI

/// Every work pool: its type, status and concurrency limit. The workers, the pool-scoped run
/// queries and the work-pool selection use its list.
struct WorkPoolCollector: Collector {
    static let name = "work_pools"
    static let stage = CollectorStage.inventory

    static let info = FamilyDescriptor(
        "prefect_work_pool_info", .gauge, help: "Work pools and their type; always 1.", labels: ["work_pool", "type"])
    static let status = FamilyDescriptor(
        "prefect_work_pool_status", .gauge,
        help: "Work pool status, one series per possible status (READY, NOT_READY, PAUSED); 1 on the current one.",
        labels: ["work_pool", "status"])
    static let concurrencyLimit = FamilyDescriptor(
        "prefect_work_pool_concurrency_limit", .gauge, help: "Work pool concurrency limit; absent when unlimited.",
        labels: ["work_pool"])
    static let activeSlots = FamilyDescriptor(
        "prefect_work_pool_active_slots", .gauge,
        help: "Concurrency slots taken by the pool's PENDING and RUNNING runs; absent without a concurrency limit or "
            + "before Prefect 3.6.23. Can exceed the limit.",
        labels: ["work_pool"])
    static let families = [info, status, concurrencyLimit, activeSlots]

    static let statuses = ["READY", "NOT_READY", "PAUSED"]

    func collect(_ context: CollectionContext) async throws(CollectorError) -> [WorkPool] {
        do throws(PrefectAPIError) {
            return try await context.client.workPools()
        } catch {
            throw .api(error)
        }
    }

    static func contribute(_ output: [WorkPool], to data: inout PollData, selection: WorkPoolSelection) {
        data.workPools = output.filter { selection.includes($0.name) }
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        var info = info.family()
        var status = status.family()
        var limit = concurrencyLimit.family()
        var slots = activeSlots.family()
        for pool in input.data.workPools.sorted(by: { $0.name < $1.name }) {
            let poolLabel = Label("work_pool", pool.name)
            info.metrics.append(Metric(labels: [poolLabel, Label("type", pool.type)], value: 1))
            let current = pool.isPaused ? "PAUSED" : (pool.status ?? "NOT_READY")
            for candidate in statuses {
                status.metrics.append(Metric(labels: [poolLabel, Label("status", candidate)], value: current == candidate ? 1 : 0))
            }
            if let concurrency = pool.concurrencyLimit {
                limit.metrics.append(Metric(labels: [poolLabel], value: Double(concurrency)))
            }
            if let taken = pool.activeSlots {
                slots.metrics.append(Metric(labels: [poolLabel], value: Double(taken)))
            }
        }
        return [info, status, limit, slots]
    }
}
