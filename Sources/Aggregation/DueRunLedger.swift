public import PrefectAPI

/// The SCHEDULED runs that are due (their next scheduled start has passed), kept between polls so
/// that a pile of thousands of overdue runs is listed once, not on every poll.
///
/// The ledger is pure bookkeeping; `DueRunSync` in the Poller asks Prefect. Each poll it lists
/// the runs that became due recently (``replaceWindow(from:through:with:)``), forgets runs that
/// show up in the in-flight or finished queries (``apply(departures:now:)``), and compares its
/// counts per state-name group with Prefect's (``count(in:queue:)``); only a group that disagrees
/// is listed again, one work queue at a time (``replace(_:queue:with:)``).
public struct DueRunLedger: Sendable {
    /// The state names the checks count separately. Prefect's late-runs service renames due runs
    /// from Scheduled to Late; everything else (AwaitingRetry, AwaitingConcurrencySlot, custom
    /// names) is rare and counted together.
    public enum NameGroup: String, CaseIterable, Hashable, Sendable, Comparable {
        case scheduled
        case late
        case other

        /// The state names of this group, for `state.name.any_`; nil for ``other``.
        public var names: [String]? {
            switch self {
            case .scheduled: return ["Scheduled"]
            case .late: return ["Late"]
            case .other: return nil
            }
        }

        /// The names ``other`` excludes, for `state.name.not_any_`.
        public static let namedGroupNames = ["Scheduled", "Late"]

        /// The group of a run's state name.
        public init(stateName: String?) {
            switch stateName {
            case "Scheduled": self = .scheduled
            case "Late": self = .late
            default: self = .other
            }
        }

        public static func < (lhs: NameGroup, rhs: NameGroup) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Where a first listing of the due set stands, when it takes more than one poll.
    public struct Listing: Sendable, Equatable {
        /// Which of the poll's flow-run scopes is being listed.
        public var scope: Int
        /// The next page starts at this next scheduled start (nil: the beginning)…
        public var cursor: Double?
        /// …after skipping this many runs that share it.
        public var offset: Int
        /// The time of the poll that began the listing.
        public var startedAt: Double

        public init(scope: Int = 0, cursor: Double? = nil, offset: Int = 0, startedAt: Double) {
            self.scope = scope
            self.cursor = cursor
            self.offset = offset
            self.startedAt = startedAt
        }
    }

    /// The due runs by id.
    public private(set) var runs: [String: FlowRun] = [:]
    /// A first listing in progress; nil before it starts and once it is complete.
    public private(set) var listing: Listing?
    /// The poll time of the last sync; nil until the whole due set has been listed once.
    public private(set) var syncedAt: Double?
    /// Groups whose count disagreed with Prefect's at the last check. A disagreement can be a race
    /// (a run started between two requests of the poll), which the next poll's queries resolve;
    /// a group that still disagrees at the next check is listed again.
    public var disagreeing: Set<NameGroup> = []

    public init() {}

    /// Whether a listed run belongs in the ledger at `now`.
    static func isDue(_ run: FlowRun, now: Double) -> Bool {
        guard run.stateType == .scheduled, let start = run.nextScheduledStartTime else { return false }
        return start <= now
    }

    /// Replaces everything with a complete listing of the due runs at `now`.
    public mutating func replaceAll(with listed: [FlowRun], now: Double) {
        runs = [:]
        listing = nil
        add(listed, now: now)
        syncedAt = now
    }

    /// Adds pages of a first listing that continues at `next`, or (nil) is complete. A listing
    /// spread over several polls counts as synced at the poll it began, so that the next recent
    /// window covers every run that became due meanwhile.
    public mutating func addListed(_ listed: [FlowRun], now: Double, next: Listing?) {
        let startedAt = listing?.startedAt ?? next?.startedAt ?? now
        add(listed, now: now)
        listing = next
        if next == nil { syncedAt = startedAt }
    }

    private mutating func add(_ listed: [FlowRun], now: Double) {
        for run in listed where Self.isDue(run, now: now) { runs[run.id] = run }
    }

    /// Replaces the runs whose next scheduled start lies in `from...now` with a listing of that window.
    public mutating func replaceWindow(from: Double, through now: Double, with listed: [FlowRun]) {
        runs = runs.filter { _, run in
            guard let start = run.nextScheduledStartTime else { return false }
            return start < from || start > now
        }
        for run in listed where Self.isDue(run, now: now) { runs[run.id] = run }
        syncedAt = now
    }

    /// Takes in runs seen by other queries of the same poll (in flight, finished): a known run that
    /// is no longer due is dropped; one that is due again is updated. Unknown runs are ignored:
    /// the window listing and the checks find new due runs.
    public mutating func apply(departures seen: [FlowRun], now: Double) {
        for run in seen where runs[run.id] != nil {
            runs[run.id] = Self.isDue(run, now: now) ? run : nil
        }
    }

    /// How many known due runs are in a name group, in one queue or (nil) in all.
    public func count(in group: NameGroup, queue: QueueKey? = nil) -> Int {
        runs.values.reduce(0) { total, run in
            NameGroup(stateName: run.stateName) == group && (queue == nil || run.queueKey == queue) ? total + 1 : total
        }
    }

    /// Known due runs per queue, in one name group.
    public func countsByQueue(in group: NameGroup) -> [QueueKey: Int] {
        runs.values.reduce(into: [:]) { counts, run in
            if NameGroup(stateName: run.stateName) == group { counts[run.queueKey, default: 0] += 1 }
        }
    }

    /// Replaces the known runs of one name group (in one queue, or with nil in all) with a listing of
    /// that group. A listed run known under another group or queue moves.
    public mutating func replace(_ group: NameGroup, queue: QueueKey?, with listed: [FlowRun], now: Double) {
        runs = runs.filter { _, run in
            NameGroup(stateName: run.stateName) != group || (queue != nil && run.queueKey != queue)
        }
        for run in listed where Self.isDue(run, now: now) { runs[run.id] = run }
    }
}
