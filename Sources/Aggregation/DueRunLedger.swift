public import PrefectAPI

/// The SCHEDULED runs that are due (their next scheduled start has passed), kept between polls so
/// that a pile of thousands of overdue runs is listed once, not on every poll.
///
/// The ledger is pure bookkeeping; `DueRunSync` in the Poller asks Prefect. Each poll it lists
/// the runs that became due recently (``replaceWindow(from:through:with:)``), forgets runs that
/// show up in the in-flight or finished queries (``apply(departures:now:)``), and compares its
/// counts with Prefect's (``count(in:)`` over a ``Slice``); a slice that disagrees is narrowed
/// down and only the part that disagrees is listed again (``replace(_:with:now:)``).
///
/// A pile can hold 100,000 runs, so each is kept compact: its id as 16 bytes (Prefect's ids are
/// UUIDs), its pool, queue, deployment and state name as indexes into a table of distinct names,
/// and its next scheduled start. About 60 bytes a run, where a decoded ``FlowRun`` takes several hundred.
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

    /// One due run as the aggregation sees it.
    public struct DueRun: Sendable, Equatable {
        public var id: String
        public var queue: QueueKey
        public var deploymentID: String?
        public var stateName: String
        public var nextScheduledStartTime: Double
    }

    /// Runs that share a queue, a deployment and a state name, with their next scheduled starts.
    public struct Group: Sendable {
        public var queue: QueueKey
        public var deploymentID: String?
        public var stateName: String
        public var starts: [Double]
        /// The group's latest run (the earliest start): its id and start.
        public var oldest: (id: String, start: Double)?
    }

    private struct Entry: Sendable {
        var pool: UInt32
        var queue: UInt32
        /// 0: no deployment.
        var deployment: UInt32
        var stateName: UInt32
        var start: Double
    }

    private var entries: [RunID: Entry] = [:]
    private var names = NameTable()

    /// The poll time of the last sync; nil until the whole due set has been listed once.
    public private(set) var syncedAt: Double?
    /// A first listing in progress; nil before it starts and once it is complete.
    public private(set) var listing: Listing?
    /// Where the rotating audit stands: its next cell begins after this next scheduled start; nil
    /// to begin at the oldest run (see ``auditCell(size:through:)``).
    public private(set) var auditedThrough: Double?
    public init() {}

    /// How many due runs the ledger holds.
    public var count: Int { entries.count }

    /// The ids of the due runs, in no order.
    public var ids: [String] { entries.keys.map(\.description) }

    /// One due run, by id.
    public func run(id: String) -> DueRun? {
        let runID = RunID(id)
        return entries[runID].map { dueRun(runID, $0) }
    }

    /// Whether a run is in the ledger.
    public func contains(id: String) -> Bool { entries[RunID(id)] != nil }

    /// The due runs grouped by queue, deployment and state name: what the "runs now" families need,
    /// without a string per run.
    public func groups() -> [Group] {
        struct Key: Hashable {
            var pool, queue, deployment, stateName: UInt32
        }
        var byKey: [Key: Int] = [:]
        var groups: [Group] = []
        var oldest: [(id: RunID, start: Double)] = []
        for (id, entry) in entries {
            let key = Key(pool: entry.pool, queue: entry.queue, deployment: entry.deployment, stateName: entry.stateName)
            if let index = byKey[key] {
                groups[index].starts.append(entry.start)
                if entry.start < oldest[index].start { oldest[index] = (id, entry.start) }
            } else {
                byKey[key] = groups.count
                groups.append(Group(
                    queue: QueueKey(workPool: names[entry.pool], workQueue: names[entry.queue]),
                    deploymentID: entry.deployment == 0 ? nil : names[entry.deployment],
                    stateName: names[entry.stateName], starts: [entry.start]))
                oldest.append((id, entry.start))
            }
        }
        for index in groups.indices { groups[index].oldest = (oldest[index].id.description, oldest[index].start) }
        return groups
    }

    /// Whether a listed run belongs in the ledger at `now`.
    static func isDue(_ run: FlowRun, now: Double) -> Bool {
        guard run.stateType == .scheduled, let start = run.nextScheduledStartTime else { return false }
        return start <= now
    }

    /// Replaces everything with a complete listing of the due runs at `now`.
    public mutating func replaceAll(with listed: [FlowRun], now: Double) {
        entries = [:]
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

    /// Replaces the runs whose next scheduled start lies in `from...now` with a listing of that window.
    public mutating func replaceWindow(from: Double, through now: Double, with listed: [FlowRun]) {
        entries = entries.filter { _, entry in entry.start < from || entry.start > now }
        add(listed, now: now)
        syncedAt = now
    }

    /// Takes in runs seen by other queries of the same poll (in flight, finished): a known run that
    /// is no longer due is dropped; one that is due again is updated. Unknown runs are ignored:
    /// the window listing and the checks find new due runs.
    public mutating func apply(departures seen: [FlowRun], now: Double) {
        for run in seen {
            let id = RunID(run.id)
            guard entries[id] != nil else { continue }
            if Self.isDue(run, now: now) { entries[id] = entry(run) } else { entries[id] = nil }
        }
    }

    /// A part of the due set that the checks count and, when the count disagrees, list again: the
    /// runs of a name group (nil: every group), of some deployments (nil: with or without one),
    /// whose next scheduled start lies in `from...through` (microseconds, as Prefect stores them).
    public struct Slice: Sendable, Equatable {
        public var group: NameGroup?
        public var deploymentIDs: Set<String>?
        public var from: Double?
        public var through: Double

        public init(group: NameGroup? = nil, deploymentIDs: Set<String>? = nil, from: Double? = nil, through: Double) {
            self.group = group
            self.deploymentIDs = deploymentIDs
            self.from = from
            self.through = through
        }
    }

    /// How many known due runs are in a slice.
    public func count(in slice: Slice) -> Int {
        let matches = matcher(slice)
        return entries.values.reduce(0) { matches($1) ? $0 + 1 : $0 }
    }

    /// The next scheduled starts of the known due runs in a slice, sorted.
    public func starts(in slice: Slice) -> [Double] {
        let matches = matcher(slice)
        return entries.values.filter(matches).map(\.start).sorted()
    }

    /// The distinct deployment ids of the known due runs.
    public var deploymentIDs: Set<String> {
        Set(entries.values.compactMap { $0.deployment == 0 ? nil : names[$0.deployment] })
    }

    /// One cell of the rotating audit: a range of next scheduled starts that holds about `size`
    /// known runs, and their ids.
    public struct AuditCell: Sendable, Equatable {
        /// Every due run (any state name, any deployment or none) whose start is in this range.
        public var slice: Slice
        /// The ids of the known runs in ``slice``, sorted.
        public var ids: [String]
        /// Where the audit goes on once this cell is settled; nil when this cell reaches `now` and the
        /// audit begins again at the oldest run.
        public var next: Double?
    }

    /// The audit's next cell at `now`: the known runs that start after ``auditedThrough``, up to
    /// `size` of them. A cell never ends inside a group of runs that share one start time; when such
    /// a group alone holds more than `size` runs, the cell is that group. The last cell reaches
    /// `now`, so that runs added after every known start are covered too.
    public func auditCell(size: Int, through now: Double) -> AuditCell {
        let from = auditedThrough.map { $0 + 0.000_001 }
        let remaining = starts(in: Slice(from: from, through: now)).map(Self.microseconds)
        var next: Double?
        if size > 0, remaining.count > size {
            var last = size - 1
            if remaining[last] == remaining[last + 1] {
                // Not inside a tie: end before it, or, when the cell would start with it, after it.
                let tie = remaining[last]
                last = remaining[..<last].lastIndex { $0 != tie } ?? remaining.lastIndex(of: tie) ?? last
            }
            if last + 1 < remaining.count { next = Double(remaining[last]) / 1_000_000 }
        }
        let slice = Slice(from: from, through: next ?? now)
        return AuditCell(slice: slice, ids: ids(in: slice).sorted(), next: next)
    }

    /// Moves the audit past a cell that agrees with Prefect (or was listed again).
    public mutating func passAudit(of cell: AuditCell) {
        auditedThrough = cell.next
    }

    /// The ids of the known due runs in a slice, in no order.
    public func ids(in slice: Slice) -> [String] {
        let matches = matcher(slice)
        return entries.compactMap { matches($0.value) ? $0.key.description : nil }
    }

    /// Replaces the known runs of a slice with a listing of it.
    public mutating func replace(_ slice: Slice, with listed: [FlowRun], now: Double) {
        let matches = matcher(slice)
        entries = entries.filter { !matches($0.value) }
        add(listed, now: now)
    }

    /// A predicate on entries for a slice, comparing times in whole microseconds as Prefect does.
    private func matcher(_ slice: Slice) -> (Entry) -> Bool {
        let groupNames = names.all.map { NameGroup(stateName: $0) }
        var deploymentIndexes: Set<UInt32>?
        if let ids = slice.deploymentIDs { deploymentIndexes = Set(ids.compactMap { names.existingIndex($0) }) }
        let from = slice.from.map(Self.microseconds) ?? Int64.min
        let through = Self.microseconds(slice.through)
        return { entry in
            if let group = slice.group, groupNames[Int(entry.stateName)] != group { return false }
            if let deploymentIndexes, entry.deployment == 0 || !deploymentIndexes.contains(entry.deployment) { return false }
            let start = Self.microseconds(entry.start)
            return start >= from && start <= through
        }
    }

    /// Seconds as whole microseconds, rounded as `PrefectTimestamp.format` rounds them.
    public static func microseconds(_ seconds: Double) -> Int64 { Int64((seconds * 1_000_000).rounded()) }

    // MARK: Storage

    private mutating func add(_ listed: [FlowRun], now: Double) {
        for run in listed where Self.isDue(run, now: now) { entries[RunID(run.id)] = entry(run) }
    }

    private mutating func entry(_ run: FlowRun) -> Entry {
        let queue = run.queueKey
        return Entry(
            pool: names.index(queue.workPool), queue: names.index(queue.workQueue),
            deployment: run.deploymentID.map { names.index($0) } ?? 0, stateName: names.index(run.stateName ?? ""),
            start: run.nextScheduledStartTime ?? 0)
    }

    private func dueRun(_ id: RunID, _ entry: Entry) -> DueRun {
        DueRun(
            id: id.description, queue: QueueKey(workPool: names[entry.pool], workQueue: names[entry.queue]),
            deploymentID: entry.deployment == 0 ? nil : names[entry.deployment], stateName: names[entry.stateName],
            nextScheduledStartTime: entry.start)
    }

}

