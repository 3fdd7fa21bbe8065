import Aggregation
import Exposition
import Foundation
@testable import Collectors
@testable import Poller
import PrefectAPI
import Testing

private func collectorSuccess(_ families: [MetricFamily]) -> [String: Double] {
    var result: [String: Double] = [:]
    for metric in families.first(where: { $0.name == "prefect_exporter_collector_success" })?.metrics ?? [] {
        if case .number(let number) = metric.value { result[labelDictionary(metric)["collector"] ?? ""] = number }
    }
    return result
}

private let workerFamilies = ["prefect_work_pool_workers", "prefect_work_pool_last_worker_heartbeat_timestamp_seconds"]

@Suite("Collector isolation")
struct CollectorIsolationTests {
    /// One endpoint refused from the start: only its collector's families are missing.
    @Test func aForbiddenEndpointBlanksOnlyItsFamilies() async throws {
        let harness = try Harness()
        harness.fake.set(.statusFor(path: "/work_pools/fixture-pool/workers", status: 403))
        let (report, snapshot) = try await harness.poll(at: firstPoll)
        #expect(!report.success)
        #expect(report.error?.kind == .forbidden)
        #expect(report.failures.map(\.collector) == ["workers"])
        let families = snapshot.families
        #expect(value(families, "prefect_up") == 1)
        #expect(value(families, "prefect_exporter_polls_total", ["result": "partial"]) == 1)
        #expect(collectorSuccess(families).filter { $0.value == 0 }.keys.sorted() == ["workers"])
        #expect(collectorSuccess(families).count == 10)
        for name in workerFamilies { #expect(!has(families, name), "\(name)") }
        for name in prefectFamilyNames { #expect(has(families, name), "\(name)") }
        #expect(value(families, "prefect_flow_runs_late", ["work_pool": "fixture-pool", "work_queue": "default", "deployment": "fixture-flow/fixture-deploy"]) == 3)
        let lastSuccess = families.first { $0.name == "prefect_exporter_collector_last_success_timestamp_seconds" }
        #expect(lastSuccess?.metrics.map { labelDictionary($0)["collector"] ?? "" }.contains("workers") == false)
        #expect(lastSuccess?.metrics.count == 9)
    }

    /// A collector that fails after a success keeps its families, with their last values, until the
    /// staleness limit; every other family stays fresh.
    @Test func aFailingCollectorKeepsItsLastValuesUntilMaxStaleness() async throws {
        let harness = try Harness(maxStaleness: .seconds(60))
        let first = try await harness.poll(at: firstPoll)
        let workersBefore = first.snapshot.families.filter { workerFamilies.contains($0.name) }
        #expect(workersBefore.count == 2)

        harness.fake.set(.statusFor(path: "/work_pools/fixture-pool/workers", status: 500))
        var families = try await harness.poll(at: firstPoll + 30).snapshot.families
        #expect(families.filter { workerFamilies.contains($0.name) } == workersBefore)
        #expect(value(families, "prefect_exporter_collector_last_success_timestamp_seconds", ["collector": "workers"]) == firstPoll)
        #expect(value(families, "prefect_exporter_collector_last_success_timestamp_seconds", ["collector": "work_pools"]) == firstPoll + 30)

        families = try await harness.poll(at: firstPoll + 61).snapshot.families
        for name in workerFamilies { #expect(!has(families, name), "\(name) after the staleness limit") }
        for name in prefectFamilyNames { #expect(has(families, name), "\(name)") }
        #expect(value(families, "prefect_up") == 1)

        harness.fake.set(.normal)
        families = try await harness.poll(at: firstPoll + 90).snapshot.families
        #expect(families.filter { workerFamilies.contains($0.name) } == workersBefore)
        #expect(collectorSuccess(families).values.allSatisfy { $0 == 1 })
    }

    /// Without the deployment list, runs are labelled by deployment id: never dropped or merged.
    @Test func withoutDeploymentsRunsAreLabelledByDeploymentID() async throws {
        let harness = try Harness()
        harness.fake.set(.statusFor(path: "/deployments/filter", status: 403))
        let families = try await harness.poll(at: firstPoll).snapshot.families
        #expect(!has(families, "prefect_deployment_info"))
        let late = families.first { $0.name == "prefect_flow_runs_late" }?.metrics ?? []
        let deploymentIDs = Set(harness.fake.recordedDueRuns().compactMap { $0["deployment_id"] as? String })
        #expect(deploymentIDs.count == 1)
        let labelled = late.filter { deploymentIDs.contains(labelDictionary($0)["deployment"] ?? "") }
        #expect(labelled.count == 1)
        #expect(labelled.first?.value == .number(3))
    }

    /// The workers need the pool list: with none ever read, they fail without a request.
    @Test func aCollectorWithoutItsInputFailsWithoutRequests() async throws {
        let harness = try Harness()
        harness.fake.set(.statusFor(path: "/work_pools/filter", status: 500))
        let report = try await harness.poll(at: firstPoll).report
        #expect(report.failures.map(\.collector).sorted() == ["work_pools", "workers"])
        let workers = try #require(report.failures.first { $0.collector == "workers" })
        #expect(workers.error.message.contains("needs the work-pool list"))
        #expect(!harness.fake.paths.contains { $0.hasSuffix("/workers/filter") })
    }
}

@Suite("Due-run ledger in the poller")
struct DueRunSyncTests {
    /// Deletes the recorded Late run b1e284bf and adds a Late run like it with id `id`, scheduled at
    /// `start`: the Late total is unchanged. Returns the due runs the fake now serves.
    private func replaceLateRun(in fake: FakePrefect, with id: String, at start: String) throws -> [[String: Any]] {
        var runs = fake.recordedDueRuns().filter { $0["id"] as? String != "b1e284bf-281f-43a4-bd16-fd646b2efa1c" }
        var added = try #require(runs.first { $0["state_name"] as? String == "Late" })
        added["id"] = id
        added["next_scheduled_start_time"] = start
        added["expected_start_time"] = start
        runs.append(added)
        fake.setDueRuns(runs)
        return runs
    }

    private func dueListings(_ harness: Harness) -> Int {
        harness.fake.requests.filter {
            $0.url.hasSuffix("/flow_runs/filter") && String(decoding: $0.body ?? [], as: UTF8.self).contains("next_scheduled_start_time")
        }.count
    }

    /// Later polls list only the recent window; a deleted old run is found by the checks, and only
    /// the slice that disagrees is listed again.
    @Test func aDeletedOldRunIsFoundByTheChecks() async throws {
        let harness = try Harness()
        let late = ["work_pool": "fixture-pool", "work_queue": "default", "deployment": "fixture-flow/fixture-deploy"]
        var families = try await harness.poll(at: firstPoll).snapshot.families
        #expect(value(families, "prefect_flow_runs_late", late) == 3)

        let remaining = harness.fake.recordedDueRuns().filter { $0["id"] as? String != "b1e284bf-281f-43a4-bd16-fd646b2efa1c" }
        harness.fake.setDueRuns(remaining)
        let before = harness.fake.requests.count
        let listingsBefore = dueListings(harness)
        families = try await harness.poll(at: firstPoll + 30).snapshot.families
        #expect(value(families, "prefect_flow_runs_late", late) == 2)
        let windowBodies = harness.fake.requests.dropFirst(before).filter { $0.url.hasSuffix("/flow_runs/filter") }
            .map { String(decoding: $0.body ?? [], as: UTF8.self) }.filter { $0.contains("next_scheduled_start_time") }
        // The recent window, then the Late runs (two, too few to halve) listed again.
        #expect(dueListings(harness) - listingsBefore == 2)
        #expect(windowBodies.first?.contains(#""after_""#) == true)
        #expect(windowBodies.last?.contains(#""any_":["Late"]"#) == true)

        let requestsBefore = harness.fake.requests.count
        families = try await harness.poll(at: firstPoll + 60).snapshot.families
        #expect(value(families, "prefect_flow_runs_late", late) == 2)
        // A steady poll: the first poll's 50 without its 15 one-time deployment lookups, and
        // without listing the due runs again.
        #expect(harness.fake.requests.count - requestsBefore == 35)
    }

    /// A deletion and an addition in one group cancel out in its total; the random slices find it.
    @Test func aDeletionAndAnAdditionThatCancelOutAreFound() async throws {
        let fake = try FakePrefect()
        let client = PrefectClient(configuration: PrefectClientConfiguration(baseURL: FakePrefect.baseURL), transport: fake)
        let context = CollectionContext(client: client, now: firstPoll)
        // Random slices that take every deployment (0.1 is below 0.5) and, being below 1/8, end
        // before every known run: at 08:40:20, between the added run (08:30) and the deleted one
        // (08:41:26).
        var sync = DueRunSync(context: context, scopes: [.all], overlap: 150)
        sync.random = { 0.1 }
        var ledger = try await sync.synced(DueRunLedger(), departures: []).ledger

        // One of the two Late runs at 08:41:26 is deleted; another Late run appears at 08:30,
        // long before the recent window: the Late total is unchanged.
        let runs = try replaceLateRun(in: fake, with: "0aa1ed00-0000-4000-8000-000000000001", at: "2026-11-23T08:30:00.000000Z")

        let later = CollectionContext(client: client, now: firstPoll + 30)
        var next = DueRunSync(context: later, scopes: [.all], overlap: 150)
        next.random = { 0.1 }
        ledger = try await next.synced(ledger, departures: []).ledger
        #expect(Set(ledger.ids) == Set(runs.compactMap { $0["id"] as? String }))
        #expect(ledger.run(id: "0aa1ed00-0000-4000-8000-000000000001")?.stateName == "Late")
    }

    /// A deletion and an addition in the same deployment and state name, a second apart, are the
    /// same in every count; random slices part them only by chance. The audit finds them within a
    /// round of its cells.
    @Test func aPairNoCountCanSeeIsFoundByTheAudit() async throws {
        let fake = try FakePrefect()
        let client = PrefectClient(
            configuration: PrefectClientConfiguration(baseURL: FakePrefect.baseURL, pageSize: 1), transport: fake)
        // 0.6: each random slice takes every deployment (there is one) and ends at the second known
        // start, 08:41:26, after both runs of the pair: it never parts them.
        func sync(at time: Double) -> DueRunSync {
            var sync = DueRunSync(context: CollectionContext(client: client, now: time), scopes: [.all], overlap: 150)
            sync.random = { 0.6 }
            return sync
        }
        // Poll 1 lists the pile and audits the first cell: the two Late runs that share 08:41:26 (a
        // cell of one run cannot split them).
        var ledger = try await sync(at: firstPoll).synced(DueRunLedger(), departures: []).ledger
        #expect(ledger.count == 3)

        // One of them is deleted; a Late run of the same deployment appears a second earlier.
        let runs = try replaceLateRun(in: fake, with: "0aa1ed00-0000-4000-8000-000000000002", at: "2026-11-23T08:41:25.107891Z")
        let truth = Set(runs.compactMap { $0["id"] as? String })

        // Poll 2 audits the second cell (the Scheduled run, through now); every count agrees.
        ledger = try await sync(at: firstPoll + 30).synced(ledger, departures: []).ledger
        #expect(Set(ledger.ids) != truth)
        #expect(ledger.contains(id: "b1e284bf-281f-43a4-bd16-fd646b2efa1c"))

        // Poll 3 begins the round again: the first cell holds one known run where Prefect has two.
        let before = fake.requests.count
        ledger = try await sync(at: firstPoll + 60).synced(ledger, departures: []).ledger
        #expect(Set(ledger.ids) == truth)
        #expect(ledger.run(id: "0aa1ed00-0000-4000-8000-000000000002")?.stateName == "Late")
        // The cell was listed again, by start time alone: no state name, no deployment, no id.
        let relisted = fake.bodies(after: before).filter {
            $0.contains("next_scheduled_start_time") && !$0.contains(#""state""#) && !$0.contains(#""id""#)
        }
        #expect(relisted.contains { $0.contains("08:41:26.107891") && !$0.contains(#""after_""#) })
    }

    /// A failed audit count is reported like any other check (an answer such as a 503 must not be
    /// hidden); the other collectors stand, and the next poll audits the same cell again.
    @Test func aFailedAuditIsReported() async throws {
        let harness = try Harness()
        _ = try await harness.poll(at: firstPoll)
        // The audit's count of its known runs by id (the upcoming counts name a queue id instead).
        let auditByID = #"},"id":{"any_":["#
        harness.fake.set(.statusForBody(containing: auditByID, status: 500))
        let before = harness.fake.requests.count
        let failed = try await harness.poll(at: firstPoll + 30)
        #expect(failed.report.failures.map(\.collector) == ["flow_runs_active"])
        #expect(failed.report.failures.first?.error.message.contains("500") == true)
        let auditBodies = harness.fake.bodies(after: before).filter { $0.contains(auditByID) }
        #expect(auditBodies.count == 1)

        harness.fake.set(.normal)
        let next = harness.fake.requests.count
        let recovered = try await harness.poll(at: firstPoll + 60)
        #expect(recovered.report.failures.isEmpty)
        let again = harness.fake.bodies(after: next).filter { $0.contains(auditByID) }
        #expect(again == auditBodies.map { $0.replacingOccurrences(of: "08:52:30", with: "08:53:00") })
    }

    /// A pile too large for one poll's page budget is listed over several polls, pages keyed by
    /// next scheduled start; runs sharing one start time across a page boundary are all listed.
    @Test func aLargeFirstListingContinuesOverPolls() async throws {
        let fake = try FakePrefect()
        let client = PrefectClient(
            configuration: PrefectClientConfiguration(baseURL: FakePrefect.baseURL, pageSize: 1), transport: fake)
        let context = CollectionContext(client: client, now: firstPoll)
        var sync = DueRunSync(context: context, scopes: [.all], overlap: 150)
        sync.firstListingPagesPerPoll = 2

        // Pages of one run, two per poll. The two Late runs share a start time: after the first,
        // the next page starts at that time and steps over it by offset.
        var ledger = DueRunLedger()
        var listed: [Int] = []
        var requests: [Int] = []
        for _ in 1...5 {
            let before = fake.requests.count
            let result = try await sync.synced(ledger, departures: [])
            ledger = result.ledger
            listed.append(ledger.count)
            requests.append(fake.requests.count - before)
            if result.complete { break }
            #expect(ledger.syncedAt == nil)
            #expect(ledger.listing?.startedAt == firstPoll)
        }
        #expect(listed == [1, 3, 3])
        // Two listing pages per poll; the last poll also makes the fifteen checks and the audit's
        // counts: the cell (with pages of one run, the two Late runs that share a start time) and
        // its two known runs by id, one a request.
        #expect(requests == [2, 2, 20])
        #expect(ledger.syncedAt == firstPoll)
        #expect(ledger.listing == nil)
        #expect(Set(ledger.ids) == Set(fake.recordedDueRuns().compactMap { $0["id"] as? String }))
    }
}

@Suite("In-flight runs")
struct InFlightRunTests {
    /// The in-flight and finished queries are answered at different moments of a poll: a run that
    /// ended between them is counted as finished, not also as running.
    @Test func aRunTheSamePollSawEndIsNotAlsoRunning() async throws {
        let harness = try Harness()
        let queue = ["work_pool": "fixture-pool", "work_queue": "default"]
        let running = ["work_pool": "fixture-pool", "work_queue": "default", "deployment": "fixture-flow/fixture-deploy",
                       "state_type": "RUNNING", "state_name": "Running"]
        let before = try await harness.poll(at: firstPoll).snapshot.families
        let runningBefore = try #require(value(before, "prefect_flow_runs", running))

        // The finished run c6a78029 as the in-flight query saw it a moment before it ended.
        let finished = try #require(
            (try JSONSerialization.jsonObject(with: Data(try recordedFixture("flow_runs_finished"))) as? [[String: Any]])?.first)
        #expect(finished["state_type"] as? String == "COMPLETED")
        var stillRunning = finished
        stillRunning["state_type"] = "RUNNING"
        stillRunning["state_name"] = "Running"
        stillRunning["end_time"] = NSNull()
        let inFlight = try #require(
            try JSONSerialization.jsonObject(with: Data(try recordedFixture("flow_runs_in_flight"))) as? [[String: Any]])
        let served = Array(try JSONSerialization.data(withJSONObject: inFlight + [stillRunning]))
        harness.fake.inFlightJSON.withLock { $0 = served }

        let after = try await harness.poll(at: firstPoll + 30).snapshot.families
        #expect(value(after, "prefect_flow_runs", running) == runningBefore)
        #expect(runningCount(after, queue) == 1)
        #expect(runningCount(before, queue) == 1)
    }

    private func runningCount(_ families: [MetricFamily], _ labels: [String: String]) -> UInt64? {
        let metric = families.first { $0.name == "prefect_flow_run_running_seconds" }?.metrics.first { labelDictionary($0) == labels }
        guard case .histogram(let histogram) = metric?.value else { return nil }
        return histogram.count
    }
}

/// A collector whose requests fail together reports the answer that caused it, not the requests
/// that were refused unsent because of it (Retry-After pending, or a learned limit).
@Suite("The cause of a collector's failure")
struct FailureCauseTests {
    private static let unavailable = PrefectAPIError(
        kind: .rateLimited, endpoint: "/flow_runs/count", status: 503, retryAfter: 6,
        message: "Prefect answered 503 to POST /flow_runs/count and asked to retry after 6s")
    private static let held = PrefectAPIError(
        kind: .rateLimited, endpoint: "/flow_runs/count", retryAfter: 5.9,
        message: "POST /flow_runs/count was not sent: Prefect asked the exporter to wait (Retry-After) another 6s")
    private static let timeout = PrefectAPIError(kind: .transport(.timeout), endpoint: "/flow_runs/filter", message: "timed out")

    @Test func concurrentRequestsReportTheAnswerNotTheRequestsHeldBecauseOfIt() async {
        // The held refusals come first in input order; the 503 that caused them is reported.
        do {
            _ = try await concurrentMap([0, 1, 2]) { index throws(PrefectAPIError) -> Int in
                if index < 2 { throw Self.held }
                throw Self.unavailable
            }
            Issue.record("no error thrown")
        } catch {
            #expect(error.status == 503)
            #expect(error.message == Self.unavailable.message)
        }
    }

    @Test func theFirstCauseWinsAndRefusalsAloneAreReported() {
        #expect(PrefectAPIError.cause(among: [Self.held, Self.timeout, Self.unavailable])?.message == "timed out")
        #expect(PrefectAPIError.cause(among: [Self.held])?.message == Self.held.message)
        #expect(PrefectAPIError.cause(among: []) == nil)
        #expect(!Self.unavailable.wasRefusedUnsent && Self.held.wasRefusedUnsent)
        let errors: [CollectorError] = [.api(Self.held), .api(Self.unavailable)]
        #expect(CollectorError.cause(among: errors)?.apiError?.status == 503)
    }
}
