public import Exposition
public import PrefectAPI

/// The counters and cumulative histograms of finished and started runs, since the exporter started.
///
/// Polls ask Prefect for runs that finished (or started) since ``queryStart``, a window that
/// overlaps the previous poll's by ``overlap`` seconds so that runs committed late, or stamped
/// by a server clock that lags ours, are not missed. Each run is counted once: a run is keyed
/// by its id and its end (or start) time, and keys are remembered until they fall out of the
/// window. A run that finishes again later (a manual retry) has a new end time and counts again.
public struct RunHistory: Sendable {
    /// Labels of one finished-runs counter series.
    public struct FinishedKey: Hashable, Sendable, Comparable {
        public var queue: QueueKey
        public var deployment: String
        public var stateType: StateType

        public init(queue: QueueKey, deployment: String, stateType: StateType) {
            self.queue = queue
            self.deployment = deployment
            self.stateType = stateType
        }

        public static func < (lhs: FinishedKey, rhs: FinishedKey) -> Bool {
            (lhs.queue, lhs.deployment, lhs.stateType) < (rhs.queue, rhs.deployment, rhs.stateType)
        }
    }

    /// Labels of one duration histogram.
    public struct DurationKey: Hashable, Sendable, Comparable {
        public var queue: QueueKey
        public var stateType: StateType

        public init(queue: QueueKey, stateType: StateType) {
            self.queue = queue
            self.stateType = stateType
        }

        public static func < (lhs: DurationKey, rhs: DurationKey) -> Bool {
            (lhs.queue, lhs.stateType) < (rhs.queue, rhs.stateType)
        }
    }

    /// Seconds by which each query window reaches back before the previous poll.
    public let overlap: Double
    /// The lower bound (seconds since the epoch) for the next finished and started queries.
    public private(set) var queryStart: Double
    public private(set) var finished: [FinishedKey: Double] = [:]
    public private(set) var durations: [DurationKey: Histogram] = [:]
    public private(set) var startDelays: [QueueKey: Histogram] = [:]

    private let settings: AggregationSettings
    private var seenFinished: [String: Double] = [:]
    private var seenStarted: [String: Double] = [:]

    /// - Parameters:
    ///   - startTime: runs that ended or started before this are history and never counted.
    ///   - overlap: how far each window reaches back before the previous poll.
    public init(startTime: Double, overlap: Double, settings: AggregationSettings) {
        self.queryStart = startTime
        self.overlap = overlap
        self.settings = settings
    }

    /// How many run keys are remembered for de-duplication.
    public var rememberedRuns: Int { seenFinished.count + seenStarted.count }

    /// Counts the runs of one successful poll that were not counted before, then moves the window.
    /// - Parameters:
    ///   - deploymentNames: full deployment names by id.
    ///   - pollTime: when the poll's queries were made (our clock).
    public mutating func ingest(finished runs: [FlowRun], started: [FlowRun], deploymentNames: [String: String], pollTime: Double) {
        for run in runs {
            guard let type = run.stateType, StateType.terminal.contains(type), let end = run.endTime, end >= queryStart
            else { continue }
            let key = "\(run.id)|\(end)"
            guard seenFinished.updateValue(end, forKey: key) == nil else { continue }
            let deployment = settings.includeDeploymentLabel ? run.deploymentLabel(names: deploymentNames) : ""
            finished[FinishedKey(queue: run.queueKey, deployment: deployment, stateType: type), default: 0] += 1
            if run.hasRun {
                durations[DurationKey(queue: run.queueKey, stateType: type), default: Histogram(upperBounds: settings.durationBuckets)]
                    .observe(max(0, run.totalRunTime), exemplar: settings.exemplars ? run.exemplarLabels : nil, at: end)
            }
        }
        for run in started {
            // Runs cancelled before they ran carry a start_time too; they did not start.
            guard let start = run.startTime, start >= queryStart, run.hasRun else { continue }
            let key = "\(run.id)|\(start)"
            guard seenStarted.updateValue(start, forKey: key) == nil else { continue }
            let expected = run.expectedStartTime ?? start
            startDelays[run.queueKey, default: Histogram(upperBounds: settings.startDelayBuckets)]
                .observe(max(0, start - expected), exemplar: settings.exemplars ? run.exemplarLabels : nil, at: start)
        }
        let nextStart = max(queryStart, pollTime - overlap)
        if nextStart > queryStart {
            queryStart = nextStart
            seenFinished = seenFinished.filter { $0.value >= nextStart }
            seenStarted = seenStarted.filter { $0.value >= nextStart }
        }
    }
}
