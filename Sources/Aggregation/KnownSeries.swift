public import Exposition
import PrefectAPI

/// The label sets that get zero-filled series: every known queue (plus the no-pool key) and every
/// (queue, deployment) pair, so that a count of zero is written as 0 rather than left out.
public struct KnownSeries: Sendable {
    /// One (queue, deployment) pair of the run families.
    public struct RunKey: Hashable, Comparable, Sendable {
        public var queue: QueueKey
        public var deployment: String

        public init(queue: QueueKey, deployment: String) {
            self.queue = queue
            self.deployment = deployment
        }

        public static func < (lhs: RunKey, rhs: RunKey) -> Bool { (lhs.queue, lhs.deployment) < (rhs.queue, rhs.deployment) }
    }

    public let settings: AggregationSettings
    /// Every known queue, plus the no-pool key.
    public let queues: [QueueKey]
    /// Every (queue, deployment) to zero-fill: each deployment in its default queue, and
    /// `deployment=""` for queues no deployment targets.
    public let runKeys: [RunKey]

    /// The known series of a poll's data: its queues and deployments.
    public init(data: PollData, settings: AggregationSettings) {
        let deploymentNames = data.deploymentNames
        self.settings = settings
        var queues: Set<QueueKey> = settings.includesRunsWithoutPool ? [.none] : []
        for queue in data.workQueues {
            guard let pool = queue.workPoolName else { continue }
            queues.insert(QueueKey(workPool: pool, workQueue: queue.name))
        }
        var runKeys: Set<RunKey> = []
        var queuesWithDeployments: Set<QueueKey> = []
        if settings.includeDeploymentLabel {
            for deployment in data.deployments {
                let queue: QueueKey
                if let pool = deployment.workPoolName, !pool.isEmpty {
                    queue = QueueKey(workPool: pool, workQueue: deployment.workQueueName ?? "")
                } else {
                    queue = .none
                }
                queuesWithDeployments.insert(queue)
                runKeys.insert(RunKey(queue: queue, deployment: deploymentNames[deployment.id] ?? deployment.name))
            }
        }
        // Queues no deployment targets get `deployment=""`; so does the no-pool key always,
        // since ad-hoc runs have no deployment.
        for queue in queues where !queuesWithDeployments.contains(queue) || queue == .none {
            runKeys.insert(RunKey(queue: queue, deployment: ""))
        }
        self.queues = queues.sorted()
        self.runKeys = runKeys.sorted()
    }

    /// `work_pool`, `work_queue` and, when enabled, `deployment`.
    public func runLabels(_ queue: QueueKey, deployment: String) -> [Label] {
        var labels = queue.labels
        if settings.includeDeploymentLabel { labels.append(Label("deployment", deployment)) }
        return labels
    }
}
