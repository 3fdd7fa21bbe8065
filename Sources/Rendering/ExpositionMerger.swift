import Collectors
public import Exposition
import FoundationEssentials
import HTTPClient
public import Logging
public import Poller
import Locking

/// The whole `/metrics` page of the exporter: the text format, rendered and compressed once per
/// update, and OpenMetrics, rendered and compressed the first time a scrape asks for it.
public struct MergedExposition: Sendable {
    /// Every family in the order served. Counters and cumulative histograms carry ``Metric/created``.
    public var families: [MetricFamily]
    /// The Prometheus text format 0.0.4.
    public var text: [UInt8]
    /// ``text`` gzip-compressed; nil if compression failed.
    public var textGzip: [UInt8]?
    /// OpenMetrics 1.0.0, rendered on first use; nil when ``ExpositionMerger/Settings/rendersOpenMetrics`` is off.
    public var openMetrics: RenderedOnce<EncodedPage>?
}

/// Merges the snapshots of one or more pollers (one per Prefect target) into the exporter's page.
///
/// On every ``update(target:with:)`` it:
/// 1. caps each Prefect-derived family of that target at ``Settings/maxSeriesPerFamily`` series,
///    counting what it leaves out in `prefect_exporter_series_dropped_total{family}` and logging a
///    warning once per family;
/// 2. with several targets, adds `prefect="<name>"` to every series of the target's Prefect-derived
///    and health families (with a single target, the output is exactly what one poller serves);
/// 3. merges families of the same name across targets under one HELP and TYPE;
/// 4. appends `prefect_exporter_build_info` and the `process_*` metrics once;
/// 5. sets ``Metric/created`` on counters and cumulative histograms: the exporter's start for its
///    own counters, and the time a Prefect series first appeared for Prefect ones;
/// 6. renders the text format, plain and gzip-compressed, and publishes it with OpenMetrics
///    ready to be rendered on a scrape's first request for it (once per update at most).
///
/// The lock covers only the bookkeeping of steps 1 to 5; rendering, compressing, logging and
/// publishing happen outside it. Pages are published in update order: a page rendered from an
/// older update is dropped if a newer one was published first. Scrapes never trigger any of
/// this, except the one OpenMetrics rendering of an update.
public final class ExpositionMerger: Sendable {
    /// How the merger shapes the page.
    public struct Settings: Sendable {
        /// The `prefect` label value of each target, in target order; nil for a single unlabelled target.
        public var targetNames: [String]?
        /// Series kept per Prefect-derived family and target; 0 means unlimited. A histogram series counts once.
        public var maxSeriesPerFamily: Int
        /// Whether `process_*` metrics are included (not for textfile-collector output, which node_exporter
        /// would reject as duplicates of its own).
        public var includesProcessMetrics: Bool
        /// Whether the OpenMetrics page is rendered.
        public var rendersOpenMetrics: Bool
        /// The exporter's version, for `prefect_exporter_build_info`.
        public var version: String
        /// The exporter's revision, for `prefect_exporter_build_info`.
        public var revision: String

        /// Creates settings; by default one unlabelled target, 100000 series per family, process metrics and OpenMetrics on.
        public init(
            targetNames: [String]? = nil, maxSeriesPerFamily: Int = 100_000, includesProcessMetrics: Bool = true,
            rendersOpenMetrics: Bool = true, version: String = "dev", revision: String = "unknown"
        ) {
            self.targetNames = targetNames
            self.maxSeriesPerFamily = maxSeriesPerFamily
            self.includesProcessMetrics = includesProcessMetrics
            self.rendersOpenMetrics = rendersOpenMetrics
            self.version = version
            self.revision = revision
        }

        /// How many targets there are.
        public var targetCount: Int { targetNames?.count ?? 1 }
    }

    /// The series of one family, for creation times.
    private struct SeriesKey: Hashable {
        var family: String
        var labels: [Label]
    }

