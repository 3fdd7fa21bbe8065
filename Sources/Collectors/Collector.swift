public import Aggregation
public import Exposition
import PrefectAPI

/// When a collector runs in a poll. The inventory (server, pools, queues, deployments) is read
/// first; the runs stage (workers, flow runs) then sees this poll's inventory, or the last good
/// one where an inventory collector failed.
public enum CollectorStage: Sendable, Equatable {
    case inventory
    case runs
}

/// One part of Prefect that a poll reads, in the manner of node_exporter's `collector/*.go`: a
/// collector declares its families (``families``), makes its queries (``collect(_:)``) and builds
/// its families' series (``samples(_:)``), each in its own file. The poll runs collectors
/// generically, times them and isolates their failures: a collector that fails leaves every other
/// family as it is, and its own families keep their values as of its last success (see `Poller`).
///
/// Adding a resource is one file with a collector, its entry in ``PrefectCollectors/make(_:)`` and
/// its test.
public protocol Collector: Sendable {
    /// What ``collect(_:)`` returns; the poll keeps the last good one, which other collectors read
    /// through ``CollectionContext/inputs``.
    associatedtype Output: Sendable
    /// The `collector` label value of `prefect_exporter_collector_*`.
    static var name: String { get }
    /// When it runs in a poll.
    static var stage: CollectorStage { get }
    /// Every family this collector feeds, in the order served.
    static var families: [FamilyDescriptor] { get }

    /// Makes this collector's queries.
    /// - Throws: ``CollectorError/api(_:)`` when a request fails, ``CollectorError/missingInput(_:)``
    ///   (before sending anything) when another collector's output it needs has never been read.
    func collect(_ context: CollectionContext) async throws(CollectorError) -> Output

    /// Whether ``collect(_:)`` sends a request at all with this context (the workers of no pool
    /// need none): a success without a request says nothing about Prefect. True by default.
    func asksPrefect(_ context: CollectionContext) -> Bool

    /// Adds this collector's last good output to the data that every collector's series are built
    /// from, restricted to the selected work pools: for outputs other collectors' series need
    /// (pools, queues, deployments). Does nothing by default; a collector's own series can read
    /// its output from ``SampleInput/outputs``.
    static func contribute(_ output: Output, to data: inout PollData, selection: WorkPoolSelection)

    /// Builds the series of ``families`` from a poll's data.
    static func samples(_ input: SampleInput) -> [MetricFamily]
}

extension Collector {
    public func asksPrefect(_ context: CollectionContext) -> Bool { true }
    public static func contribute(_ output: Output, to data: inout PollData, selection: WorkPoolSelection) {}
}

/// What the series of every collector are built from: the last good output of each collector,
/// and the poll's settings and time.
public struct SampleInput: Sendable {
    /// The outputs that several collectors' series need, restricted to the selected work pools.
    public var data: PollData
    /// Each collector's last good output.
    public var outputs: CollectorOutputs
    /// The flags that shape the series (buckets, late-after, the deployment label).
    public var settings: AggregationSettings
    /// When the poll's queries were made, seconds since the epoch.
    public var now: Double
    /// The label sets zero-filled in the run families.
    public let known: KnownSeries

    /// Creates the input of one poll; ``known`` is derived from `data`.
    public init(data: PollData, outputs: CollectorOutputs = CollectorOutputs(), settings: AggregationSettings, now: Double) {
        self.data = data
        self.outputs = outputs
        self.settings = settings
        self.now = now
        self.known = KnownSeries(data: data, settings: settings)
    }
}

/// The last good output of each collector, by collector name.
public struct CollectorOutputs: Sendable {
    private var values: [String: any Sendable] = [:]

    /// No output yet.
    public init() {}

    /// The last good output of collector `C`, if it ever succeeded.
    public func last<C: Collector>(_ collector: C.Type) -> C.Output? {
        values[C.name] as? C.Output
    }

    mutating func set(_ value: any Sendable, for name: String) {
        values[name] = value
    }

    func value(for name: String) -> (any Sendable)? {
        values[name]
    }
}

/// A collector with its output type erased, so that a poll can run a list of them.
public struct AnyCollector: Sendable {
    /// The collector's ``Collector/name``.
    public let name: String
    /// The collector's ``Collector/stage``.
    public let stage: CollectorStage
    /// The collector's ``Collector/families``.
    public let families: [FamilyDescriptor]
    let collect: @Sendable (CollectionContext) async -> Result<any Sendable, CollectorError>
    let asksPrefect: @Sendable (CollectionContext) -> Bool
    let contribute: @Sendable (any Sendable, inout PollData, WorkPoolSelection) -> Void
    let buildSamples: @Sendable (SampleInput) -> [MetricFamily]

    /// Wraps a collector.
    public init<C: Collector>(_ collector: C) {
        name = C.name
        stage = C.stage
        families = C.families
        collect = { context in
            do throws(CollectorError) {
                return .success(try await collector.collect(context))
            } catch {
                return .failure(error)
            }
        }
        asksPrefect = { collector.asksPrefect($0) }
        contribute = { output, data, selection in
            if let output = output as? C.Output { C.contribute(output, to: &data, selection: selection) }
        }
        buildSamples = { C.samples($0) }
    }

    /// Builds this collector's series.
    public func samples(_ input: SampleInput) -> [MetricFamily] {
        buildSamples(input)
    }
}

/// How one collector fared in one poll.
public struct CollectorOutcome: Sendable {
    /// The collector's name.
    public var name: String
    /// How long it took, in seconds.
    public var duration: Double
    /// Why it failed; nil when it succeeded.
    public var error: CollectorError?
    /// Whether it had anything to ask Prefect: a success without a request says nothing about Prefect.
    public var askedPrefect: Bool

    /// Whether it succeeded.
    public var success: Bool { error == nil }

    /// Creates an outcome.
    public init(name: String, duration: Double, error: CollectorError? = nil, askedPrefect: Bool = true) {
        self.name = name
        self.duration = duration
        self.error = error
        self.askedPrefect = askedPrefect
    }
}
