import Aggregation
import PrefectAPI

/// Brings a ``DueRunLedger`` up to date with Prefect at the poll's time, at a cost bounded by what
/// changed, not by how many runs are due.
///
/// The first sync lists the whole due set once (over several polls for a large pile). Later syncs:
/// 1. list the runs whose next scheduled start falls in a recent window (since the previous sync,
///    reaching back ``overlap`` seconds so that runs renamed Late by Prefect's late-runs service
///    are read again);
/// 2. drop known runs that the in-flight and finished queries of the same poll show elsewhere;
/// 3. check the rest with `/flow_runs/count`: the due runs of each state-name group, and four
///    random slices of each group (a random half of the deployments, started before a random
///    known run). The totals catch a run deleted or added; the random slices catch a deletion and
///    an addition that cancel out in a total when they lie in different deployments or far apart
///    in time (a slice parts them when its cut falls between them);
/// 4. a slice whose count disagrees is halved by start time, one count per step, until the part
///    that disagrees fits a page or two; only that part is listed again;
/// 5. audit one cell of the ledger by id (``audited(_:)``). A deletion and an addition in the same
///    deployment and name, close in time, agree in every count, and a random slice parts them only
///    when its cut falls between them. The audit walks the pile a page of known runs a poll, so any
///    difference is found within one round of (known due runs / page size) polls, at two or three
///    counts a poll whatever the size of the pile.
///
/// Lists page by next scheduled start (a keyset), not by offset, so a deep pile costs no offset scans.
struct DueRunSync {
    let context: CollectionContext
    /// The flow-run scopes of the poll (see ``CollectionContext/requireRunScopes()``).
    let scopes: [FlowRunQueries.Scope]
    /// How far the recent window reaches back before the previous sync, in seconds.
    let overlap: Double
    /// How many pages (of up to 200 runs) the first listing reads per poll. A larger pile is
    /// listed over several polls, so that no poll takes minutes.
    var firstListingPagesPerPoll = 100
    /// Uniform random numbers in 0..<1 for the random slices; injectable for tests.
    var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

    /// The ledger after this poll, and whether it is complete (false while a first listing of a
    /// large pile goes on over several polls).
    func synced(_ ledger: DueRunLedger, departures: [FlowRun]) async throws(PrefectAPIError) -> (ledger: DueRunLedger, complete: Bool) {
        var ledger = ledger
        let now = context.now
        if let previous = ledger.syncedAt {
            let from = min(previous, now) - overlap
            let recent = try await listDue(DueRunLedger.Slice(from: from, through: now))
            ledger.replaceWindow(from: from, through: now, with: recent)
            ledger.apply(departures: departures, now: now)
        } else {
            ledger.apply(departures: departures, now: now)
            ledger = try await continueFirstListing(ledger)
            guard ledger.syncedAt != nil else { return (ledger, false) }
        }

        // After a repair the totals are counted once more, so that a slice repaired on its own (a
        // run added) and a deletion elsewhere in its group are both settled within the poll.
        let totals = DueRunLedger.NameGroup.allCases.map { DueRunLedger.Slice(group: $0, through: now) }
        var checks = totals + randomSlices(ledger)
        for _ in 0..<3 {
            let serverCounts = try await concurrentMap(checks) { slice throws(PrefectAPIError) in try await count(slice) }
            var repairs = 0
            for (slice, serverCount) in zip(checks, serverCounts) where serverCount != ledger.count(in: slice) {
                ledger = try await repaired(ledger, slice: slice, serverCount: serverCount)
                repairs += 1
            }
            guard repairs > 0 else { break }
            checks = totals
        }
        // A failed audit count fails the poll's sync like any other check: its answer (a 503 with
        // Retry-After, say) must be reported, not hidden. The same cell is audited next poll.
        return (try await audited(ledger), true)
    }

