public import PrefectAPI

/// What every collector of one poll sees.
public struct CollectionContext: Sendable {
    public let client: PrefectClient
    /// When the poll started, seconds since the epoch; "now" for every query of the poll.
    public let now: Double
    /// The lower bound of the finished and started runs windows.
    public let historyQueryStart: Double

    public init(client: PrefectClient, now: Double, historyQueryStart: Double) {
        self.client = client
        self.now = now
        self.historyQueryStart = historyQueryStart
    }
}

/// One kind of Prefect resource that a poll reads, in the manner of node_exporter's collectors:
/// each is timed and its success is reported in `prefect_exporter_collector_*`.
public protocol Collector: Sendable {
    associatedtype Output: Sendable
    /// The `collector` label value.
    var name: String { get }
    func collect(_ context: CollectionContext) async throws(PrefectAPIError) -> Output
}

/// How one collector fared in one poll.
public struct CollectorOutcome: Sendable, Equatable {
    public var name: String
    public var success: Bool
    public var duration: Double
}
