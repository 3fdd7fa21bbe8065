import FoundationEssentials
import HTTPClient
public import Logging
public import Poller
import PrefectAPI
public import Rendering
import Locking

/// The exporter's wiring, written once and used by the server, `once`, `check` and the bench:
/// for every Prefect target a transport, a client, request statistics and a poller; and the merger
/// that turns the pollers' snapshots into the exporter's page.
public struct ExporterRuntime: Sendable {
    /// One target's poller, and the last snapshot it published.
    public struct Target: Sendable {
        public var name: String?
        public var configuration: PrefectTarget
        public var poller: Poller
        let lastSnapshot: LockedValue<PollerSnapshot?>

        /// The last snapshot the poller published: its health and Prefect families.
        public var snapshot: PollerSnapshot? { lastSnapshot.withLock { $0 } }
    }

    public let targets: [Target]
    public let merger: ExpositionMerger

    /// - Parameters:
    ///   - labelsTargets: whether series carry `prefect="<name>"` (several targets, or named ones).
    ///   - includesProcessMetrics: false for textfile-collector output (`once`), whose reader has its own `process_*`.
    ///   - rendersOpenMetrics: whether the page offers OpenMetrics (only the server needs it).
    ///   - publish: receives every merged page.
    public init(
        targets configurations: [PrefectTarget], labelsTargets: Bool, maxSeriesPerFamily: Int, includesProcessMetrics: Bool,
        rendersOpenMetrics: Bool, version: String = ExporterVersion.version, revision: String = ExporterVersion.revision,
        logger: Logger, publish: @escaping @Sendable (MergedExposition) -> Void
    ) {
        let names = labelsTargets ? configurations.map { $0.name ?? "" } : nil
        let merger = ExpositionMerger(
            settings: ExpositionMerger.Settings(
                targetNames: names, maxSeriesPerFamily: maxSeriesPerFamily, includesProcessMetrics: includesProcessMetrics,
                rendersOpenMetrics: rendersOpenMetrics, version: version, revision: revision),
            startTime: Date().timeIntervalSince1970, logger: logger, publish: publish)
        var targets: [Target] = []
        for (index, target) in configurations.enumerated() {
            var targetLogger = logger
            if let name = target.name { targetLogger[metadataKey: "prefect"] = "\(name)" }
            let statistics = RequestStatistics()
            let transport = CurlHTTPClient(configuration: target.http)
            let client = PrefectClient(configuration: target.prefect, transport: transport, observer: statistics.record)
            let lastSnapshot = LockedValue<PollerSnapshot?>(nil)
            let poller = Poller(client: client, configuration: target.poller, statistics: statistics, logger: targetLogger) { snapshot in
                lastSnapshot.withLock { $0 = snapshot }
                merger.update(target: index, with: snapshot)
                // What the previous poll and page left behind goes back to the system (see FreedHeapMemory).
                FreedHeapMemory.returnToSystem()
            }
            targets.append(Target(name: target.name, configuration: target, poller: poller, lastSnapshot: lastSnapshot))
        }
        self.targets = targets
        self.merger = merger
    }

    /// The runtime of a resolved configuration.
    init(
        configuration: ExporterConfiguration, logger: Logger, includesProcessMetrics: Bool, rendersOpenMetrics: Bool,
        publish: @escaping @Sendable (MergedExposition) -> Void
    ) {
        self.init(
            targets: configuration.targets, labelsTargets: configuration.labelsTargets,
            maxSeriesPerFamily: configuration.maxSeriesPerFamily, includesProcessMetrics: includesProcessMetrics,
            rendersOpenMetrics: rendersOpenMetrics, logger: logger, publish: publish)
    }

    /// Polls every target once, at the same time; returns each target's report, in target order.
    public func pollAllOnce() async -> [PollReport] {
        await withTaskGroup(of: (Int, PollReport).self) { group in
            for (index, target) in targets.enumerated() {
                group.addTask { (index, await target.poller.pollOnce()) }
            }
            var reports: [(Int, PollReport)] = []
            for await result in group { reports.append(result) }
            return reports.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// The landing page's description of the Prefect API: the URL, or each target's name and URL.
    var prefectDescription: String {
        if targets.count == 1, targets[0].name == nil { return targets[0].configuration.prefect.redactedBaseURL }
        return targets.map { "\($0.name ?? "") \($0.configuration.prefect.redactedBaseURL)" }.joined(separator: ", ")
    }
}