    /// Compares one cell of the ledger (see ``DueRunLedger/auditCell(size:through:)``) with Prefect:
    /// the cell's count, and how many of its known runs are still due in it, by id. Both equal to the
    /// known count means the same runs. Otherwise the cell is listed again; one that Prefect holds
    /// far more runs in than known is first repaired by halving, and audited again next poll.
    private func audited(_ ledger: DueRunLedger) async throws(PrefectAPIError) -> DueRunLedger {
        var ledger = ledger
        guard ledger.count > 0 else { return ledger }
        let pageSize = context.client.pageSize
        // One run short of a page, so that listing a cell with a run or two added is one request.
        let cell = ledger.auditCell(size: max(1, pageSize - 1), through: context.now)
        guard cell.ids.count <= Self.maxAuditedPages * pageSize else {
            // Runs that share one start time, too many to name in a few requests: the totals and the
            // random slices count them with the rest.
            ledger.passAudit(of: cell)
            return ledger
        }
        let chunks: [[String]?] = stride(from: 0, to: cell.ids.count, by: pageSize).map {
            Array(cell.ids[$0..<min($0 + pageSize, cell.ids.count)])
        }
        let counts = try await concurrentMap([nil] + chunks) { ids throws(PrefectAPIError) in try await count(cell.slice, ids: ids) }
        let server = counts[0]
        let knownStillDue = counts.dropFirst().reduce(0, +)
        if server == cell.ids.count && knownStillDue == cell.ids.count {
            ledger.passAudit(of: cell)
        } else if server <= 2 * pageSize {
            ledger.replace(cell.slice, with: try await listDue(cell.slice), now: context.now)
            ledger.passAudit(of: cell)
        } else {
            ledger = try await repaired(ledger, slice: cell.slice, serverCount: server)
        }
        return ledger
    }

    /// The most pages of ids one audit cell names; a larger group of runs that share a start time
    /// is left to the counts.
    static let maxAuditedPages = 5

    /// Four random slices of each group: a random half of the known deployments, with a next
    /// scheduled start up to a random known run's (a random quantile of the pile), or, one time in
    /// eight, up to a random time before every known run (to find runs added there).
    private func randomSlices(_ ledger: DueRunLedger) -> [DueRunLedger.Slice] {
        let now = context.now
        let deployments = ledger.deploymentIDs.sorted()
        let starts = ledger.starts(in: DueRunLedger.Slice(through: now))
        let oldest = starts.first ?? now
        var slices: [DueRunLedger.Slice] = []
        for group in DueRunLedger.NameGroup.allCases {
            for _ in 0..<4 {
                var half: Set<String>?
                if deployments.count > 1 { half = Set(deployments.filter { _ in random() < 0.5 }) }
                let through: Double
                if starts.isEmpty || random() < 0.125 {
                    through = oldest - (now - oldest) * random()
                } else {
                    through = starts[min(starts.count - 1, Int(random() * Double(starts.count)))]
                }
                slices.append(DueRunLedger.Slice(group: group, deploymentIDs: half, through: through))
            }
        }
        return slices
    }

    /// Repairs a disagreeing slice one part at a time (see ``repairedPart(_:slice:serverCount:)``),
    /// counting it again after each, until it agrees; at most 16 parts a poll, the rest next poll.
    private func repaired(
        _ ledger: DueRunLedger, slice: DueRunLedger.Slice, serverCount: Int
    ) async throws(PrefectAPIError) -> DueRunLedger {
        var ledger = ledger
        var server = serverCount
        for _ in 0..<16 where ledger.count(in: slice) != server {
            ledger = try await repairedPart(ledger, slice: slice, serverCount: server)
            server = try await count(slice)
        }
        return ledger
    }

    /// Narrows a disagreeing slice down by halving it at the median start time of the known runs
    /// (one count per step), and lists again only the part that disagrees.
    private func repairedPart(
        _ ledger: DueRunLedger, slice: DueRunLedger.Slice, serverCount: Int
    ) async throws(PrefectAPIError) -> DueRunLedger {
        var ledger = ledger
        var slice = slice
        var server = serverCount
        let pageSize = context.client.pageSize
        for _ in 0..<32 {
            let known = ledger.starts(in: slice)
            if known.count == server { return ledger }
            guard server > 0 else {
                ledger.replace(slice, with: [], now: context.now)
                return ledger
            }
            guard known.count > pageSize || server > 2 * pageSize, let split = Self.split(known) else { break }
            var lower = slice
            lower.through = split
            var upper = slice
            upper.from = split + 0.000_001
            let lowerCount = try await count(lower)
            if lowerCount != ledger.count(in: lower) {
                (slice, server) = (lower, lowerCount)
            } else {
                (slice, server) = (upper, server - lowerCount)
            }
        }
        ledger.replace(slice, with: try await listDue(slice), now: context.now)
        return ledger
    }

    /// A time between two known starts near the median, at least two microseconds from both; nil
    /// when every start is the same.
    static func split(_ sorted: [Double]) -> Double? {
        guard sorted.count > 1 else { return nil }
        let middle = sorted.count / 2
        for distance in 0..<sorted.count {
            for index in [middle + distance, middle - distance] where index > 0 && index < sorted.count {
                if sorted[index] - sorted[index - 1] >= 0.000_002 {
                    return ((sorted[index - 1] + sorted[index]) / 2 * 1_000_000).rounded(.down) / 1_000_000
                }
            }
        }
        return nil
    }

