public import Aggregation
import Dispatch
public import Exposition
import Foundation
public import Logging
public import PrefectAPI

/// Settings of the poll loop.
public struct PollerConfiguration: Sendable {
    public var interval: Duration
    /// Prefect-derived families are dropped once the last good poll is older than this.
    public var maxStaleness: Duration
    public var aggregation: AggregationSettings
    /// The exporter's version and revision, for `prefect_exporter_build_info`.
    public var version: String
    public var revision: String
    /// The work pools to report; all by default.
    public var workPoolSelection: WorkPoolSelection
    /// Whether each snapshot is rendered (``RenderedSnapshot/plain`` and ``RenderedSnapshot/gzip``).
    /// An ``ExpositionMerger`` renders for the whole exporter instead, so the CLI turns this off.
    public var rendersExposition: Bool

    public init(
        interval: Duration = .seconds(30), maxStaleness: Duration = .seconds(300),
        aggregation: AggregationSettings = AggregationSettings(), version: String = "dev", revision: String = "unknown",
        workPoolSelection: WorkPoolSelection = .all, rendersExposition: Bool = true
    ) {
        self.workPoolSelection = workPoolSelection
        self.rendersExposition = rendersExposition
        self.interval = interval
        self.maxStaleness = maxStaleness
        self.aggregation = aggregation
        self.version = version
        self.revision = revision
    }
}

/// The exposition of one snapshot, rendered once and served to every scrape until the next.
public struct RenderedSnapshot: Sendable {
    /// The text format of ``families``; empty when ``PollerConfiguration/rendersExposition`` is off.
    public var plain: [UInt8]
    /// The same bytes gzip-compressed; nil if compression failed or rendering is off.
    public var gzip: [UInt8]?
    /// Every family, in the order served: ``health``, build info, process metrics, then ``prefect``.
    public var families: [MetricFamily]
    /// This poller's own health families (`prefect_up`, `prefect_exporter_last_poll_success_timestamp_seconds`,
    /// `prefect_exporter_poll_duration_seconds`, `prefect_exporter_polls_total`,
    /// `prefect_exporter_api_requests_total`, `prefect_exporter_collector_*`), without build info and process metrics.
    public var health: [MetricFamily]
    /// The Prefect-derived families of the last good poll; empty before one and once it is older than
    /// ``PollerConfiguration/maxStaleness``.
    public var prefect: [MetricFamily]

    /// Creates a snapshot; ``families`` is `health + extra + prefect` unless given.
    public init(
        plain: [UInt8] = [], gzip: [UInt8]? = nil, health: [MetricFamily], prefect: [MetricFamily],
        families: [MetricFamily]? = nil
    ) {
        self.plain = plain
        self.gzip = gzip
        self.health = health
        self.prefect = prefect
        self.families = families ?? health + prefect
    }
}

/// What one poll did, for logs, tests and benchmarks.
public struct PollReport: Sendable {
    public var success: Bool
    public var skipped: Bool
    public var error: PrefectAPIError?
    public var duration: Double
    public var requests: Int
    public var bytes: Int
}

