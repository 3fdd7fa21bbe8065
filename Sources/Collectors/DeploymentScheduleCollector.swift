import Aggregation
import Exposition
import HTTPClient
import PrefectAPI
import Locking

/// Schedule health per deployment, in the manner of kube-state-metrics' CronJob metrics: whether
/// the deployment has a SCHEDULED run and when the next one is due, and when its last run
/// finished in each terminal state.
///
/// Prefect has no field for either: the next run is the earliest SCHEDULED run of the deployment,
/// and the last finished run is the latest by end time. Both take one small request per
/// deployment (`/flow_runs/filter`, limit 1), so they are looked up at most ``lookupsPerPoll`` a
/// poll, spread over polls, and kept between polls:
/// - every deployment is looked up once after the exporter starts (those with an active schedule
///   first): its next run, and its last run in each terminal state;
/// - the runs that finish while the exporter runs keep the last-finished times up to date at no
///   cost (the finished-runs collector lists them anyway);
/// - a deployment's next run is looked up again once its time has passed, once one of its runs
///   finished, and otherwise in turn, the least recently checked first: every ``refreshAfter``
///   seconds, or every minute for a deployment with an active schedule and no SCHEDULED run.
struct DeploymentScheduleCollector: Collector {
    static let name = "deployment_schedules"
    static let stage = CollectorStage.runs

    static let hasScheduledRun = FamilyDescriptor(
        "prefect_deployment_has_scheduled_run", .gauge,
        help: "1 if the deployment has a SCHEDULED run (due or future), 0 if it has none, as of its last lookup; absent "
            + "until the exporter has looked it up.",
        labels: ["deployment"])
    static let nextRun = FamilyDescriptor(
        "prefect_deployment_next_scheduled_run_timestamp_seconds", .gauge,
        help: "When the deployment's earliest SCHEDULED run is due, in seconds since the epoch (in the past when it is "
            + "late); absent when it has none.",
        labels: ["deployment"])
    static let lastFinished = FamilyDescriptor(
        "prefect_deployment_last_run_finished_timestamp_seconds", .gauge,
        help: "When the deployment's last run that ended in this terminal state finished (its end_time), in seconds "
            + "since the epoch; absent when none did.",
        labels: ["deployment", "state_type"])
    static let families = [hasScheduledRun, nextRun, lastFinished]

    /// What is known of one deployment.
    struct Knowledge: Sendable, Equatable {
        /// When its next run was last looked up (our clock); nil if never.
        var nextCheckedAt: Double?
        /// Its earliest SCHEDULED run's start, when it has one.
        var nextRun: Double?
        /// The terminal state types whose last run was looked up (once, after the exporter started).
        var finishedLookedUp: Set<StateType> = []
        /// When its last run in each terminal state finished.
        var lastFinished: [StateType: Double] = [:]
        /// A run of it finished or started since its next run was last looked up.
        var nextRunMayHaveChanged = false
    }

    /// What is known of every deployment, by id.
    typealias Output = [String: Knowledge]

    private final class State: Sendable {
        let knowledge = LockedValue<[String: Knowledge]>([:])
    }

    private let state = State()
    /// The most lookups (requests) a poll sends.
    let lookupsPerPoll: Int
    /// A deployment's next run is looked up again at least this often, in seconds, when the
    /// budget allows.
    let refreshAfter: Double

    init(lookupsPerPoll: Int = 20, refreshAfter: Double) {
        self.lookupsPerPoll = lookupsPerPoll
        self.refreshAfter = refreshAfter
    }

    /// One request to make.
    enum Lookup: Sendable, Equatable {
        case nextRun(deployment: String)
        case lastFinished(deployment: String, stateType: StateType)
    }

    func collect(_ context: CollectionContext) async throws(CollectorError) -> Output {
        let deployments = try context.require(DeploymentCollector.self, as: "the deployment list").deployments
            .filter { context.selection.includes($0.workPoolName ?? "") }
        let departed = await context.outputOfThisPoll(FinishedFlowRunCollector.self)?.departed ?? []
        let lookups = state.knowledge.withLock { knowledge -> [Lookup] in
            // Forget deleted deployments; learn from the runs that finished or started this poll.
            let ids = Set(deployments.map(\.id))
            knowledge = knowledge.filter { ids.contains($0.key) }
            Self.learn(from: departed, into: &knowledge)
            return Self.plan(deployments, knowledge: knowledge, now: context.now, budget: lookupsPerPoll, refreshAfter: refreshAfter)
        }
        let client = context.client
        let now = context.now
        let results = await concurrentResults(lookups) { lookup throws(PrefectAPIError) in
            try await client.firstFlowRun(matching: Self.filter(for: lookup), sort: Self.sort(for: lookup))
        }
        var firstError: PrefectAPIError?
        let output = state.knowledge.withLock { knowledge -> Output in
            for (lookup, result) in zip(lookups, results) {
                switch result {
                case .success(let run): Self.record(run, for: lookup, at: now, into: &knowledge)
                case .failure(let error): firstError = firstError ?? error
                }
            }
            return knowledge
        }
        if let firstError { throw .api(firstError) }
        return output
    }

    func asksPrefect(_ context: CollectionContext) -> Bool {
        context.inputs.last(DeploymentCollector.self)?.deployments.isEmpty == false
    }

