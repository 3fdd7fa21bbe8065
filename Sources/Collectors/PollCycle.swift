public import Aggregation
import Dispatch
public import PrefectAPI

/// One poll: every collector, each timed and failing alone. The inventory stage runs first, all
/// its collectors at once; the runs stage then sees this poll's inventory (or the last good one
/// where an inventory collector failed), all its collectors at once too.
public struct PollCycle: Sendable {
    public let client: PrefectClient
    /// When the poll started, seconds since the epoch.
    public let now: Double
    public let selection: WorkPoolSelection
    public let collectors: [AnyCollector]

    public init(client: PrefectClient, now: Double, selection: WorkPoolSelection, collectors: [AnyCollector]) {
        self.client = client
        self.now = now
        self.selection = selection
        self.collectors = collectors
    }

    /// What a poll leaves.
    public struct Result: Sendable {
        /// Each collector's last good output: this poll's where it succeeded.
        public var outputs: CollectorOutputs
        /// How each collector fared, in the order of ``PollCycle/collectors``.
        public var outcomes: [CollectorOutcome]
    }

    /// Runs every collector once.
    /// - Parameter previous: each collector's last good output before this poll.
    public func run(previous: CollectorOutputs) async -> Result {
        var outputs = previous
        var outcomes: [String: CollectorOutcome] = [:]

        let inventory = collectors.filter { $0.stage == .inventory }
        let context = CollectionContext(client: client, now: now, selection: selection, inputs: outputs)
        for (collector, result, outcome) in await runStage(inventory, context) {
            if case .success(let value) = result { outputs.set(value, for: collector.name) }
            outcomes[collector.name] = outcome
        }

        let later = collectors.filter { $0.stage != .inventory }
        if let stop = Self.reasonToStop(after: inventory.compactMap { outcomes[$0.name] }) {
            // Prefect asked us to wait, or cannot be reached at all: the runs stage sends nothing.
            for collector in later {
                outcomes[collector.name] = CollectorOutcome(name: collector.name, duration: 0, error: stop, askedPrefect: false)
            }
        } else {
            let scoped = CollectionContext(
                client: client, now: now, selection: selection, inputs: outputs, runScopes: runScopes(outputs),
                board: PollBoard(expected: Set(later.map(\.name))))
            for (collector, result, outcome) in await runStage(later, scoped) {
                if case .success(let value) = result { outputs.set(value, for: collector.name) }
                outcomes[collector.name] = outcome
            }
        }
        return Result(outputs: outputs, outcomes: collectors.compactMap { outcomes[$0.name] })
    }

    /// The data every collector's series are built from: each last good output, restricted to the
    /// selected work pools.
    public static func pollData(_ outputs: CollectorOutputs, collectors: [AnyCollector], selection: WorkPoolSelection) -> PollData {
        var data = PollData()
        for collector in collectors {
            if let output = outputs.value(for: collector.name) { collector.contribute(output, &data, selection) }
        }
        return data
    }

    /// Runs collectors concurrently; each posts its output to the context's board as it finishes,
    /// for collectors of the same stage that wait for it.
    private func runStage(
        _ stage: [AnyCollector], _ context: CollectionContext
    ) async -> [(AnyCollector, Swift.Result<any Sendable, CollectorError>, CollectorOutcome)] {
        await withTaskGroup(of: (Int, Swift.Result<any Sendable, CollectorError>, CollectorOutcome).self) { group in
            for (index, collector) in stage.enumerated() {
                group.addTask {
                    let start = DispatchTime.now().uptimeNanoseconds
                    let result = await collector.collect(context)
                    var output: (any Sendable)?
                    if case .success(let value) = result { output = value }
                    await context.board?.post(output, for: collector.name)
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    var error: CollectorError?
                    if case .failure(let failure) = result { error = failure }
                    // A collector that lacked an input sent nothing.
                    let asked = collector.asksPrefect(context) && error?.isMissingInput != true
                    return (index, result, CollectorOutcome(name: collector.name, duration: seconds, error: error, askedPrefect: asked))
                }
            }
            var finished: [(Int, Swift.Result<any Sendable, CollectorError>, CollectorOutcome)] = []
            for await entry in group { finished.append(entry) }
            return finished.sorted { $0.0 < $1.0 }.map { (stage[$0.0], $0.1, $0.2) }
        }
    }

    /// Without a selection, one scope covers every run. With one, runs are asked for by pool
    /// name, plus the runs with no pool when the selection includes the empty name; nil when the
    /// pools are needed but unknown.
    private func runScopes(_ outputs: CollectorOutputs) -> [FlowRunQueries.Scope]? {
        guard selection.isFiltering else { return [.all] }
        guard let pools = outputs.last(WorkPoolCollector.self)?.filter({ selection.includes($0.name) }).map(\.name) else { return nil }
        var scopes: [FlowRunQueries.Scope] = []
        if !pools.isEmpty { scopes.append(.pools(pools)) }
        if selection.includes("") { scopes.append(.noPool) }
        return scopes
    }

    /// Why the runs stage should not send a request: Prefect answered with `Retry-After`, or every
    /// inventory collector failed (Prefect is unreachable, refuses the credentials, or is broken
    /// as a whole: more requests would only add to its load).
    private static func reasonToStop(after outcomes: [CollectorOutcome]) -> CollectorError? {
        let errors = outcomes.compactMap { $0.error?.apiError }
        if let limited = errors.first(where: { $0.retryAfter != nil }) { return .api(limited) }
        return errors.count == outcomes.count ? errors.first.map(CollectorError.api) : nil
    }
}
