import Aggregation
import PrefectAPI
import Testing

private let queueA = QueueKey(workPool: "pool", workQueue: "a")
private let queueB = QueueKey(workPool: "pool", workQueue: "b")

private func due(_ id: String, at start: Double, _ name: String = "Late", queue: QueueKey = queueA) -> FlowRun {
    FlowRun(
        id: id, deploymentID: "dep-1", workPoolName: queue.workPool, workQueueName: queue.workQueue, stateType: .scheduled,
        stateName: name, expectedStartTime: start, nextScheduledStartTime: start)
}

@Suite("Due-run ledger")
struct DueRunLedgerTests {
    @Test func aFullListingKeepsOnlyDueRuns() {
        var ledger = DueRunLedger()
        let future = due("future", at: 2_000)
        var running = due("running", at: 500)
        running.stateType = .running
        ledger.replaceAll(with: [due("old", at: 100), due("recent", at: 900, "Scheduled"), future, running], now: 1_000)
        #expect(Set(ledger.ids) == ["old", "recent"])
        #expect(ledger.syncedAt == 1_000)
        #expect(ledger.count(in: DueRunLedger.Slice(group: .late, through: 5_000)) == 1)
        #expect(ledger.count(in: DueRunLedger.Slice(group: .scheduled, through: 5_000)) == 1)
        #expect(ledger.count(in: DueRunLedger.Slice(group: .other, through: 5_000)) == 0)
    }

    @Test func aWindowListingReplacesOnlyTheWindow() {
        var ledger = DueRunLedger()
        ledger.replaceAll(with: [due("old", at: 100), due("in-window-gone", at: 950), due("in-window-stays", at: 960, "Scheduled")], now: 1_000)
        // The listing of 900...1030: one run left the window (deleted or started), one was renamed Late, one is new.
        ledger.replaceWindow(from: 900, through: 1_030, with: [due("in-window-stays", at: 960, "Late"), due("new", at: 1_020)])
        #expect(Set(ledger.ids) == ["old", "in-window-stays", "new"])
        #expect(ledger.run(id: "in-window-stays")?.stateName == "Late")
        #expect(ledger.count(in: DueRunLedger.Slice(group: .late, through: 5_000)) == 3)
        #expect(ledger.syncedAt == 1_030)
    }

    @Test func departuresSeenElsewhereAreDropped() {
        var ledger = DueRunLedger()
        ledger.replaceAll(with: [due("started", at: 100), due("cancelled", at: 200), due("again", at: 300), due("stays", at: 400)], now: 1_000)
        var started = due("started", at: 100)
        started.stateType = .running
        var cancelled = due("cancelled", at: 200)
        cancelled.stateType = .cancelled
        // A run seen in the finished window that is SCHEDULED and due again (a manual retry) stays, updated.
        let again = due("again", at: 990, "AwaitingRetry")
        var unknown = due("unknown", at: 100)
        unknown.stateType = .running
        ledger.apply(departures: [started, cancelled, again, unknown], now: 1_000)
        #expect(Set(ledger.ids) == ["again", "stays"])
        #expect(ledger.run(id: "again")?.stateName == "AwaitingRetry")
        #expect(ledger.count(in: DueRunLedger.Slice(group: .other, through: 5_000)) == 1)
    }

    @Test func aSliceIsCountedAndReplaced() {
        var ledger = DueRunLedger()
        var other = due("dep2-late", at: 115)
        other.deploymentID = "dep-2"
        ledger.replaceAll(
            with: [
                due("late-deleted", at: 100), due("late", at: 110), due("scheduled", at: 120, "Scheduled"), other,
                due("late-later", at: 500, queue: queueB),
            ],
            now: 1_000)
        let slice = DueRunLedger.Slice(group: .late, deploymentIDs: ["dep-1"], from: 100, through: 200)
        #expect(ledger.count(in: slice) == 2)
        #expect(ledger.starts(in: slice) == [100, 110])
        // Bounds are inclusive, in whole microseconds.
        #expect(ledger.count(in: DueRunLedger.Slice(group: .late, from: 110.000_000_4, through: 114.999_998)) == 1)
        // The slice listed again: one run was deleted, and a run known as Scheduled is Late now.
        ledger.replace(slice, with: [due("late", at: 110), due("scheduled", at: 120)], now: 1_000)
        #expect(Set(ledger.ids) == ["late", "scheduled", "dep2-late", "late-later"])
        #expect(ledger.count(in: DueRunLedger.Slice(group: .scheduled, through: 5_000)) == 0)
        #expect(ledger.deploymentIDs == ["dep-1", "dep-2"])
    }