    private struct State {
        var snapshots: [PollerSnapshot?]
        /// Per target: the capped Prefect-derived families of its last snapshot.
        var prefect: [[MetricFamily]]
        /// Per target: when each Prefect counter or cumulative histogram series first appeared.
        var created: [[SeriesKey: Double]]
        /// Per target: series dropped by the cap, by family.
        var dropped: [[String: Double]]
        /// Per target: families whose capping was already logged.
        var warned: [Set<String>]
        /// How many updates there have been: the generation of the latest page.
        var generation = 0
    }

    /// The settings in force.
    public let settings: Settings
    private let startTime: Double
    private let logger: Logger
    private let clock: @Sendable () -> Double
    private let publish: @Sendable (MergedExposition) -> Void
    private let state: LockedValue<State>
    /// The generation of the last published page.
    private let published = LockedValue(0)
    /// Whether a failed compression was logged already (it is logged once).
    private let gzipFailureLogged = LockedValue(false)

    /// - Parameters:
    ///   - startTime: the exporter's start, seconds since the epoch: the `_created` time of its own counters.
    ///   - clock: seconds since the epoch; injectable for tests.
    ///   - publish: receives every merged page; called on the updating poller's executor, one call at a time.
    public init(
        settings: Settings, startTime: Double, logger: Logger, clock: (@Sendable () -> Double)? = nil,
        publish: @escaping @Sendable (MergedExposition) -> Void
    ) {
        self.settings = settings
        self.startTime = startTime
        self.logger = logger
        self.clock = clock ?? { Date().timeIntervalSince1970 }
        self.publish = publish
        let count = max(1, settings.targetCount)
        state = LockedValue(State(
            snapshots: Array(repeating: nil, count: count), prefect: Array(repeating: [], count: count),
            created: Array(repeating: [:], count: count), dropped: Array(repeating: [:], count: count),
            warned: Array(repeating: [], count: count)))
    }

    /// Takes a poller's snapshot for target `index`, then renders and publishes the whole page.
    /// Pass it as the poller's `publish` closure: `{ merger.update(target: index, with: $0) }`.
    public func update(target index: Int, with snapshot: PollerSnapshot) {
        let now = clock()
        var newlyCapped: [(family: String, series: Int)] = []
        let taken: (merged: (health: [MetricFamily], prefect: [MetricFamily]), generation: Int)? = state.withLock { state in
            guard state.snapshots.indices.contains(index) else { return nil }
            state.snapshots[index] = snapshot
            var capped = snapshot.prefect
            let limit = settings.maxSeriesPerFamily
            for position in capped.indices where limit > 0 && capped[position].metrics.count > limit {
                let family = capped[position]
                let excess = family.metrics.count - limit
                capped[position].metrics.removeLast(excess)
                state.dropped[index][family.name, default: 0] += Double(excess)
                if state.warned[index].insert(family.name).inserted { newlyCapped.append((family.name, family.metrics.count)) }
            }
            // Creation times: kept while the series exist; a stale target (no Prefect families) keeps its times.
            if !capped.isEmpty {
                var created: [SeriesKey: Double] = [:]
                for position in capped.indices where Self.isCumulative(capped[position]) {
                    for metricIndex in capped[position].metrics.indices {
                        let key = SeriesKey(family: capped[position].name, labels: capped[position].metrics[metricIndex].labels)
                        let time = state.created[index][key] ?? now
                        created[key] = time
                        capped[position].metrics[metricIndex].created = time
                    }
                }
                state.created[index] = created
            }
            state.prefect[index] = capped
            state.generation += 1
            return (merged(state), state.generation)
        }
        for (family, series) in newlyCapped {
            var metadata: Logger.Metadata = [
                "family": "\(family)", "series": "\(series)", "limit": "\(settings.maxSeriesPerFamily)",
            ]
            if let name = settings.targetNames?[index] { metadata["prefect"] = "\(name)" }
            logger.warning(
                "metric family has more series than --metrics.max-series-per-family; the rest are dropped and counted in prefect_exporter_series_dropped_total",
                metadata: metadata)
        }
        guard let taken else { return }
        let page = render(assembled(taken.merged))
        published.withLock { last in
            guard taken.generation > last else { return }
            last = taken.generation
            publish(page)
        }
    }