/// The distinct names of a ledger (pools, queues, deployment ids, state names), each stored once.
/// Index 0 is reserved for "none".
private struct NameTable: Sendable {
    private(set) var all: [String] = [""]
    private var indexes: [String: UInt32] = ["": 0]

    subscript(index: UInt32) -> String { all[Int(index)] }

    func existingIndex(_ name: String) -> UInt32? { indexes[name] }

    mutating func index(_ name: String) -> UInt32 {
        if let index = indexes[name] { return index }
        let index = UInt32(all.count)
        all.append(name)
        indexes[name] = index
        return index
    }
}

/// A flow run id: a UUID as two 64-bit halves, or any other text as it is.
private enum RunID: Hashable, Sendable, CustomStringConvertible {
    case uuid(UInt64, UInt64)
    case text(String)

    init(_ id: String) {
        var digits: [UInt8] = []
        digits.reserveCapacity(32)
        let utf8 = id.utf8
        guard utf8.count == 36 else {
            self = .text(id)
            return
        }
        for (offset, byte) in utf8.enumerated() {
            if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                guard byte == UInt8(ascii: "-") else {
                    self = .text(id)
                    return
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digits.append(byte - UInt8(ascii: "a") + 10)
            default:
                // Upper case or not hex: kept as text, so that the id reads back exactly as given.
                self = .text(id)
                return
            }
        }
        let high = digits[0..<16].reduce(UInt64(0)) { $0 << 4 | UInt64($1) }
        let low = digits[16..<32].reduce(UInt64(0)) { $0 << 4 | UInt64($1) }
        self = .uuid(high, low)
    }

    var description: String {
        switch self {
        case .text(let text): return text
        case .uuid(let high, let low):
            let hex = Self.hex(high, 16) + Self.hex(low, 16)
            let characters = Array(hex)
            return String(characters[0..<8]) + "-" + String(characters[8..<12]) + "-" + String(characters[12..<16]) + "-"
                + String(characters[16..<20]) + "-" + String(characters[20..<32])
        }
    }

    private static func hex(_ value: UInt64, _ width: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: width - text.count) + text
    }
}
