public import Exposition
public import PrefectAPI

/// The tallies behind the "flow runs now" families: runs that are due or in flight, counted by
/// state, lateness and running time, zero-filled for every known queue and deployment.
public struct RunsNow: Sendable {
    /// The state names zero-filled for every known queue and deployment, by state type.
    public static let knownStateNames: [(StateType, String)] = [
        (.scheduled, "Scheduled"), (.scheduled, "Late"), (.scheduled, "AwaitingRetry"),
        (.scheduled, "AwaitingConcurrencySlot"), (.pending, "Pending"), (.running, "Running"),
        (.running, "Retrying"), (.paused, "Paused"), (.paused, "Suspended"), (.cancelling, "Cancelling"),
    ]

    /// The labels of one `prefect_flow_runs` series.
    public struct StateKey: Hashable, Comparable, Sendable {
        public var run: KnownSeries.RunKey
        public var stateType: StateType
        public var stateName: String

        public static func < (lhs: StateKey, rhs: StateKey) -> Bool {
            (lhs.run, lhs.stateType, lhs.stateName) < (rhs.run, rhs.stateType, rhs.stateName)
        }
    }

    /// Due and in-flight runs by queue, deployment, state type and state name.
    public private(set) var states: [StateKey: Int] = [:]
    /// Late runs by queue and deployment.
    public private(set) var late: [KnownSeries.RunKey: Int] = [:]
    /// How late each late run is, per queue.
    public private(set) var lateness: [QueueKey: Histogram] = [:]
    public private(set) var maxLateness: [QueueKey: Double] = [:]
    /// How long each RUNNING run has been running, per queue.
    public private(set) var running: [QueueKey: Histogram] = [:]
    public private(set) var maxRunning: [QueueKey: Double] = [:]

    /// Tallies the active runs and the due-run ledger of a poll's data at `now`.
    public init(data: PollData, known: KnownSeries, settings: AggregationSettings, now: Double) {
        let names = data.deploymentNames
        for key in known.runKeys {
            for (type, name) in Self.knownStateNames {
                states[StateKey(run: key, stateType: type, stateName: name)] = 0
            }
            late[key] = 0
        }
        for queue in known.queues {
            lateness[queue] = Histogram(upperBounds: settings.latenessBuckets)
            maxLateness[queue] = 0
            running[queue] = Histogram(upperBounds: settings.runningBuckets)
            maxRunning[queue] = 0
        }

        var seen: Set<String> = []
        for run in data.activeRuns {
            guard let type = run.stateType, StateType.nonTerminal.contains(type), seen.insert(run.id).inserted else { continue }
            let queue = run.queueKey
            let deployment = settings.includeDeploymentLabel ? run.deploymentLabel(names: names) : ""
            let key = KnownSeries.RunKey(queue: queue, deployment: deployment)
            states[StateKey(run: key, stateType: type, stateName: run.stateName ?? ""), default: 0] += 1

            let exemplar = settings.exemplars ? run.exemplarLabels : nil
            if type == .scheduled, let scheduled = run.nextScheduledStartTime ?? run.expectedStartTime {
                observeScheduled(key, scheduled: scheduled, exemplar: exemplar, settings: settings, now: now)
            }
            if type == .running, let start = run.startTime {
                let elapsed = max(0, now - start)
                running[queue, default: Histogram(upperBounds: settings.runningBuckets)].observe(elapsed, exemplar: exemplar, at: now)
                maxRunning[queue] = max(maxRunning[queue] ?? 0, elapsed)
            }
        }
        // The ledger's due runs, a group at a time (the poller drops in-flight runs from it first).
        for group in data.dueRuns.groups() {
            var deployment = ""
            if settings.includeDeploymentLabel, let id = group.deploymentID { deployment = names[id] ?? id }
            let key = KnownSeries.RunKey(queue: group.queue, deployment: deployment)
            states[StateKey(run: key, stateType: .scheduled, stateName: group.stateName), default: 0] += group.starts.count
            for start in group.starts { observeScheduled(key, scheduled: start, exemplar: nil, settings: settings, now: now) }
            // The latest run of the group is its exemplar (the one to look at first).
            if settings.exemplars, let oldest = group.oldest {
                observeExemplar(key.queue, [Label("flow_run_id", oldest.id)], overdue: now - oldest.start, settings: settings, now: now)
            }
        }
    }

    private mutating func observeScheduled(
        _ key: KnownSeries.RunKey, scheduled: Double, exemplar: [Label]?, settings: AggregationSettings, now: Double
    ) {
        let overdue = now - scheduled
        guard overdue > settings.lateAfter else { return }
        late[key, default: 0] += 1
        lateness[key.queue, default: Histogram(upperBounds: settings.latenessBuckets)].observe(overdue, exemplar: exemplar, at: now)
        maxLateness[key.queue] = max(maxLateness[key.queue] ?? 0, overdue)
    }

    /// Sets a lateness exemplar on the bucket a late run already counted in, without counting it again.
    private mutating func observeExemplar(_ queue: QueueKey, _ labels: [Label], overdue: Double, settings: AggregationSettings, now: Double) {
        guard overdue > settings.lateAfter else { return }
        var exemplarOnly = Histogram(upperBounds: settings.latenessBuckets)
        exemplarOnly.observe(overdue, exemplar: labels, at: now)
        lateness[queue, default: Histogram(upperBounds: settings.latenessBuckets)].adopt(exemplarsOf: exemplarOnly)
    }
}