    /// The page as it stands, rendered now (for `once` and tests). Does not publish.
    public func current() -> MergedExposition {
        render(assembled(state.withLock { merged($0) }))
    }

    private static func isCumulative(_ family: MetricFamily) -> Bool {
        family.type == .counter || cumulativeFamilies.contains(family.name)
    }

    /// The Prefect-derived families whose series accumulate since they appeared.
    private static let cumulativeFamilies = Set(PrefectCollectors.families.filter(\.accumulates).map(\.name))

    /// The families of every target, merged: cheap (no rendering, no I/O), done under the lock.
    private func merged(_ state: State) -> (health: [MetricFamily], prefect: [MetricFamily]) {
        var health = FamilyList()
        var prefect = FamilyList()
        for index in state.snapshots.indices {
            guard let snapshot = state.snapshots[index] else { continue }
            let label = settings.targetNames.map { Label("prefect", $0[index]) }
            var own = snapshot.health
            if !state.dropped[index].isEmpty {
                own.append(PageFamilies.seriesDropped.family(state.dropped[index].keys.sorted().map {
                    Metric(labels: [Label("family", $0)], value: state.dropped[index][$0] ?? 0)
                }))
            }
            for family in own {
                health.add(family, label: label) { metric in
                    if family.type == .counter { metric.created = startTime }
                }
            }
            for family in state.prefect[index] {
                prefect.add(family, label: label) { _ in }
            }
        }
        return (health.families, prefect.families)
    }

    /// The whole page: health, build info, the `process_*` metrics (read now) and the Prefect families.
    private func assembled(_ merged: (health: [MetricFamily], prefect: [MetricFamily])) -> [MetricFamily] {
        var families = merged.health
        families.append(PageFamilies.buildInfo(version: settings.version, revision: settings.revision))
        if settings.includesProcessMetrics {
            families += ProcessMetrics.families().map { family in
                var family = family
                if family.type == .counter {
                    for index in family.metrics.indices { family.metrics[index].created = startTime }
                }
                return family
            }
        }
        return families + merged.prefect
    }

    /// Renders the text format now, and OpenMetrics on first use; outside the lock.
    private func render(_ families: [MetricFamily]) -> MergedExposition {
        let text = TextFormat.encodeBytes(families)
        var openMetrics: RenderedOnce<EncodedPage>?
        if settings.rendersOpenMetrics {
            openMetrics = RenderedOnce { [self] in
                let bytes = OpenMetricsFormat.encodeBytes(families)
                return EncodedPage(plain: bytes, gzip: compressed(bytes))
            }
        }
        return MergedExposition(families: families, text: text, textGzip: compressed(text), openMetrics: openMetrics)
    }

    /// The bytes gzip-compressed, or nil (served uncompressed) when compression fails, which is
    /// logged once.
    private func compressed(_ bytes: [UInt8]) -> [UInt8]? {
        do {
            return try Gzip.compress(bytes)
        } catch {
            let first = gzipFailureLogged.withLock { logged in
                defer { logged = true }
                return !logged
            }
            if first {
                logger.warning("gzip compression of the metrics page failed; serving it uncompressed", metadata: ["error": "\(error)"])
            }
            return nil
        }
    }
}

/// Families merged by name in order of first appearance: one HELP and TYPE, the series of every target.
private struct FamilyList {
    private(set) var families: [MetricFamily] = []
    private var positions: [String: Int] = [:]

    mutating func add(_ family: MetricFamily, label: Label?, adjust: (inout Metric) -> Void) {
        var metrics = family.metrics
        for index in metrics.indices {
            if let label { metrics[index].labels.insert(label, at: 0) }
            adjust(&metrics[index])
        }
        if let position = positions[family.name] {
            families[position].metrics += metrics
        } else {
            positions[family.name] = families.count
            families.append(MetricFamily(name: family.name, help: family.help, type: family.type, metrics: metrics))
        }
    }
}
