public import Exposition
public import PrefectAPI

/// Builds the Prefect-derived metric families from one poll's data. Pure: the same input
/// and clock give the same output, so it is tested with recorded JSON and a fixed `now`.
public enum PrefectFamilies {
    /// The state names zero-filled for every known queue and deployment, by state type.
    public static let knownStateNames: [(StateType, String)] = [
        (.scheduled, "Scheduled"), (.scheduled, "Late"), (.scheduled, "AwaitingRetry"),
        (.scheduled, "AwaitingConcurrencySlot"), (.pending, "Pending"), (.running, "Running"),
        (.running, "Retrying"), (.paused, "Paused"), (.paused, "Suspended"), (.cancelling, "Cancelling"),
    ]

    /// The Prefect-derived families that accumulate since the exporter started (counters and
    /// histograms of finished and started runs), as opposed to snapshots recomputed each poll.
    /// Their series carry a creation time in OpenMetrics (`_created`).
    public static let cumulativeFamilyNames: Set<String> = [
        "prefect_flow_runs_finished_total", "prefect_flow_run_start_delay_seconds", "prefect_flow_run_duration_seconds",
    ]

    static let poolStatuses = ["READY", "NOT_READY", "PAUSED"]
    static let queueStatuses = ["READY", "NOT_READY", "PAUSED"]
    static let deploymentStatuses = ["READY", "NOT_READY"]
    static let workerStatuses = ["ONLINE", "OFFLINE"]

    /// The part of Prefect that a set of families describes: the collector that reads it. When a
    /// collector fails, only its group's families are affected (see `Poller`).
    public enum Group: String, CaseIterable, Sendable {
        case serverInfo = "server_info"
        case workPools = "work_pools"
        case workers
        case workQueues = "work_queues"
        case deployments
        case activeRuns = "flow_runs_active"
        case upcomingRuns = "flow_runs_upcoming"
        case finishedRuns = "flow_runs_finished"
    }

    /// Every Prefect-derived family name, in the order served.
    public static let familyOrder: [String] = [
        "prefect_server_info",
        "prefect_work_pool_info", "prefect_work_pool_status", "prefect_work_pool_concurrency_limit",
        "prefect_work_pool_workers", "prefect_work_pool_last_worker_heartbeat_timestamp_seconds",
        "prefect_work_queue_status", "prefect_work_queue_concurrency_limit", "prefect_work_queue_priority",
        "prefect_work_queue_last_polled_timestamp_seconds",
        "prefect_deployment_info", "prefect_deployment_status", "prefect_deployment_paused",
        "prefect_flow_runs", "prefect_flow_runs_upcoming", "prefect_flow_runs_late", "prefect_flow_run_lateness_seconds",
        "prefect_flow_run_max_lateness_seconds", "prefect_flow_run_running_seconds", "prefect_flow_run_max_running_seconds",
        "prefect_flow_runs_finished_total", "prefect_flow_run_start_delay_seconds", "prefect_flow_run_duration_seconds",
    ]

    /// Families sorted into ``familyOrder`` (unknown names last, in their given order).
    public static func inServedOrder(_ families: [MetricFamily]) -> [MetricFamily] {
        let rank = Dictionary(uniqueKeysWithValues: familyOrder.enumerated().map { ($1, $0) })
        return families.enumerated()
            .sorted { (rank[$0.element.name] ?? Int.max, $0.offset) < (rank[$1.element.name] ?? Int.max, $1.offset) }
            .map(\.element)
    }

    /// Every Prefect-derived family, in a stable order.
    /// - Parameters:
    ///   - now: the time the poll's queries were made, seconds since the epoch.
    public static func build(
        from data: PollData, history: RunHistory, settings: AggregationSettings, now: Double
    ) -> [MetricFamily] {
        inServedOrder(Group.allCases.flatMap { families(of: $0, from: data, history: history, settings: settings, now: now) })
    }

    /// The families of one group, built from a poll's data.
    public static func families(
        of group: Group, from data: PollData, history: RunHistory, settings: AggregationSettings, now: Double
    ) -> [MetricFamily] {
        switch group {
        case .serverInfo: return [serverInfo(data)]
        case .workPools: return workPoolFamilies(data)
        case .workers: return workerFamilies(data)
        case .workQueues: return workQueueFamilies(data)
        case .deployments: return deploymentFamilies(data, names: data.deploymentNames)
        case .activeRuns: return runsNow(data, settings: settings, now: now).families()
        case .upcomingRuns: return [runsNow(data, settings: settings, now: now).upcomingFamily()]
        case .finishedRuns:
            return historyFamilies(history, scope: Scope(data: data, deploymentNames: data.deploymentNames, settings: settings))
        }
    }

