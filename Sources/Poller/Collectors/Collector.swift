public import PrefectAPI

/// What every collector of one poll sees.
public struct CollectionContext: Sendable {
    public let client: PrefectClient
    /// When the poll started, seconds since the epoch; "now" for every query of the poll.
    public let now: Double
    /// The lower bound of the finished and started runs windows.
    public let historyQueryStart: Double
    /// The flow-run scopes to query: everything, or the selected pools (and runs with no pool).
    public let runScopes: [FlowRunQueries.Scope]

    public init(client: PrefectClient, now: Double, historyQueryStart: Double, runScopes: [FlowRunQueries.Scope] = [.all]) {
        self.client = client
        self.now = now
        self.historyQueryStart = historyQueryStart
        self.runScopes = runScopes
    }

    /// The context for the second phase of a poll, once the selected pools are known.
    func scoped(to scopes: [FlowRunQueries.Scope]) -> CollectionContext {
        CollectionContext(client: client, now: now, historyQueryStart: historyQueryStart, runScopes: scopes)
    }

    /// Flow runs matching `filter` in every scope of this poll.
    func flowRuns(matching filter: JSONValue, sort: String) async throws(PrefectAPIError) -> [FlowRun] {
        let client = client
        return try await concurrentMap(runScopes) { scope throws(PrefectAPIError) in
            try await client.flowRuns(matching: FlowRunQueries.restrict(filter, to: scope), sort: sort)
        }.flatMap { $0 }
    }
}

/// One kind of Prefect resource that a poll reads, in the manner of node_exporter's collectors:
/// each is timed and its success is reported in `prefect_exporter_collector_*`.
public protocol Collector: Sendable {
    associatedtype Output: Sendable
    /// The `collector` label value.
    static var name: String { get }
    /// Whether `collect` sends a request at all (the workers of no pool need none).
    var asksPrefect: Bool { get }
    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> Output
}

extension Collector {
    /// The `collector` label value.
    public var name: String { Self.name }
    public var asksPrefect: Bool { true }
}

/// How one collector fared in one poll.
public struct CollectorOutcome: Sendable {
    public var name: String
    public var duration: Double
    /// Why it failed; nil when it succeeded.
    public var error: CollectorError?
    /// Whether it had anything to ask Prefect: a success without a request says nothing about Prefect.
    public var askedPrefect: Bool

    public var success: Bool { error == nil }

    public init(name: String, duration: Double, error: CollectorError? = nil, askedPrefect: Bool = true) {
        self.name = name
        self.duration = duration
        self.error = error
        self.askedPrefect = askedPrefect
    }
}
