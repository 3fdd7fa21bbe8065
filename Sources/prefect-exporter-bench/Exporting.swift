import ExporterCLI
import Exposition
import Foundation
import HTTPClient
import Logging
import Poller
import PrefectAPI
import Rendering
import WebServer

/// The exporter's own wiring and publishing path, as the bench drives them: `ExporterRuntime`
/// (the pollers and the merger, exactly as the exporter builds them), the page published into a
/// `MetricsPageStore` as `ExporterMain.run` does, and the exporter's routes over that store.
enum Exporting {
    /// The runtime of one unlabelled target at `url`, with the exporter's defaults.
    static func runtime(
        url: String, timeout: Double, maxConcurrentRequests: Int, interval: Duration, logger: Logger,
        publish: @escaping @Sendable (MergedExposition) -> Void
    ) -> ExporterRuntime {
        let target = PrefectTarget(
            name: nil, prefect: PrefectClientConfiguration(baseURL: url, maxConcurrentRequests: maxConcurrentRequests),
            http: HTTPClientConfiguration(requestTimeout: .milliseconds(Int64(timeout * 1000)), userAgent: "prefect-exporter-bench"),
            poller: PollerConfiguration(interval: interval))
        return ExporterRuntime(
            targets: [target], labelsTargets: false, maxSeriesPerFamily: 100_000, includesProcessMetrics: true,
            rendersOpenMetrics: true, version: "bench", revision: "bench", logger: logger, publish: publish)
    }

    /// The merger with the exporter's defaults for one unlabelled target.
    static func merger(logger: Logger, publish: @escaping @Sendable (MergedExposition) -> Void) -> ExpositionMerger {
        ExpositionMerger(
            settings: ExpositionMerger.Settings(
                targetNames: nil, maxSeriesPerFamily: 100_000, includesProcessMetrics: true, rendersOpenMetrics: true,
                version: "bench", revision: "bench"),
            startTime: Date().timeIntervalSince1970, logger: logger, publish: publish)
    }

    /// What ExporterMain's publish closure does with each page.
    static func store(_ page: MergedExposition, in store: MetricsPageStore) {
        ExporterMain.publish(page, to: store)
    }

    /// The exporter's routes over a store.
    static func routes(_ store: MetricsPageStore) throws -> ExporterRoutes {
        try ExporterRoutes(
            telemetryPath: "/metrics", version: "bench", prefectURL: "http://127.0.0.1:4200/api", isReady: { true },
            metricsPage: { store.current }, openMetricsPage: { store.currentOpenMetrics })
    }
}