    private static func runsNow(_ data: PollData, settings: AggregationSettings, now: Double) -> RunsNow {
        RunsNow(data: data, scope: Scope(data: data, deploymentNames: data.deploymentNames, settings: settings), settings: settings, now: now)
    }

    // MARK: Server, pools, queues, deployments

    static func serverInfo(_ data: PollData) -> MetricFamily {
        MetricFamily(
            name: "prefect_server_info", help: "Prefect server version (empty on Prefect Cloud) and API version; always 1.",
            type: .gauge,
            metrics: [Metric(labels: [Label("version", data.serverVersion ?? ""), Label("api_version", data.apiVersion ?? "")], value: 1)])
    }

    static func workPoolFamilies(_ data: PollData) -> [MetricFamily] {
        var info = MetricFamily(name: "prefect_work_pool_info", help: "Work pools and their type; always 1.", type: .gauge)
        var status = MetricFamily(
            name: "prefect_work_pool_status",
            help: "Work pool status, one series per possible status (READY, NOT_READY, PAUSED); 1 on the current one.",
            type: .gauge)
        var limit = MetricFamily(
            name: "prefect_work_pool_concurrency_limit", help: "Work pool concurrency limit; absent when unlimited.", type: .gauge)
        for pool in data.workPools.sorted(by: { $0.name < $1.name }) {
            let poolLabel = Label("work_pool", pool.name)
            info.metrics.append(Metric(labels: [poolLabel, Label("type", pool.type)], value: 1))
            let current = pool.isPaused ? "PAUSED" : (pool.status ?? "NOT_READY")
            for candidate in poolStatuses {
                status.metrics.append(Metric(labels: [poolLabel, Label("status", candidate)], value: current == candidate ? 1 : 0))
            }
            if let concurrency = pool.concurrencyLimit {
                limit.metrics.append(Metric(labels: [poolLabel], value: Double(concurrency)))
            }
        }
        return [info, status, limit]
    }

    static func workerFamilies(_ data: PollData) -> [MetricFamily] {
        var workers = MetricFamily(name: "prefect_work_pool_workers", help: "Workers of the pool by status.", type: .gauge)
        var heartbeat = MetricFamily(
            name: "prefect_work_pool_last_worker_heartbeat_timestamp_seconds",
            help: "Most recent heartbeat of any worker of the pool, in seconds since the epoch.", type: .gauge)
        for pool in data.workPools.sorted(by: { $0.name < $1.name }) {
            let poolLabel = Label("work_pool", pool.name)
            let poolWorkers = data.workers[pool.name] ?? []
            for candidate in workerStatuses {
                let count = poolWorkers.filter { ($0.status ?? "OFFLINE") == candidate }.count
                workers.metrics.append(Metric(labels: [poolLabel, Label("status", candidate)], value: Double(count)))
            }
            if let latest = poolWorkers.compactMap(\.lastHeartbeatTime).max() {
                heartbeat.metrics.append(Metric(labels: [poolLabel], value: latest))
            }
        }
        return [workers, heartbeat]
    }

    static func workQueueFamilies(_ data: PollData) -> [MetricFamily] {
        let queues = data.workQueues.sorted { ($0.workPoolName ?? "", $0.name) < ($1.workPoolName ?? "", $1.name) }
        var status = MetricFamily(
            name: "prefect_work_queue_status",
            help: "Work queue status, one series per possible status (READY, NOT_READY, PAUSED); 1 on the current one. "
                + "A paused queue is PAUSED.",
            type: .gauge)
        var limit = MetricFamily(
            name: "prefect_work_queue_concurrency_limit", help: "Work queue concurrency limit; absent when unlimited.",
            type: .gauge)
        var priority = MetricFamily(
            name: "prefect_work_queue_priority", help: "Work queue priority; 1 is the highest.", type: .gauge)
        var polled = MetricFamily(
            name: "prefect_work_queue_last_polled_timestamp_seconds",
            help: "When a worker last polled the queue, in seconds since the epoch; absent if never.", type: .gauge)
        for queue in queues {
            let labels = [Label("work_pool", queue.workPoolName ?? ""), Label("work_queue", queue.name)]
            let current = queue.isPaused ? "PAUSED" : (queue.status ?? "NOT_READY")
            for candidate in queueStatuses {
                status.metrics.append(Metric(labels: labels + [Label("status", candidate)], value: current == candidate ? 1 : 0))
            }
            if let concurrency = queue.concurrencyLimit {
                limit.metrics.append(Metric(labels: labels, value: Double(concurrency)))
            }
            priority.metrics.append(Metric(labels: labels, value: Double(queue.priority)))
            if let lastPolled = queue.lastPolled {
                polled.metrics.append(Metric(labels: labels, value: lastPolled))
            }
        }
        return [status, limit, priority, polled]
    }

