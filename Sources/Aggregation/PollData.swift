public import Exposition
public import PrefectAPI

/// A work pool and queue pair. Runs with no pool have both empty.
public struct QueueKey: Hashable, Sendable, Comparable {
    public var workPool: String
    public var workQueue: String

    public init(workPool: String, workQueue: String) {
        self.workPool = workPool
        self.workQueue = workQueue
    }

    /// The key of runs with no work pool: ad-hoc runs and `flow.serve()` runs.
    public static let none = QueueKey(workPool: "", workQueue: "")

    public static func < (lhs: QueueKey, rhs: QueueKey) -> Bool {
        (lhs.workPool, lhs.workQueue) < (rhs.workPool, rhs.workQueue)
    }

    /// The `work_pool` and `work_queue` labels.
    public var labels: [Label] {
        [Label("work_pool", workPool), Label("work_queue", workQueue)]
    }
}

/// Everything one successful poll read from Prefect.
public struct PollData: Sendable {
    public var serverVersion: String?
    public var apiVersion: String?
    public var workPools: [WorkPool]
    public var workQueues: [WorkQueue]
    /// Workers by pool name.
    public var workers: [String: [Worker]]
    public var deployments: [Deployment]
    /// Flow names by flow id, for deployment names.
    public var flowNames: [String: String]
    /// Runs that are due or in flight: SCHEDULED with a past start, PENDING, RUNNING, PAUSED, CANCELLING.
    public var activeRuns: [FlowRun]
    /// More due SCHEDULED runs, as the poller keeps them between polls. None of them may be in
    /// ``activeRuns`` too: the poller drops the runs it sees in flight from the ledger first.
    public var dueRuns: DueRunLedger
    /// Counts of SCHEDULED runs with a future start, per queue.
    public var upcomingRuns: [QueueKey: Int]
    /// Runs that finished since the history's window start (may repeat earlier ones).
    public var finishedRuns: [FlowRun]
    /// Runs that started since the history's window start (may repeat earlier ones).
    public var startedRuns: [FlowRun]
    /// The counters and histograms of runs finished and started since the exporter started.
    public var history: RunHistory?

    public init(
        serverVersion: String? = nil, apiVersion: String? = nil, workPools: [WorkPool] = [],
        workQueues: [WorkQueue] = [], workers: [String: [Worker]] = [:], deployments: [Deployment] = [],
        flowNames: [String: String] = [:], activeRuns: [FlowRun] = [], dueRuns: DueRunLedger = DueRunLedger(),
        upcomingRuns: [QueueKey: Int] = [:],
        finishedRuns: [FlowRun] = [], startedRuns: [FlowRun] = [], history: RunHistory? = nil
    ) {
        self.history = history
        self.serverVersion = serverVersion
        self.apiVersion = apiVersion
        self.workPools = workPools
        self.workQueues = workQueues
        self.workers = workers
        self.deployments = deployments
        self.flowNames = flowNames
        self.activeRuns = activeRuns
        self.dueRuns = dueRuns
        self.upcomingRuns = upcomingRuns
        self.finishedRuns = finishedRuns
        self.startedRuns = startedRuns
    }

    /// `flow-name/deployment-name` by deployment id, Prefect's full deployment name.
    public var deploymentNames: [String: String] {
        var names: [String: String] = [:]
        for deployment in deployments {
            names[deployment.id] = Self.fullName(deployment, flowNames: flowNames)
        }
        return names
    }

    static func fullName(_ deployment: Deployment, flowNames: [String: String]) -> String {
        "\(flowNames[deployment.flowID] ?? deployment.flowID)/\(deployment.name)"
    }
}

/// Settings that shape the metrics.
public struct AggregationSettings: Sendable {
    /// A SCHEDULED run is late once its scheduled start is this many seconds in the past.
    public var lateAfter: Double
    public var latenessBuckets: [Double]
    public var runningBuckets: [Double]
    public var startDelayBuckets: [Double]
    public var durationBuckets: [Double]
    /// Whether flow-run families carry the `deployment` label.
    public var includeDeploymentLabel: Bool
    /// Whether this exporter reports runs with no work pool (false when a work-pool selection
    /// leaves them to another exporter), so their zero-filled series are not duplicated.
    public var includesRunsWithoutPool: Bool
    /// Whether histogram buckets carry a flow run as an exemplar (OpenMetrics only).
    public var exemplars: Bool

    public static let defaultLatenessBuckets: [Double] = [15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400]
    public static let defaultRunningBuckets: [Double] = [60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400]
    public static let defaultStartDelayBuckets: [Double] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]
    public static let defaultDurationBuckets: [Double] = [1, 5, 15, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400]

    public init(
        lateAfter: Double = 15, latenessBuckets: [Double] = defaultLatenessBuckets,
        runningBuckets: [Double] = defaultRunningBuckets, startDelayBuckets: [Double] = defaultStartDelayBuckets,
        durationBuckets: [Double] = defaultDurationBuckets, includeDeploymentLabel: Bool = true,
        includesRunsWithoutPool: Bool = true, exemplars: Bool = false
    ) {
        self.includesRunsWithoutPool = includesRunsWithoutPool
        self.exemplars = exemplars
        self.lateAfter = lateAfter
        self.latenessBuckets = latenessBuckets
        self.runningBuckets = runningBuckets
        self.startDelayBuckets = startDelayBuckets
        self.durationBuckets = durationBuckets
        self.includeDeploymentLabel = includeDeploymentLabel
    }
}

extension FlowRun {
    /// The run's `deployment` label: `flow/deployment` when the deployment is known, its id when it
    /// is not (the deployments could not be read, or the deployment is newer than the last list),
    /// and empty for runs without a deployment. Never drops a run or merges two deployments.
    func deploymentLabel(names: [String: String]) -> String {
        guard let id = deploymentID else { return "" }
        return names[id] ?? id
    }

    /// The run's exemplar labels: `flow_run_id`, and `flow_run_name` when it fits.
    public var exemplarLabels: [Label] {
        var labels = [Label("flow_run_id", id)]
        if let name { labels.append(Label("flow_run_name", name)) }
        return labels
    }

    /// The run's queue key; a run with no pool has empty labels.
    public var queueKey: QueueKey {
        guard let pool = workPoolName, !pool.isEmpty else { return .none }
        return QueueKey(workPool: pool, workQueue: workQueueName ?? "")
    }
}
