import Foundation
import HTTPClient
import Logging
import Poller
import PrefectAPI

/// The pollers of every Prefect target, each with its own transport, client and request statistics,
/// and the merger that turns their snapshots into the exporter's page.
struct ExporterRuntime: Sendable {
    /// One target's poller.
    struct Target: Sendable {
        var name: String?
        var configuration: PrefectTarget
        var poller: Poller
    }

    let targets: [Target]
    let merger: ExpositionMerger

    /// - Parameters:
    ///   - includesProcessMetrics: false for textfile-collector output (`once`), whose reader has its own `process_*`.
    ///   - rendersOpenMetrics: whether the merger renders OpenMetrics too (only the server needs it).
    ///   - publish: receives every merged page.
    init(
        configuration: ExporterConfiguration, logger: Logger, includesProcessMetrics: Bool, rendersOpenMetrics: Bool,
        publish: @escaping @Sendable (MergedExposition) -> Void
    ) {
        let names = configuration.labelsTargets ? configuration.targets.map { $0.name ?? "" } : nil
        let merger = ExpositionMerger(
            settings: ExpositionMerger.Settings(
                targetNames: names, maxSeriesPerFamily: configuration.maxSeriesPerFamily,
                includesProcessMetrics: includesProcessMetrics, rendersOpenMetrics: rendersOpenMetrics,
                version: ExporterVersion.version, revision: ExporterVersion.revision),
            startTime: Date().timeIntervalSince1970, logger: logger, publish: publish)
        var targets: [Target] = []
        for (index, target) in configuration.targets.enumerated() {
            var targetLogger = logger
            if let name = target.name { targetLogger[metadataKey: "prefect"] = "\(name)" }
            let statistics = RequestStatistics()
            let transport = CurlHTTPClient(configuration: target.http)
            let client = PrefectClient(configuration: target.prefect, transport: transport, observer: statistics.record)
            var pollerConfiguration = target.poller
            pollerConfiguration.rendersExposition = false
            let poller = Poller(
                client: client, configuration: pollerConfiguration, statistics: statistics, logger: targetLogger
            ) { snapshot in
                merger.update(target: index, with: snapshot)
                // What the previous poll and page left behind goes back to the system (see FreedHeapMemory).
                FreedHeapMemory.returnToSystem()
            }
            targets.append(Target(name: target.name, configuration: target, poller: poller))
        }
        self.targets = targets
        self.merger = merger
    }

    /// Polls every target once, at the same time; returns each target's report, in target order.
    func pollAllOnce() async -> [PollReport] {
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