    static func deploymentFamilies(_ data: PollData, names: [String: String]) -> [MetricFamily] {
        let deployments = data.deployments
            .map { (name: names[$0.id] ?? $0.name, deployment: $0) }
            .sorted { $0.name < $1.name }
        var info = MetricFamily(
            name: "prefect_deployment_info", help: "Deployments with their flow and default work pool and queue; always 1.",
            type: .gauge)
        var status = MetricFamily(
            name: "prefect_deployment_status",
            help: "Deployment status, one series per possible status (READY, NOT_READY); 1 on the current one.", type: .gauge)
        var paused = MetricFamily(
            name: "prefect_deployment_paused", help: "1 if the deployment's schedules are paused, else 0.", type: .gauge)
        for (name, deployment) in deployments {
            let label = Label("deployment", name)
            info.metrics.append(Metric(
                labels: [
                    label, Label("flow", data.flowNames[deployment.flowID] ?? ""),
                    Label("work_pool", deployment.workPoolName ?? ""), Label("work_queue", deployment.workQueueName ?? ""),
                ],
                value: 1))
            let current = deployment.status ?? "NOT_READY"
            for candidate in deploymentStatuses {
                status.metrics.append(Metric(labels: [label, Label("status", candidate)], value: current == candidate ? 1 : 0))
            }
            paused.metrics.append(Metric(labels: [label], value: deployment.paused ? 1 : 0))
        }
        return [info, status, paused]
    }

    // MARK: History

    static func historyFamilies(_ history: RunHistory, scope: Scope) -> [MetricFamily] {
        var finishedCounts = history.finished
        for key in scope.runKeys {
            for type in StateType.terminal {
                let finishedKey = RunHistory.FinishedKey(queue: key.queue, deployment: key.deployment, stateType: type)
                if finishedCounts[finishedKey] == nil { finishedCounts[finishedKey] = 0 }
            }
        }
        var finished = MetricFamily(
            name: "prefect_flow_runs_finished_total",
            help: "Flow runs that reached a terminal state (COMPLETED, FAILED, CRASHED, CANCELLED) since the exporter "
                + "started; each run is counted once.",
            type: .counter)
        for key in finishedCounts.keys.sorted() {
            finished.metrics.append(Metric(
                labels: scope.runLabels(key.queue, deployment: key.deployment) + [Label("state_type", key.stateType.rawValue)],
                value: finishedCounts[key] ?? 0))
        }

        var startDelays = history.startDelays
        for queue in scope.queues where startDelays[queue] == nil {
            startDelays[queue] = Histogram(upperBounds: scope.settings.startDelayBuckets)
        }
        var startDelay = MetricFamily(
            name: "prefect_flow_run_start_delay_seconds",
            help: "How long after their expected start time runs started (start_time - expected_start_time), for runs "
                + "that started since the exporter started.",
            type: .histogram)
        for queue in startDelays.keys.sorted() {
            if let histogram = startDelays[queue] {
                startDelay.metrics.append(Metric(labels: queueLabels(queue), histogram: histogram))
            }
        }

        var durations = history.durations
        for queue in scope.queues {
            for type in StateType.terminal {
                let key = RunHistory.DurationKey(queue: queue, stateType: type)
                if durations[key] == nil { durations[key] = Histogram(upperBounds: scope.settings.durationBuckets) }
            }
        }
        var duration = MetricFamily(
            name: "prefect_flow_run_duration_seconds",
            help: "Run time (Prefect's total_run_time) of runs that finished after they had started, since the exporter "
                + "started.",
            type: .histogram)
        for key in durations.keys.sorted() {
            if let histogram = durations[key] {
                duration.metrics.append(Metric(
                    labels: queueLabels(key.queue) + [Label("state_type", key.stateType.rawValue)], histogram: histogram))
            }
        }
        return [finished, startDelay, duration]
    }

    static func queueLabels(_ queue: QueueKey) -> [Label] {
        [Label("work_pool", queue.workPool), Label("work_queue", queue.workQueue)]
    }
}

/// The known label sets that get zero-filled series.
struct Scope {
    struct RunKey: Hashable, Comparable {
        var queue: QueueKey
        var deployment: String

        static func < (lhs: RunKey, rhs: RunKey) -> Bool { (lhs.queue, lhs.deployment) < (rhs.queue, rhs.deployment) }
    }

    let settings: AggregationSettings
    /// Every known queue, plus the no-pool key.
    let queues: [QueueKey]
    /// Every (queue, deployment) to zero-fill: each deployment in its default queue, and
    /// `deployment=""` for queues no deployment targets.
    let runKeys: [RunKey]

    init(data: PollData, deploymentNames: [String: String], settings: AggregationSettings) {
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
    func runLabels(_ queue: QueueKey, deployment: String) -> [Label] {
        var labels = PrefectFamilies.queueLabels(queue)
        if settings.includeDeploymentLabel { labels.append(Label("deployment", deployment)) }
        return labels
    }
}
