public import Aggregation
public import Exposition

/// The exporter's collectors: which run, in what order, and the order their families are served in.
public enum PrefectCollectors {
    /// What the collectors of one poller need to be made.
    public struct Settings: Sendable {
        /// When the exporter started, seconds since the epoch: where the finished-run counters start.
        public var startTime: Double
        /// The poll interval, in seconds: it sets how far each query window reaches back.
        public var interval: Double
        public var aggregation: AggregationSettings

        public init(startTime: Double, interval: Double, aggregation: AggregationSettings) {
            self.startTime = startTime
            self.interval = interval
            self.aggregation = aggregation
        }
    }

    /// One poller's collectors, in the order their outcomes are reported.
    public static func make(_ settings: Settings) -> [AnyCollector] {
        [
            AnyCollector(ServerInfoCollector()),
            AnyCollector(WorkPoolCollector()),
            AnyCollector(WorkQueueCollector()),
            AnyCollector(DeploymentCollector()),
            // The due-run window reaches back past Prefect's late-runs service (which renames due
            // runs Late about 15 s after they are due) and past one poll's worth of clock skew.
            AnyCollector(ActiveFlowRunCollector(dueRunOverlap: 120 + settings.interval)),
            AnyCollector(FinishedFlowRunCollector(
                startTime: settings.startTime, overlap: max(60, 2 * settings.interval), settings: settings.aggregation)),
            AnyCollector(WorkerCollector()),
            AnyCollector(UpcomingFlowRunCollector()),
            AnyCollector(ConcurrencyLimitCollector()),
            // Next runs are looked up again at least every 10 polls (or 5 minutes), within the budget.
            AnyCollector(DeploymentScheduleCollector(refreshAfter: max(300, 10 * settings.interval))),
        ]
    }

    /// Every Prefect-derived family, in the order served: by collector, inventory first, with
    /// `prefect_flow_runs_upcoming` right after `prefect_flow_runs`, where it has always been.
    public static let families: [FamilyDescriptor] =
        ServerInfoCollector.families + WorkPoolCollector.families + WorkerCollector.families + WorkQueueCollector.families
        + ConcurrencyLimitCollector.families + DeploymentCollector.families + DeploymentScheduleCollector.families
        + [ActiveFlowRunCollector.runs] + UpcomingFlowRunCollector.families
        + ActiveFlowRunCollector.families.dropFirst() + FinishedFlowRunCollector.families

    /// The name of the collector that feeds each Prefect-derived family (from ``make(_:)``, so
    /// that the collectors are listed once).
    public static let collectorOfFamily: [String: String] =
        make(Settings(startTime: 0, interval: 30, aggregation: AggregationSettings())).reduce(into: [:]) { result, collector in
            for family in collector.families { result[family.name] = collector.name }
        }

    /// Families sorted into the order of ``families`` (unknown names last, in their given order).
    public static func inServedOrder(_ families: [MetricFamily]) -> [MetricFamily] {
        families.enumerated()
            .sorted { (rank[$0.element.name] ?? Int.max, $0.offset) < (rank[$1.element.name] ?? Int.max, $1.offset) }
            .map(\.element)
    }

    private static let rank: [String: Int] = Dictionary(uniqueKeysWithValues: families.enumerated().map { ($1.name, $0) })

    /// Every Prefect-derived family built from one poll's data, as if every collector had just
    /// succeeded: for tests and benchmarks. `history` stands for the finished-runs collector's.
    public static func build(
        from data: PollData, history: RunHistory, settings: AggregationSettings, now: Double
    ) -> [MetricFamily] {
        var data = data
        data.history = history
        let input = SampleInput(data: data, settings: settings, now: now)
        let collectors = make(Settings(startTime: now, interval: 30, aggregation: settings))
        return inServedOrder(collectors.flatMap { $0.samples(input) })
    }
}
