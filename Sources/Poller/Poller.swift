public import Aggregation
public import Collectors
import Dispatch
public import Exposition
import FoundationEssentials
public import Logging
public import PrefectAPI

/// Settings of the poll loop.
public struct PollerConfiguration: Sendable {
    public var interval: Duration
    /// Prefect-derived families are dropped once the last good poll is older than this.
    public var maxStaleness: Duration
    public var aggregation: AggregationSettings
    /// The work pools to report; all by default.
    public var workPoolSelection: WorkPoolSelection

    public init(
        interval: Duration = .seconds(30), maxStaleness: Duration = .seconds(300),
        aggregation: AggregationSettings = AggregationSettings(),
        workPoolSelection: WorkPoolSelection = .all
    ) {
        self.workPoolSelection = workPoolSelection
        self.interval = interval
        self.maxStaleness = maxStaleness
        self.aggregation = aggregation
    }
}

/// What one poller publishes after each poll: its families, not rendered (the exporter's page
/// renders every poller's snapshot at once).
public struct PollerSnapshot: Sendable {
    /// This poller's own health families (`prefect_up`, `prefect_exporter_last_poll_success_timestamp_seconds`,
    /// `prefect_exporter_poll_duration_seconds`, `prefect_exporter_polls_total`,
    /// `prefect_exporter_api_requests_total`, `prefect_exporter_collector_*`).
    public var health: [MetricFamily]
    /// The Prefect-derived families: each collector's families as of its last success, for the
    /// collectors whose last success is within ``PollerConfiguration/maxStaleness``, in the order served.
    public var prefect: [MetricFamily]

    public init(health: [MetricFamily], prefect: [MetricFamily]) {
        self.health = health
        self.prefect = prefect
    }

    /// Every family: ``health``, then ``prefect``.
    public var families: [MetricFamily] { health + prefect }
}

/// What one poll did, for logs, tests and benchmarks.
public struct PollReport: Sendable {
    /// Whether every collector succeeded.
    public var success: Bool
    public var skipped: Bool
    /// The first Prefect API error of the poll, if any.
    public var error: PrefectAPIError?
    public var duration: Double
    public var requests: Int
    public var bytes: Int
    /// How each collector fared; empty for a skipped poll.
    public var outcomes: [CollectorOutcome] = []

    /// The collectors that failed, with their errors.
    public var failures: [(collector: String, error: CollectorError)] {
        outcomes.compactMap { outcome in outcome.error.map { (outcome.name, $0) } }
    }
}

