public import PrefectAPI

/// What every collector of one poll sees: the client, the poll's time and work-pool selection,
/// and what the other collectors read.
public struct CollectionContext: Sendable {
    public let client: PrefectClient
    /// When the poll started, seconds since the epoch; "now" for every query of the poll.
    public let now: Double
    /// The work pools this exporter reports.
    public let selection: WorkPoolSelection
    /// The last good output of every collector: this poll's, for the collectors of an earlier
    /// stage that succeeded.
    public let inputs: CollectorOutputs
    /// The flow-run scopes to query: everything, or the selected pools (and runs with no pool);
    /// nil when a selection is set and the pools have never been read.
    let runScopes: [FlowRunQueries.Scope]?
    let board: PollBoard?

    public init(
        client: PrefectClient, now: Double, selection: WorkPoolSelection = .all, inputs: CollectorOutputs = CollectorOutputs(),
        runScopes: [FlowRunQueries.Scope]? = [.all]
    ) {
        self.init(client: client, now: now, selection: selection, inputs: inputs, runScopes: runScopes, board: nil)
    }

    init(
        client: PrefectClient, now: Double, selection: WorkPoolSelection, inputs: CollectorOutputs,
        runScopes: [FlowRunQueries.Scope]?, board: PollBoard?
    ) {
        self.client = client
        self.now = now
        self.selection = selection
        self.inputs = inputs
        self.runScopes = runScopes
        self.board = board
    }

    /// The flow-run scopes of this poll.
    /// - Throws: ``CollectorError/missingInput(_:)`` when a work-pool selection is set and the
    ///   pools have never been read.
    func requireRunScopes() throws(CollectorError) -> [FlowRunQueries.Scope] {
        guard let runScopes else {
            throw .missingInput("the work-pool list (for --prefect.work-pool-include/exclude)")
        }
        return runScopes
    }

    /// The last good output of an earlier-stage collector, or the error that says it is missing.
    func require<C: Collector>(_ collector: C.Type, as description: String) throws(CollectorError) -> C.Output {
        guard let output = inputs.last(collector) else { throw .missingInput(description) }
        return output
    }

    /// What collector `C`, of the same stage, returned in this poll, once it has finished: nil when
    /// it failed or is not part of this poll. The dependency must not be circular.
    func outputOfThisPoll<C: Collector>(_ collector: C.Type) async -> C.Output? {
        guard let board else { return nil }
        return await board.result(of: C.name) as? C.Output
    }

    /// Flow runs matching `filter` in every scope of this poll.
    func flowRuns(matching filter: JSONValue, sort: String) async throws(CollectorError) -> [FlowRun] {
        let client = client
        let scopes = try requireRunScopes()
        do throws(PrefectAPIError) {
            return try await concurrentMap(scopes) { scope throws(PrefectAPIError) in
                try await client.flowRuns(matching: FlowRunQueries.restrict(filter, to: scope), sort: sort)
            }.flatMap { $0 }
        } catch {
            throw .api(error)
        }
    }
}

/// The results of one stage's collectors as they finish, for collectors of the same stage that
/// need them (the due runs need the runs that finished in the same poll).
actor PollBoard {
    private var results: [String: (any Sendable)?] = [:]
    private var waiting: [String: [CheckedContinuation<(any Sendable)?, Never>]] = [:]
    private let expected: Set<String>

    /// - Parameter expected: the names of the collectors that will post a result.
    init(expected: Set<String>) {
        self.expected = expected
    }

    /// Records a collector's output (nil when it failed) and wakes whoever waits for it.
    func post(_ output: (any Sendable)?, for name: String) {
        results[name] = .some(output)
        for continuation in waiting.removeValue(forKey: name) ?? [] { continuation.resume(returning: output) }
    }

    /// The output of `name` once posted; nil at once when no such collector runs in this stage.
    func result(of name: String) async -> (any Sendable)? {
        if let posted = results[name] { return posted }
        guard expected.contains(name) else { return nil }
        return await withCheckedContinuation { waiting[name, default: []].append($0) }
    }
}