    @Test(arguments: [("Scheduled", DueRunLedger.NameGroup.scheduled), ("Late", .late), ("AwaitingRetry", .other),
                      ("AwaitingConcurrencySlot", .other), ("My custom name", .other)])
    func stateNamesFallIntoGroups(name: String, group: DueRunLedger.NameGroup) {
        #expect(DueRunLedger.NameGroup(stateName: name) == group)
    }
}

@Suite("Due-run ledger storage")
struct DueRunLedgerStorageTests {
    @Test(arguments: ["e1824c22-a53b-494f-a715-edae75aedadf", "00000000-0000-0000-0000-000000000000", "E1824C22-A53B-494F-A715-EDAE75AEDADF",
                      "not-a-uuid", "", "e1824c22-a53b-494f-a715-edae75aedadz"])
    func idsReadBackExactly(id: String) {
        var ledger = DueRunLedger()
        ledger.replaceAll(with: [due(id, at: 100)], now: 1_000)
        #expect(ledger.ids == [id])
        #expect(ledger.contains(id: id))
        #expect(ledger.run(id: id)?.id == id)
    }

    @Test func groupsHoldEveryRunOnce() {
        var ledger = DueRunLedger()
        var adhoc = due("adhoc", at: 300, "Scheduled", queue: .none)
        adhoc.deploymentID = nil
        var withoutDeployment = due("a1", at: 100)
        withoutDeployment.deploymentID = nil
        ledger.replaceAll(with: [withoutDeployment, due("a2", at: 200), due("b1", at: 150, queue: queueB), adhoc], now: 1_000)
        let groups = ledger.groups()
        #expect(groups.map(\.starts.count).reduce(0, +) == 4)
        let byQueue = Dictionary(grouping: groups, by: \.queue)
        #expect(byQueue[queueA]?.count == 2)
        #expect(byQueue[queueA]?.first { $0.deploymentID == "dep-1" }?.starts == [200])
        #expect(byQueue[queueA]?.first { $0.deploymentID == nil }?.starts == [100])
        #expect(byQueue[.none]?.first?.stateName == "Scheduled")
        #expect(byQueue[.none]?.first?.deploymentID == nil)
        let run = ledger.run(id: "a2")
        #expect(run?.id == "a2" && run?.queue == queueA && run?.deploymentID == "dep-1")
        #expect(run?.stateName == "Late" && run?.nextScheduledStartTime == 200)
    }

    /// The audit walks the pile in cells of `size` known runs, oldest first; a cell never ends inside
    /// a group of runs that share one start time; the last cell reaches `now`; then it begins again.
    @Test func auditCellsWalkThePileWithoutSplittingATie() {
        var ledger = DueRunLedger()
        let tie = (1...4).map { due("tie-\($0)", at: 300) }
        ledger.replaceAll(with: [due("r1", at: 100), due("r2", at: 200)] + tie + [due("r3", at: 400), due("r4", at: 500.5)], now: 1_000)
        var cells: [DueRunLedger.AuditCell] = []
        for _ in 0..<5 {
            let cell = ledger.auditCell(size: 3, through: 1_000)
            cells.append(cell)
            ledger.passAudit(of: cell)
        }
        // Three runs would end inside the tie at 300: the first cell ends before it; the tie, larger
        // than a cell, is a cell of its own.
        #expect(cells.map { Set($0.ids) } == [
            ["r1", "r2"], Set(tie.map(\.id)), ["r3", "r4"], ["r1", "r2"], Set(tie.map(\.id)),
        ])
        #expect(cells[0].slice == DueRunLedger.Slice(from: nil, through: 200))
        #expect(cells[1].slice.through == 300)
        // The last cell starts a microsecond after the tie and reaches now; the audit then begins again.
        #expect(cells[2].slice.from.map { DueRunLedger.microseconds($0) } == 300_000_001)
        #expect(cells[2].slice.through == 1_000)
        #expect(cells[2].next == nil)
        #expect(cells.allSatisfy { $0.ids.count == ledger.count(in: $0.slice) })
    }

    /// A cell boundary at a start with microseconds falls on exactly that run: it is in one cell only.
    @Test func auditCellsMeetAtWholeMicroseconds() {
        var ledger = DueRunLedger()
        let starts = [1_764_000_000.000_001, 1_764_000_000.000_002, 1_764_000_000.000_003, 1_764_000_000.000_004]
        ledger.replaceAll(with: starts.enumerated().map { due("r\($0.offset)", at: $0.element) }, now: 1_764_000_100)
        var seen: [String] = []
        for _ in 0..<4 {
            let cell = ledger.auditCell(size: 1, through: 1_764_000_100)
            seen += cell.ids
            ledger.passAudit(of: cell)
            if cell.next == nil { break }
        }
        #expect(seen == ["r0", "r1", "r2", "r3"])
    }
}