    /// Finished runs set the last-finished times. A run that started or finished after the
    /// deployment's next run was last looked up may have been that next run, so it is looked up again.
    static func learn(from runs: [FlowRun], into knowledge: inout [String: Knowledge]) {
        for run in runs {
            guard let deployment = run.deploymentID else { continue }
            var entry = knowledge[deployment] ?? Knowledge()
            if let type = run.stateType, StateType.terminal.contains(type), let end = run.endTime {
                entry.lastFinished[type] = max(entry.lastFinished[type] ?? end, end)
            }
            let changed = max(run.startTime ?? -.infinity, run.endTime ?? -.infinity)
            if let checked = entry.nextCheckedAt, changed > checked { entry.nextRunMayHaveChanged = true }
            knowledge[deployment] = entry
        }
    }

    /// This poll's lookups, most urgent first, at most `budget`: next runs never looked up (active
    /// schedules first), last runs never looked up, next runs that passed or may have changed, then
    /// the least recently checked next run older than `refreshAfter`.
    static func plan(
        _ deployments: [Deployment], knowledge: [String: Knowledge], now: Double, budget: Int, refreshAfter: Double
    ) -> [Lookup] {
        let ordered = deployments.sorted { lhs, rhs in
            let scheduled = (lhs.schedules.contains(where: \.active), rhs.schedules.contains(where: \.active))
            return scheduled.0 != scheduled.1 ? scheduled.0 : lhs.id < rhs.id
        }
        var lookups: [Lookup] = []
        func add(_ lookup: Lookup) -> Bool {
            guard lookups.count < budget else { return false }
            if !lookups.contains(lookup) { lookups.append(lookup) }
            return true
        }
        for deployment in ordered where knowledge[deployment.id]?.nextCheckedAt == nil {
            guard add(.nextRun(deployment: deployment.id)) else { return lookups }
        }
        for deployment in ordered {
            let done = knowledge[deployment.id]?.finishedLookedUp ?? []
            for type in StateType.terminal where !done.contains(type) {
                guard add(.lastFinished(deployment: deployment.id, stateType: type)) else { return lookups }
            }
        }
        for deployment in ordered {
            guard let entry = knowledge[deployment.id], let checked = entry.nextCheckedAt else { continue }
            let passed = entry.nextRun.map { $0 <= now && checked < $0 } ?? false
            if passed || entry.nextRunMayHaveChanged {
                guard add(.nextRun(deployment: deployment.id)) else { return lookups }
            }
        }
        // A scheduled deployment without a SCHEDULED run is checked again sooner: Prefect's scheduler
        // may have made its runs just after the last lookup (a deployment created moments before).
        let stale = ordered
            .compactMap { deployment -> (String, Double)? in
                guard let entry = knowledge[deployment.id], let checked = entry.nextCheckedAt else { return nil }
                let waiting = entry.nextRun == nil && deployment.schedules.contains(where: \.active)
                return now - checked >= (waiting ? min(60, refreshAfter) : refreshAfter) ? (deployment.id, checked) : nil
            }
            .sorted { $0.1 < $1.1 }
        for (id, _) in stale {
            guard add(.nextRun(deployment: id)) else { return lookups }
        }
        return lookups
    }

    /// Records one lookup's answer.
    static func record(_ run: FlowRun?, for lookup: Lookup, at now: Double, into knowledge: inout [String: Knowledge]) {
        switch lookup {
        case .nextRun(let deployment):
            var entry = knowledge[deployment] ?? Knowledge()
            entry.nextCheckedAt = now
            entry.nextRun = run.flatMap { $0.nextScheduledStartTime ?? $0.expectedStartTime }
            entry.nextRunMayHaveChanged = false
            knowledge[deployment] = entry
        case .lastFinished(let deployment, let type):
            var entry = knowledge[deployment] ?? Knowledge()
            if let end = run?.endTime { entry.lastFinished[type] = max(entry.lastFinished[type] ?? end, end) }
            // Only an answered lookup counts: a failed one is planned again next poll.
            entry.finishedLookedUp.insert(type)
            knowledge[deployment] = entry
        }
    }

    static func filter(for lookup: Lookup) -> JSONValue {
        switch lookup {
        case .nextRun(let deployment):
            return FlowRunQueries.scheduled(deploymentID: deployment)
        case .lastFinished(let deployment, let type):
            return FlowRunQueries.finished(deploymentID: deployment, stateType: type)
        }
    }

    static func sort(for lookup: Lookup) -> String {
        switch lookup {
        case .nextRun: return FlowRunQueries.Sort.nextScheduledStartAscending
        case .lastFinished: return FlowRunQueries.Sort.endTimeDescending
        }
    }

    static func samples(_ input: SampleInput) -> [MetricFamily] {
        let names = input.data.deploymentNames
        let deployments = input.data.deployments.map { (name: names[$0.id] ?? $0.name, id: $0.id) }.sorted { $0.name < $1.name }
        var has = hasScheduledRun.family()
        var next = nextRun.family()
        var finished = lastFinished.family()
        let knowledge = input.outputs.last(Self.self) ?? [:]
        for deployment in deployments {
            guard let entry = knowledge[deployment.id] else { continue }
            let label = Label("deployment", deployment.name)
            if entry.nextCheckedAt != nil {
                has.metrics.append(Metric(labels: [label], value: entry.nextRun == nil ? 0 : 1))
            }
            if let time = entry.nextRun { next.metrics.append(Metric(labels: [label], value: time)) }
            for type in StateType.terminal {
                if let end = entry.lastFinished[type] {
                    finished.metrics.append(Metric(labels: [label, Label("state_type", type.rawValue)], value: end))
                }
            }
        }
        return [has, next, finished]
    }
}
