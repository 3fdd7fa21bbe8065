import Exposition
import PrefectAPI

/// The "flow runs now" families: a snapshot of runs that are due or in flight.
struct RunsNow {
    let data: PollData
    let scope: Scope
    let settings: AggregationSettings
    let now: Double

    private struct StateKey: Hashable, Comparable {
        var run: Scope.RunKey
        var stateType: StateType
        var stateName: String

        static func < (lhs: StateKey, rhs: StateKey) -> Bool {
            (lhs.run, lhs.stateType, lhs.stateName) < (rhs.run, rhs.stateType, rhs.stateName)
        }
    }

    func families() -> [MetricFamily] {
        let names = data.deploymentNames
        var states: [StateKey: Int] = [:]
        var late: [Scope.RunKey: Int] = [:]
        var lateness: [QueueKey: Histogram] = [:]
        var maxLateness: [QueueKey: Double] = [:]
        var running: [QueueKey: Histogram] = [:]
        var maxRunning: [QueueKey: Double] = [:]

        for key in scope.runKeys {
            for (type, name) in PrefectFamilies.knownStateNames {
                states[StateKey(run: key, stateType: type, stateName: name)] = 0
            }
            late[key] = 0
        }
        for queue in scope.queues {
            lateness[queue] = Histogram(upperBounds: settings.latenessBuckets)
            maxLateness[queue] = 0
            running[queue] = Histogram(upperBounds: settings.runningBuckets)
            maxRunning[queue] = 0
        }

        func observeScheduled(_ key: Scope.RunKey, scheduled: Double) {
            let overdue = now - scheduled
            guard overdue > settings.lateAfter else { return }
            late[key, default: 0] += 1
            lateness[key.queue, default: Histogram(upperBounds: settings.latenessBuckets)].observe(overdue)
            maxLateness[key.queue] = max(maxLateness[key.queue] ?? 0, overdue)
        }

        var seen: Set<String> = []
        for run in data.activeRuns {
            guard let type = run.stateType, StateType.nonTerminal.contains(type), seen.insert(run.id).inserted else { continue }
            let queue = run.queueKey
            let deployment = settings.includeDeploymentLabel ? run.deploymentLabel(names: names) : ""
            let key = Scope.RunKey(queue: queue, deployment: deployment)
            states[StateKey(run: key, stateType: type, stateName: run.stateName ?? ""), default: 0] += 1

            if type == .scheduled, let scheduled = run.nextScheduledStartTime ?? run.expectedStartTime {
                observeScheduled(key, scheduled: scheduled)
            }
            if type == .running, let start = run.startTime {
                let elapsed = max(0, now - start)
                running[queue, default: Histogram(upperBounds: settings.runningBuckets)].observe(elapsed)
                maxRunning[queue] = max(maxRunning[queue] ?? 0, elapsed)
            }
        }
        // The ledger's due runs, a group at a time (the poller drops in-flight runs from it first).
        for group in data.dueRuns.groups() {
            var deployment = ""
            if settings.includeDeploymentLabel, let id = group.deploymentID { deployment = names[id] ?? id }
            let key = Scope.RunKey(queue: group.queue, deployment: deployment)
            states[StateKey(run: key, stateType: .scheduled, stateName: group.stateName), default: 0] += group.starts.count
            for start in group.starts { observeScheduled(key, scheduled: start) }
        }

        var runs = MetricFamily(
            name: "prefect_flow_runs",
            help: "Flow runs that are due or in flight, by state: every PENDING, RUNNING, PAUSED and CANCELLING run, "
                + "and SCHEDULED runs whose scheduled start has passed. Future scheduled runs are in prefect_flow_runs_upcoming.",
            type: .gauge)
        for key in states.keys.sorted() {
            runs.metrics.append(Metric(
                labels: scope.runLabels(key.run.queue, deployment: key.run.deployment)
                    + [Label("state_type", key.stateType.rawValue), Label("state_name", key.stateName)],
                value: Double(states[key] ?? 0)))
        }
        var lateFamily = MetricFamily(
            name: "prefect_flow_runs_late",
            help: "SCHEDULED flow runs whose scheduled start is more than --prefect.late-after in the past, whatever their "
                + "state name (Prefect's late-runs service may not have renamed them Late yet).",
            type: .gauge)
        for key in late.keys.sorted() {
            lateFamily.metrics.append(Metric(labels: scope.runLabels(key.queue, deployment: key.deployment), value: Double(late[key] ?? 0)))
        }
        return [
            runs, lateFamily,
            histogramFamily(
                "prefect_flow_run_lateness_seconds", help: "How late each currently late flow run is, in seconds.", lateness),
            gaugeFamily(
                "prefect_flow_run_max_lateness_seconds",
                help: "Lateness of the latest currently late flow run, in seconds; 0 when none is late.", maxLateness),
            histogramFamily(
                "prefect_flow_run_running_seconds", help: "How long each RUNNING flow run has been running, in seconds.", running),
            gaugeFamily(
                "prefect_flow_run_max_running_seconds",
                help: "How long the longest RUNNING flow run has been running, in seconds; 0 when none runs.", maxRunning),
        ]
    }

    /// `prefect_flow_runs_upcoming`: the per-queue counts, zero-filled for every known queue.
    func upcomingFamily() -> MetricFamily {
        var counts = data.upcomingRuns
        for queue in scope.queues where counts[queue] == nil { counts[queue] = 0 }
        var upcoming = MetricFamily(
            name: "prefect_flow_runs_upcoming",
            help: "SCHEDULED flow runs whose scheduled start is still in the future, counted per work queue.", type: .gauge)
        for queue in counts.keys.sorted() {
            upcoming.metrics.append(Metric(labels: PrefectFamilies.queueLabels(queue), value: Double(counts[queue] ?? 0)))
        }
        return upcoming
    }

    private func histogramFamily(_ name: String, help: String, _ values: [QueueKey: Histogram]) -> MetricFamily {
        MetricFamily(
            name: name, help: help, type: .histogram,
            metrics: values.keys.sorted().compactMap { queue in
                values[queue].map { Metric(labels: PrefectFamilies.queueLabels(queue), histogram: $0) }
            })
    }

    private func gaugeFamily(_ name: String, help: String, _ values: [QueueKey: Double]) -> MetricFamily {
        MetricFamily(
            name: name, help: help, type: .gauge,
            metrics: values.keys.sorted().map { Metric(labels: PrefectFamilies.queueLabels($0), value: values[$0] ?? 0) })
    }
}