/// The background poll loop. Polls run one at a time; each ends by publishing a new snapshot
/// (also when it failed, so that the exporter's own metrics keep flowing).
public actor Poller {
    private let client: PrefectClient
    private let configuration: PollerConfiguration
    private let statistics: RequestStatistics
    private let logger: Logger
    private let publish: @Sendable (RenderedSnapshot) -> Void
    private let clock: @Sendable () -> Double

    private var history: RunHistory
    private var lastGoodFamilies: [MetricFamily] = []
    private var lastSuccessTime: Double?
    private var lastPollDuration: Double = 0
    private var lastOutcomes: [CollectorOutcome] = []
    private var prefectUp = false
    private var pollCounts: [String: Double] = ["success": 0, "failure": 0, "skipped": 0]
    private var skipUntil: Double?
    private var lastErrorReason: String?
    /// Whether at least one poll has been attempted: what `/-/ready` reports.
    public private(set) var attempted = false

    /// - Parameters:
    ///   - publish: receives every rendered snapshot; called on the poller's executor.
    ///   - clock: seconds since the epoch; injectable for tests.
    public init(
        client: PrefectClient, configuration: PollerConfiguration, statistics: RequestStatistics, logger: Logger,
        clock: (@Sendable () -> Double)? = nil,
        publish: @escaping @Sendable (RenderedSnapshot) -> Void
    ) {
        self.client = client
        self.configuration = configuration
        self.statistics = statistics
        self.logger = logger
        let clock = clock ?? { Date().timeIntervalSince1970 }
        self.clock = clock
        self.publish = publish
        let overlap = max(60, 2 * configuration.interval.seconds)
        self.history = RunHistory(startTime: clock(), overlap: overlap, settings: configuration.aggregation)
    }

    /// Polls forever, every interval with ±10% jitter, until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            let started = clock()
            _ = await pollOnce()
            let interval = configuration.interval.seconds
            let jittered = interval * Double.random(in: 0.9...1.1)
            let remaining = max(0.05, jittered - (clock() - started))
            try? await Task.sleep(for: .milliseconds(Int(remaining * 1000)))
        }
    }

    /// Runs one poll (or skips it while Prefect asked us to back off) and publishes the snapshot.
    @discardableResult
    public func pollOnce() async -> PollReport {
        let now = clock()
        attempted = true
        if let skipUntil, now < skipUntil {
            pollCounts["skipped", default: 0] += 1
            prefectUp = false
            publishSnapshot(now: now)
            return PollReport(success: false, skipped: true, error: nil, duration: 0, requests: 0, bytes: 0)
        }
        skipUntil = nil
        _ = statistics.takePollCost()
        let startTicks = DispatchTime.now().uptimeNanoseconds
        let context = CollectionContext(client: client, now: now, historyQueryStart: history.queryStart)
        let result = await PollCycle(context: context, selection: configuration.workPoolSelection).run()
        lastPollDuration = Double(DispatchTime.now().uptimeNanoseconds - startTicks) / 1e9
        lastOutcomes = result.outcomes
        let cost = statistics.takePollCost()

        if let data = result.data {
            history.ingest(
                finished: data.finishedRuns, started: data.startedRuns, deploymentNames: data.deploymentNames, pollTime: now)
            lastGoodFamilies = PrefectFamilies.build(
                from: data, history: history, settings: configuration.aggregation, now: now)
            lastSuccessTime = clock()
            prefectUp = true
            pollCounts["success", default: 0] += 1
            if lastErrorReason != nil {
                logger.info("Prefect polls succeed again", metadata: ["url": "\(client.configuration.redactedBaseURL)"])
                lastErrorReason = nil
            }
        } else {
            prefectUp = false
            pollCounts["failure", default: 0] += 1
            if let error = result.error {
                if let retryAfter = error.retryAfter { skipUntil = now + retryAfter }
                // Log a cause once; repeats of the same cause go to debug so logs do not flood.
                if lastErrorReason != error.reason {
                    logger.error("poll failed: \(error.message)", metadata: ["reason": "\(error.reason)"])
                    lastErrorReason = error.reason
                } else {
                    logger.debug("poll failed again: \(error.message)", metadata: ["reason": "\(error.reason)"])
                }
            }
        }
        publishSnapshot(now: clock())
        logger.debug(
            "poll finished",
            metadata: [
                "success": "\(result.data != nil)", "duration_seconds": "\(lastPollDuration)",
                "requests": "\(cost.requests)", "bytes": "\(cost.bytes)",
            ])
        return PollReport(
            success: result.data != nil, skipped: false, error: result.error, duration: lastPollDuration,
            requests: cost.requests, bytes: cost.bytes)
    }

    /// Publishes a snapshot of what is known now without polling: before the first poll, the
    /// exporter's own metrics with `prefect_up 0`.
    public func publishCurrent() {
        publishSnapshot(now: clock())
    }

    private func publishSnapshot(now: Double) {
        let health = ExporterFamilies.health(
            up: prefectUp, lastSuccess: lastSuccessTime, pollDuration: lastPollDuration, pollCounts: pollCounts,
            requests: statistics.totals, outcomes: lastOutcomes)
        var prefect: [MetricFamily] = []
        if let lastSuccessTime, now - lastSuccessTime <= configuration.maxStaleness.seconds {
            prefect = lastGoodFamilies
        }
        let families = health + [ExporterFamilies.buildInfo(version: configuration.version, revision: configuration.revision)]
            + ProcessMetrics.families() + prefect
        guard configuration.rendersExposition else {
            publish(RenderedSnapshot(health: health, prefect: prefect, families: families))
            return
        }
        let plain = TextFormat.encodeBytes(families)
        let gzip = try? Gzip.compress(plain)
        publish(RenderedSnapshot(plain: plain, gzip: gzip, health: health, prefect: prefect, families: families))
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
