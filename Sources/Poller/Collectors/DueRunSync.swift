import Aggregation
import PrefectAPI

/// Brings a ``DueRunLedger`` up to date with Prefect at the poll's time, at a cost bounded by what
/// changed, not by how many runs are due.
///
/// The first sync lists the whole due set once. Later syncs:
/// 1. list the runs whose next scheduled start falls in a recent window (since the previous sync,
///    reaching back ``overlap`` seconds so that runs renamed Late by Prefect's late-runs service
///    are read again);
/// 2. drop known runs that the in-flight and finished queries of the same poll show elsewhere;
/// 3. count the due runs per state-name group with `/flow_runs/count` (three requests) and compare;
/// 4. a group that disagreed at the previous check too (so not a race between two requests) is
///    counted per work queue, and only the queues that disagree are listed again.
///
/// Lists page by next scheduled start (a keyset), not by offset, so a deep pile costs no offset scans.
struct DueRunSync {
    let context: CollectionContext
    /// The known work queues (from the last good queue list) and how to filter on each; nil when no
    /// queue list has been read yet, in which case a disagreeing group is listed whole.
    let queues: [QueueKey: FlowRunQueries.QueueFilter]?
    /// How far the recent window reaches back before the previous sync, in seconds.
    let overlap: Double
    /// How many pages (of up to 200 runs) the first listing reads per poll. A larger pile is
    /// listed over several polls, so that no poll takes minutes.
    var firstListingPagesPerPoll = 100

    /// The ledger after this poll, and whether it is complete (false while a first listing of a
    /// large pile goes on over several polls).
    func synced(_ ledger: DueRunLedger, departures: [FlowRun]) async throws(PrefectAPIError) -> (ledger: DueRunLedger, complete: Bool) {
        var ledger = ledger
        let now = context.now
        if let previous = ledger.syncedAt {
            let from = min(previous, now) - overlap
            let recent = try await listDue(from: from)
            ledger.replaceWindow(from: from, through: now, with: recent)
            ledger.apply(departures: departures, now: now)
        } else {
            ledger.apply(departures: departures, now: now)
            ledger = try await continueFirstListing(ledger)
            guard ledger.syncedAt != nil else { return (ledger, false) }
        }

        let groups = DueRunLedger.NameGroup.allCases
        let serverCounts = try await concurrentMap(groups) { group throws(PrefectAPIError) in
            try await count(group)
        }
        var disagreeing: Set<DueRunLedger.NameGroup> = []
        for (group, serverCount) in zip(groups, serverCounts) where serverCount != ledger.count(in: group) {
            disagreeing.insert(group)
        }
        for group in disagreeing.sorted() where ledger.disagreeing.contains(group) {
            ledger = try await repaired(ledger, group: group, total: serverCounts[groups.firstIndex(of: group) ?? 0])
            disagreeing.remove(group)
        }
        ledger.disagreeing = disagreeing
        return (ledger, true)
    }

    /// Lists the whole due set, or as much of it as this poll's page budget allows, scope by scope.
    private func continueFirstListing(_ ledger: DueRunLedger) async throws(PrefectAPIError) -> DueRunLedger {
        var ledger = ledger
        var position = ledger.listing ?? DueRunLedger.Listing(startedAt: context.now)
        var budget = firstListingPagesPerPoll
        var listed: [FlowRun] = []
        let scopes = context.runScopes
        while position.scope < scopes.count {
            let scope = scopes[position.scope]
            let result = try await keysetPages(from: position.cursor, offset: position.offset, maxPages: budget) { cursor in
                FlowRunQueries.restrict(filter(from: cursor), to: scope)
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

    /// Lists a disagreeing group again: per queue when the queues are known and account for every
    /// due run of the group, else whole.
    private func repaired(
        _ ledger: DueRunLedger, group: DueRunLedger.NameGroup, total: Int
    ) async throws(PrefectAPIError) -> DueRunLedger {
        var ledger = ledger
        let now = context.now
        let known = ledger.countsByQueue(in: group)
        guard let queues, Set(known.keys).isSubset(of: queues.keys) else {
            ledger.replace(group, queue: nil, with: try await listDue(group: group), now: now)
            return ledger
        }
        let keys = queues.keys.sorted()
        let perQueue = try await concurrentMap(keys) { key throws(PrefectAPIError) in
            try await count(group, queue: queues[key])
        }
        guard perQueue.reduce(0, +) == total else {
            // Some due runs sit in a queue we do not know (created since the last queue list).
            ledger.replace(group, queue: nil, with: try await listDue(group: group), now: now)
            return ledger
        }
        for (key, serverCount) in zip(keys, perQueue) where serverCount != known[key, default: 0] {
            ledger.replace(group, queue: key, with: try await listDue(group: group, queue: queues[key]), now: now)
        }
        return ledger
    }

    private func filter(
        from: Double? = nil, group: DueRunLedger.NameGroup? = nil, queue: FlowRunQueries.QueueFilter? = nil
    ) -> JSONValue {
        FlowRunQueries.scheduledDue(
            now: context.now, from: from, names: group?.names,
            excludingNames: group == .other ? DueRunLedger.NameGroup.namedGroupNames : nil, workQueue: queue)
    }

    /// The number of due runs of a group, in one queue or in every scope of the poll.
    private func count(
        _ group: DueRunLedger.NameGroup, queue: FlowRunQueries.QueueFilter? = nil
    ) async throws(PrefectAPIError) -> Int {
        let client = context.client
        if queue != nil { return try await client.countFlowRuns(matching: filter(group: group, queue: queue)) }
        let body = filter(group: group)
        return try await concurrentMap(context.runScopes) { scope throws(PrefectAPIError) in
            try await client.countFlowRuns(matching: FlowRunQueries.restrict(body, to: scope))
        }.reduce(0, +)
    }

    /// Every due run (from `from` on, of one group, in one queue), in every scope of the poll.
    private func listDue(
        from: Double? = nil, group: DueRunLedger.NameGroup? = nil, queue: FlowRunQueries.QueueFilter? = nil
    ) async throws(PrefectAPIError) -> [FlowRun] {
        let scopes: [FlowRunQueries.Scope] = queue == nil ? context.runScopes : [.all]
        var runs: [FlowRun] = []
        for scope in scopes {
            runs += try await keysetPages(from: from) { cursor in
                FlowRunQueries.restrict(filter(from: cursor, group: group, queue: queue), to: scope)
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