/// The background poll loop. Polls run one at a time; each ends by publishing a new snapshot
/// (also when it failed, so that the exporter's own metrics keep flowing).
///
/// Collectors fail alone: the families a failing collector feeds keep their last good values
/// until ``PollerConfiguration/maxStaleness`` after its last success, then disappear, while
/// every other family stays fresh.
public actor Poller {
    private let client: PrefectClient
    private let configuration: PollerConfiguration
    private let statistics: RequestStatistics
    private let logger: Logger
    private let publish: @Sendable (PollerSnapshot) -> Void
    private let clock: @Sendable () -> Double

    private let collectors: [AnyCollector]
    /// Each collector's last good output.
    private var outputs = CollectorOutputs()
    /// The families of each collector as built at its last success, and when that was.
    private var collectorFamilies: [String: (families: [MetricFamily], time: Double)] = [:]
    private var collectorLastSuccess: [String: Double] = [:]
    private var lastSuccessTime: Double?
    private var lastPollDuration: Double = 0
    private var lastOutcomes: [CollectorOutcome] = []
    private var prefectUp = false
    private var pollCounts: [String: Double] = ["success": 0, "partial": 0, "failure": 0, "skipped": 0]
    /// Polls are skipped until then: Prefect asked to wait (`Retry-After`).
    private var skipUntil: Double?
    /// The reason each failing collector last logged, so a cause is logged once, not every poll.
    private var loggedFailures: [String: String] = [:]
    /// The reason logged when the last poll failed as a whole (every collector failed).
    private var lastPollFailure: String?
    /// The interval between polls now: the configured one, or longer to keep within the request budget.
    private var interval: Double
    /// Whether the interval is stretched (logged once when it starts and once when it ends).
    private var stretched = false
    /// The learned limits already logged, by route.
    private var loggedLimits: [String: Int] = [:]
    /// Whether at least one poll has been attempted: what `/-/ready` reports.
    public private(set) var attempted = false

    /// - Parameters:
    ///   - publish: receives every rendered snapshot; called on the poller's executor.
    ///   - clock: seconds since the epoch; injectable for tests.
    public init(
        client: PrefectClient, configuration: PollerConfiguration, statistics: RequestStatistics, logger: Logger,
        clock: (@Sendable () -> Double)? = nil,
        publish: @escaping @Sendable (PollerSnapshot) -> Void
    ) {
        self.client = client
        self.configuration = configuration
        self.statistics = statistics
        self.logger = logger
        let clock = clock ?? { Date().timeIntervalSince1970 }
        self.clock = clock
        self.publish = publish
        self.interval = configuration.interval.seconds
        self.collectors = PrefectCollectors.make(PrefectCollectors.Settings(
            startTime: clock(), interval: configuration.interval.seconds, aggregation: configuration.aggregation))
    }

    /// Polls forever, every interval with ±10% jitter, until the task is cancelled. While the
    /// interval is stretched for the request budget, the jitter only lengthens it.
    public func run() async {
        while !Task.isCancelled {
            let started = clock()
            let report = await pollOnce()
            let jittered = interval * Double.random(in: (stretched ? 1.0 : 0.9)...1.1)
            var wake = started + jittered
            // While Prefect's Retry-After holds, polls are skipped at the interval (so that the
            // page says so); the first poll after the hold comes when it ends, not up to an
            // interval later. (The poll that was asked to wait keeps the interval before its first skip.)
            if report.skipped, let skipUntil { wake = min(wake, skipUntil) }
            let remaining = max(0.05, wake - clock())
            do {
                try await Task.sleep(for: .milliseconds(Int(remaining * 1000)))
            } catch {
                return  // cancelled
            }
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
        _ = client.pacer.takePollCounts()
        let startTicks = DispatchTime.now().uptimeNanoseconds
        let selection = configuration.workPoolSelection
        let cycle = PollCycle(client: client, now: now, selection: selection, collectors: collectors)
        let result = await cycle.run(previous: outputs)
        lastPollDuration = Double(DispatchTime.now().uptimeNanoseconds - startTicks) / 1e9
        lastOutcomes = result.outcomes
        outputs = result.outputs
        let cost = statistics.takePollCost()
        adjustInterval(afterPollSending: client.pacer.takePollCounts())

        let finishedAt = clock()
        let input = SampleInput(
            data: PollCycle.pollData(outputs, collectors: collectors, selection: selection), outputs: outputs,
            settings: configuration.aggregation, now: now)
        for (collector, outcome) in zip(collectors, result.outcomes) where outcome.success {
            collectorLastSuccess[outcome.name] = finishedAt
            collectorFamilies[collector.name] = (collector.samples(input), finishedAt)
        }
        let succeeded = result.outcomes.filter(\.success).count
        // Prefect answered: a collector that asked something succeeded (the workers of no pool
        // succeed without asking, which says nothing about Prefect).
        prefectUp = result.outcomes.contains { $0.success && $0.askedPrefect }
        if prefectUp { lastSuccessTime = finishedAt }
        let complete = succeeded == result.outcomes.count
        pollCounts[complete ? "success" : (prefectUp ? "partial" : "failure"), default: 0] += 1
        let apiErrors = result.outcomes.compactMap { $0.error?.apiError }
        // Timed from the answer that asked to wait (the client's hold), not from the poll's start.
        if let remaining = client.pacer.remainingHold { skipUntil = clock() + remaining }
        logOutcomes(result.outcomes, prefectAnswered: prefectUp)

        publishSnapshot(now: clock())
        logger.debug(
            "poll finished",
            metadata: [
                "collectors_failed": "\(result.outcomes.count - succeeded)", "duration_seconds": "\(lastPollDuration)",
                "requests": "\(cost.requests)", "bytes": "\(cost.bytes)", "due_runs": "\(input.data.dueRuns.count)",
            ])
        return PollReport(
            success: complete, skipped: false, error: apiErrors.first, duration: lastPollDuration,
            requests: cost.requests, bytes: cost.bytes, outcomes: result.outcomes)
    }

    /// Stretches the interval when polls like this one would exceed the request budget or a
    /// limit learned from a 429, and logs each change of either once.
    private func adjustInterval(afterPollSending counts: [String: Int]) {
        let status = client.pacer.status
        for (route, limit) in status.learnedPerMinute.sorted(by: { $0.key < $1.key }) where loggedLimits[route] != limit {
            let message = "Prefect rate-limited the \(route) routes (HTTP 429): the exporter now sends them at most "
                + "\(limit) requests a minute (90% of what it sent in the minute before) until 15 minutes pass without a 429; set "
                + "--prefect.max-requests-per-minute below Prefect's limit to avoid the 429s"
            logger.warning(
                "\(message)",
                metadata: ["route": "\(route)", "limit_per_minute": "\(limit)"])
            loggedLimits[route] = limit
        }
        for route in loggedLimits.keys.sorted() where status.learnedPerMinute[route] == nil {
            logger.info(
                "the learned limit on the \(route) routes is lifted: no 429 from Prefect for 15 minutes",
                metadata: ["route": "\(route)"])
            loggedLimits[route] = nil
        }
        let configured = configuration.interval.seconds
        let needed = client.pacer.minimumInterval(forPollSending: counts) ?? 0
        let requests = counts.values.reduce(0, +)
        if needed > configured {
            interval = needed
            if !stretched {
                let perMinute = Int((Double(requests) * 60 / configured).rounded())
                let message = "polls exceed the request budget: a poll sends \(requests) requests, about \(perMinute) "
                    + "a minute at the poll interval of \(Self.seconds(configured)); polling every "
                    + "\(Self.seconds(needed)) instead (\(Self.budgetDescription(status)))"
                logger.warning(
                    "\(message)",
                    metadata: ["requests_per_poll": "\(requests)", "interval_seconds": "\(needed)"])
                stretched = true
            }
        } else if stretched, needed > configured * 0.9 {
            // Near the boundary: stay stretched rather than log "fits again" and "exceeds" in turn.
            interval = configured
        } else {
            interval = configured
            if stretched {
                logger.info("polls fit the request budget again: polling every \(Self.seconds(configured))")
                stretched = false
            }
        }
    }

    /// `30s`, `1.5s`.
    public static func seconds(_ value: Double) -> String {
        value.rounded() == value || value >= 10 ? "\(Int(value.rounded()))s" : "\((value * 10).rounded() / 10)s"
    }

    /// `budget 600 a minute; learned flow_runs 180 a minute`.
    static func budgetDescription(_ status: RequestPacer.Status) -> String {
        var parts: [String] = []
        if let budget = status.budgetPerMinute { parts.append("budget \(budget) requests a minute") }
        for (route, limit) in status.learnedPerMinute.sorted(by: { $0.key < $1.key }) {
            parts.append("learned limit \(limit) a minute for \(route)")
        }
        return parts.joined(separator: "; ")
    }

    /// Logs each collector's failure once per cause, and its recovery once. When Prefect answered
    /// nothing, it is down or refuses us altogether: one line says so, not one per collector.
    private func logOutcomes(_ outcomes: [CollectorOutcome], prefectAnswered: Bool) {
        let errors = outcomes.compactMap(\.error)
        if !prefectAnswered, let first = errors.first(where: { $0.apiError != nil }) ?? errors.first {
            let message = Self.wholePollMessage(first, client: client)
            if lastPollFailure != first.cause {
                logger.error("poll failed: \(message)", metadata: ["reason": "\(first.reason)"])
                lastPollFailure = first.cause
            } else {
                logger.debug("poll failed again: \(message)", metadata: ["reason": "\(first.reason)"])
            }
            // Each collector's cause counts as logged, so that a later partial failure with the
            // same cause does not log it again; a recovery is logged once below.
            for outcome in outcomes { loggedFailures[outcome.name] = outcome.error?.cause }
            return
        }
        if lastPollFailure != nil {
            logger.info("Prefect polls succeed again", metadata: ["url": "\(client.configuration.redactedBaseURL)"])
            lastPollFailure = nil
            for outcome in outcomes where outcome.success { loggedFailures[outcome.name] = nil }
        }
        logAskedToWait(outcomes)
        for outcome in outcomes {
            let previous = loggedFailures[outcome.name]
            guard let error = outcome.error else {
                if previous != nil {
                    logger.info("collector \(outcome.name) succeeds again", metadata: ["collector": "\(outcome.name)"])
                    loggedFailures[outcome.name] = nil
                }
                continue
            }
            let metadata: Logger.Metadata = ["collector": "\(outcome.name)", "reason": "\(error.reason)"]
            if previous != error.cause {
                logger.error("collector \(outcome.name) failed: \(error.message)", metadata: metadata)
                loggedFailures[outcome.name] = error.cause
            } else {
                logger.debug("collector \(outcome.name) failed again: \(error.message)", metadata: metadata)
            }
        }
    }

    /// One answer that asks to wait (429 or 503 with `Retry-After`) fails every collector that
    /// still had to ask Prefect in that poll: one line names the answer and the collectors, and
    /// each collector's cause counts as logged.
    private func logAskedToWait(_ outcomes: [CollectorOutcome]) {
        let waiting = outcomes.filter { outcome in
            guard let error = outcome.error, let apiError = error.apiError else { return false }
            return apiError.kind == .rateLimited && apiError.retryAfter != nil && loggedFailures[outcome.name] != error.cause
        }
        guard waiting.count > 1 else { return }
        let errors = waiting.compactMap { $0.error?.apiError }
        guard let answer = errors.first(where: { $0.status != nil }) ?? errors.first else { return }
        let names = waiting.map(\.name).joined(separator: ", ")
        logger.error(
            "\(answer.message); these collectors failed this poll: \(names)",
            metadata: ["reason": "rate_limited", "collectors": "\(names)"])
        for outcome in waiting { loggedFailures[outcome.name] = outcome.error?.cause }
    }

    /// Publishes a snapshot of what is known now without polling: before the first poll, the
    /// exporter's own metrics with `prefect_up 0`.
    public func publishCurrent() {
        publishSnapshot(now: clock())
    }

    /// The message for a poll in which every collector failed. A 403 on every endpoint is not a
    /// missing permission on one of them: the server or a proxy refuses the credentials.
    static func wholePollMessage(_ error: CollectorError, client: PrefectClient) -> String {
        guard let apiError = error.apiError, apiError.kind == .forbidden else { return error.message }
        return "Prefect rejected the credentials (HTTP 403 on every endpoint, first \(apiError.endpoint) at "
            + "\(client.configuration.redactedBaseURL)): \(client.configuration.credentialHint)"
    }

    private func publishSnapshot(now: Double) {
        let health = ExporterFamilies.health(
            up: prefectUp, lastSuccess: lastSuccessTime, pollDuration: lastPollDuration, pollCounts: pollCounts,
            requests: statistics.totals, outcomes: lastOutcomes, collectorLastSuccess: collectorLastSuccess,
            interval: interval, pacing: client.pacer.status)
        let maxAge = configuration.maxStaleness.seconds
        let prefect = PrefectCollectors.inServedOrder(
            collectors.flatMap { collector -> [MetricFamily] in
                guard let entry = collectorFamilies[collector.name], now - entry.time <= maxAge else { return [] }
                return entry.families
            })
        publish(PollerSnapshot(health: health, prefect: prefect))
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
