import Exposition
import Foundation
import Logging
import Poller
import WebServer

/// The exporter's publishing path (ExporterCLI's ExporterRuntime and ExporterMain.run, which the
/// bench cannot import): pollers publish snapshots without rendering them, one ExpositionMerger
/// renders the page (text and OpenMetrics, each plain and gzip), and a MetricsPageStore copies
/// the bytes once for the web server.
enum Exporting {
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
        store.update(plain: page.text, gzip: page.textGzip, openMetrics: page.openMetrics, openMetricsGzip: page.openMetricsGzip)
    }

    /// The exporter's routes over a store.
    static func routes(_ store: MetricsPageStore) throws -> ExporterRoutes {
        try ExporterRoutes(
            telemetryPath: "/metrics", version: "bench", prefectURL: "http://127.0.0.1:4200/api", isReady: { true },
            metricsPage: { store.current }, openMetricsPage: { store.currentOpenMetrics })
    }
}
