import Aggregation
import Collectors
import Exposition
import Foundation
import PrefectAPI
import Testing

/// The bytes of a recorded fixture in `Fixtures/`.
func fixture(_ name: String) throws -> Data {
    let url = try #require(
        Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"), "missing fixture \(name).json")
    return try Data(contentsOf: url)
}

func decodeFixture<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
    try JSONDecoder().decode(T.self, from: try fixture(name))
}

func epoch(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
    try #require(PrefectTimestamp.parse(text), "unparseable \(text)", sourceLocation: sourceLocation)
}

/// Names used by the recorded fixtures (a real Prefect 3.8.8, seeded with `fixture-` objects).
enum Recorded {
    static let pool = "fixture-pool"
    static let pausedPool = "fixture-paused-pool"
    static let deploy = "fixture-flow/fixture-deploy"
    static let deployHigh = "fixture-flow/fixture-deploy-high"
    static let served = "fixture-other-flow/fixture-served"
    static let defaultQueue = QueueKey(workPool: pool, workQueue: "default")
    static let highQueue = QueueKey(workPool: pool, workQueue: "fixture-high")
    static let pausedQueue = QueueKey(workPool: pool, workQueue: "fixture-paused-queue")
    static let pausedPoolQueue = QueueKey(workPool: pausedPool, workQueue: "default")
    /// Every known queue and the no-pool key, sorted.
    static let allQueues = [QueueKey.none, pausedPoolQueue, defaultQueue, highQueue, pausedQueue]

    /// When the fixtures were recorded: every run had been created by then.
    static let recordedAt = 1_795_423_895.0  // 2026-11-23T08:51:35Z
    /// Shortly before every run was created.
    static let exporterStart = 1_795_423_860.0  // 2026-11-23T08:51:00Z

    /// One poll's data as the collectors would have read it from the recording.
    static func pollData() throws -> PollData {
        let flows = try decodeFixture([Flow].self, "flows")
        return PollData(
            serverVersion: "3.8.8", apiVersion: "0.8.4",
            workPools: try decodeFixture([WorkPool].self, "work_pools"),
            workQueues: try decodeFixture([WorkQueue].self, "work_queues"),
            workers: [pool: try decodeFixture([Worker].self, "workers"), pausedPool: []],
            deployments: try decodeFixture([Deployment].self, "deployments"),
            flowNames: Dictionary(uniqueKeysWithValues: flows.map { ($0.id, $0.name) }),
            activeRuns: try decodeFixture([FlowRun].self, "flow_runs_in_flight")
                + decodeFixture([FlowRun].self, "flow_runs_scheduled_due"),
            upcomingRuns: [defaultQueue: 1, .none: 0],
            finishedRuns: try decodeFixture([FlowRun].self, "flow_runs_finished"),
            startedRuns: try decodeFixture([FlowRun].self, "flow_runs_started"))
    }

    /// Families built from the recording, with the history fed by that one poll.
    static func families(now: Double, settings: AggregationSettings = AggregationSettings()) throws -> [MetricFamily] {
        let data = try pollData()
        var history = RunHistory(startTime: exporterStart, overlap: 60, settings: settings)
        history.ingest(
            finished: data.finishedRuns, started: data.startedRuns, deploymentNames: data.deploymentNames, pollTime: now)
        return PrefectCollectors.build(from: data, history: history, settings: settings, now: now)
    }
}

/// Label sets of a family, as dictionaries, in output order.
func labelSets(_ families: [MetricFamily], _ name: String) -> [[String: String]] {
    families.first { $0.name == name }?.metrics.map(labelDictionary) ?? []
}

func labelDictionary(_ metric: Metric) -> [String: String] {
    Dictionary(metric.labels.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
}

/// The value of the one series of `name` with exactly these labels.
func value(_ families: [MetricFamily], _ name: String, _ labels: [String: String] = [:]) -> Double? {
    guard let metric = families.first(where: { $0.name == name })?.metrics.first(where: { labelDictionary($0) == labels }),
          case .number(let number) = metric.value
    else { return nil }
    return number
}

func histogram(_ families: [MetricFamily], _ name: String, _ labels: [String: String]) -> Histogram? {
    guard let metric = families.first(where: { $0.name == name })?.metrics.first(where: { labelDictionary($0) == labels }),
          case .histogram(let histogram) = metric.value
    else { return nil }
    return histogram
}

func queueLabels(_ queue: QueueKey) -> [String: String] {
    ["work_pool": queue.workPool, "work_queue": queue.workQueue]
}

func runLabels(_ queue: QueueKey, _ deployment: String) -> [String: String] {
    ["work_pool": queue.workPool, "work_queue": queue.workQueue, "deployment": deployment]
}

func stateLabels(_ queue: QueueKey, _ deployment: String?, _ type: String, _ name: String) -> [String: String] {
    var labels = ["work_pool": queue.workPool, "work_queue": queue.workQueue, "state_type": type, "state_name": name]
    if let deployment { labels["deployment"] = deployment }
    return labels
}