    /// Lists the whole due set, or as much of it as this poll's page budget allows, scope by scope.
    private func continueFirstListing(_ ledger: DueRunLedger) async throws(PrefectAPIError) -> DueRunLedger {
        var ledger = ledger
        var position = ledger.listing ?? DueRunLedger.Listing(startedAt: context.now)
        var budget = firstListingPagesPerPoll
        var listed: [FlowRun] = []
        while position.scope < scopes.count {
            let scope = scopes[position.scope]
            let everything = DueRunLedger.Slice(through: context.now)
            let result = try await keysetPages(from: position.cursor, offset: position.offset, maxPages: budget) { cursor in
                FlowRunQueries.restrict(filter(everything, from: cursor), to: scope)
            }
            listed += result.runs
            budget -= result.pages
            if let resume = result.resume {
                position.cursor = resume.cursor
                position.offset = resume.offset
                ledger.addListed(listed, now: context.now, next: position)
                return ledger
            }
            position = DueRunLedger.Listing(scope: position.scope + 1, startedAt: position.startedAt)
        }
        ledger.addListed(listed, now: context.now, next: nil)
        return ledger
    }

    private func filter(_ slice: DueRunLedger.Slice, from cursor: Double? = nil, ids: [String]? = nil) -> JSONValue {
        FlowRunQueries.scheduledDue(
            now: slice.through, from: max(cursor ?? -.infinity, slice.from ?? -.infinity).nonInfinite,
            names: slice.group?.names,
            excludingNames: slice.group == .other ? DueRunLedger.NameGroup.namedGroupNames : nil,
            deploymentIDs: slice.deploymentIDs?.sorted(), ids: ids)
    }

    /// The number of due runs in a slice (with `ids`, only of these runs), in every scope of the poll.
    private func count(_ slice: DueRunLedger.Slice, ids: [String]? = nil) async throws(PrefectAPIError) -> Int {
        if slice.deploymentIDs?.isEmpty == true || ids?.isEmpty == true { return 0 }
        let client = context.client
        let body = filter(slice, ids: ids)
        return try await concurrentMap(scopes) { scope throws(PrefectAPIError) in
            try await client.countFlowRuns(matching: FlowRunQueries.restrict(body, to: scope))
        }.reduce(0, +)
    }

    /// Every due run of a slice, in every scope of the poll.
    private func listDue(_ slice: DueRunLedger.Slice) async throws(PrefectAPIError) -> [FlowRun] {
        if slice.deploymentIDs?.isEmpty == true { return [] }
        var runs: [FlowRun] = []
        for scope in scopes {
            runs += try await keysetPages(from: slice.from) { cursor in
                FlowRunQueries.restrict(filter(slice, from: cursor), to: scope)
            }.runs
        }
        return runs
    }

    /// Pages through runs sorted by next scheduled start, each page starting where the last ended.
    /// Runs sharing one start time across a page boundary are stepped over by offset; ids are
    /// de-duplicated, since each page starts a hair before the previous page's last start time.
    /// Stops after `maxPages` pages with where to resume, or at the end with `resume` nil.
    private func keysetPages(
        from: Double?, offset: Int = 0, maxPages: Int = 10_000, _ body: (Double?) -> JSONValue
    ) async throws(PrefectAPIError) -> (runs: [FlowRun], pages: Int, resume: (cursor: Double?, offset: Int)?) {
        let client = context.client
        let pageSize = client.pageSize
        var runs: [FlowRun] = []
        var seen: Set<String> = []
        var cursor = from
        var offset = offset
        for pages in 1...max(1, maxPages) {
            let page = try await client.flowRunPage(
                matching: body(cursor.map { $0 - 0.000_001 }), sort: FlowRunQueries.Sort.nextScheduledStartAscending,
                offset: offset)
            for run in page where seen.insert(run.id).inserted { runs.append(run) }
            if page.count < pageSize { return (runs, pages, nil) }
            if let last = page.last?.nextScheduledStartTime, cursor.map({ last > $0 + 0.000_002 }) ?? true {
                cursor = last
                offset = 0
            } else {
                offset += page.count
            }
        }
        guard maxPages < 10_000 else {
            // A hard stop, so that a server ignoring the filter cannot loop us forever.
            throw PrefectAPIError(
                kind: .invalidResponse, endpoint: "/flow_runs/filter",
                message: "/flow_runs/filter returned more than 10000 full pages of due runs; the server may be ignoring the filter")
        }
        return (runs, maxPages, (cursor, offset))
    }
}

extension Double {
    /// nil for an infinity (an open bound).
    fileprivate var nonInfinite: Double? { isInfinite ? nil : self }
}
