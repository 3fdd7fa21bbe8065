import Aggregation
import Exposition
import PrefectAPI

/// Every work queue, with its status and last poll time as Prefect reports them. The upcoming
/// counts and the zero-filled run families use its list.
struct WorkQueueCollector: Collector {
    static let name = "work_queues"
    static let stage = CollectorStage.inventory

    static let status = FamilyDescriptor(
        "prefect_work_queue_status", .gauge,
        help: "Work queue status, one series per possible status (READY, NOT_READY, PAUSED); 1 on the current one. "
            + "A paused queue is PAUSED.",
        labels: ["work_pool", "work_queue", "status"])
    static let concurrencyLimit = FamilyDescriptor(
        "prefect_work_queue_concurrency_limit", .gauge, help: "Work queue concurrency limit; absent when unlimited.",
        labels: ["work_pool", "work_queue"])
    static let priority = FamilyDescriptor(
        "prefect_work_queue_priority", .gauge, help: "Work queue priority; 1 is the highest.", labels: ["work_pool", "work_queue"])
    static let lastPolled = FamilyDescriptor(
        "prefect_work_queue_last_polled_timestamp_seconds", .gauge,
        help: "When a worker last polled the queue, in seconds since the epoch; absent if never.",
        labels: ["work_pool", "work_queue"])
    static let activeSlots = FamilyDescriptor(
        "prefect_work_queue_active_slots", .gauge,
        help: "Concurrency slots taken by the queue's PENDING and RUNNING runs; absent without a concurrency limit or "
            + "before Prefect 3.6.23. Can exceed the limit.",
        labels: ["work_pool", "work_queue"])
    static let families = [status, concurrencyLimit, priority, lastPolled, activeSlots]

    static let statuses = ["READY", "NOT_READY", "PAUSED"]

    func collect(_ context: CollectionContext) async throws(CollectorError) -> [WorkQueue] {
        do throws(PrefectAPIError) {
            return try await context.client.workQueues()
        } catch {
            throw .api(error)
        }
    }

    static func contribute(_ output: [WorkQueue], to data: inout PollData, selection: WorkPoolSelection) {
        data.workQueues = output.filter { selection.includes($0.workPoolName ?? "") }
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        let queues = input.data.workQueues.sorted { ($0.workPoolName ?? "", $0.name) < ($1.workPoolName ?? "", $1.name) }
        var status = status.family()
        var limit = concurrencyLimit.family()
        var priority = priority.family()
        var polled = lastPolled.family()
        var slots = activeSlots.family()
        for queue in queues {
            let labels = [Label("work_pool", queue.workPoolName ?? ""), Label("work_queue", queue.name)]
            let current = queue.isPaused ? "PAUSED" : (queue.status ?? "NOT_READY")
            for candidate in statuses {
                status.metrics.append(Metric(labels: labels + [Label("status", candidate)], value: current == candidate ? 1 : 0))
            }
            if let concurrency = queue.concurrencyLimit {
                limit.metrics.append(Metric(labels: labels, value: Double(concurrency)))
            }
            priority.metrics.append(Metric(labels: labels, value: Double(queue.priority)))
            if let time = queue.lastPolled {
                polled.metrics.append(Metric(labels: labels, value: time))
            }
            if let taken = queue.activeSlots {
                slots.metrics.append(Metric(labels: labels, value: Double(taken)))
            }
        }
        return [status, limit, priority, polled, slots]
    }
}
