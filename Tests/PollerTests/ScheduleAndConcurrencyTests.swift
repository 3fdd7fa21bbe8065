@testable import Collectors
import Exposition
import Foundation
import HTTPClient
@testable import Poller
import PrefectAPI
import Testing

private let deploy = "fixture-flow/fixture-deploy"
private let deployHigh = "fixture-flow/fixture-deploy-high"

private func epoch(_ text: String) throws -> Double { try #require(PrefectTimestamp.parse(text)) }

@Suite("Deployment schedules and concurrency limits")
struct ScheduleAndConcurrencyTests {
    /// The next run is the deployment's earliest SCHEDULED run; the last finished runs are looked up
    /// once, and a deployment without runs has `has_scheduled_run 0` and no timestamps.
    @Test func schedulesComeFromTheDeploymentsRuns() async throws {
        let harness = try Harness()
        let families = try await harness.poll(at: firstPoll).snapshot.families
        #expect(value(families, "prefect_deployment_has_scheduled_run", ["deployment": deploy]) == 1)
        #expect(value(families, "prefect_deployment_has_scheduled_run", ["deployment": deployHigh]) == 0)
        #expect(value(families, "prefect_deployment_next_scheduled_run_timestamp_seconds", ["deployment": deploy])
            == (try epoch("2026-11-23T08:41:26.107891Z")))
        #expect(value(families, "prefect_deployment_next_scheduled_run_timestamp_seconds", ["deployment": deployHigh]) == nil)
        let finished = "prefect_deployment_last_run_finished_timestamp_seconds"
        #expect(value(families, finished, ["deployment": deploy, "state_type": "COMPLETED"]) == (try epoch("2026-11-23T08:51:26.755158Z")))
        #expect(value(families, finished, ["deployment": deploy, "state_type": "CANCELLED"]) == (try epoch("2026-11-23T08:51:26.894759Z")))
        #expect(value(families, finished, ["deployment": deploy, "state_type": "FAILED"]) == nil)
        #expect(value(families, finished, ["deployment": deployHigh, "state_type": "FAILED"]) == (try epoch("2026-11-23T08:51:26.851027Z")))

        // Later polls send no lookup while nothing changed.
        let before = harness.fake.requests.count
        _ = try await harness.poll(at: firstPoll + 30)
        let lookups = harness.fake.requests.dropFirst(before).filter {
            harness.fake.isScheduleLookup(String(decoding: $0.body ?? [], as: UTF8.self))
        }
        #expect(lookups.isEmpty)
    }

    @Test func lookupsAreSpreadOverPollsWithinTheBudget() {
        let deployments = (0..<10).map { index in
            Deployment(
                id: "d\(index)", name: "d\(index)", flowID: "f", workPoolName: "p", workQueueName: "q", status: nil, paused: false,
                schedules: index == 9 ? [DeploymentSchedule(active: true, interval: 60)] : [])
        }
        var knowledge: [String: DeploymentScheduleCollector.Knowledge] = [:]
        let first = DeploymentScheduleCollector.plan(deployments, knowledge: knowledge, now: 1000, budget: 8, refreshAfter: 300)
        #expect(first.count == 8)
        // The deployment with an active schedule first.
        #expect(first.first == .nextRun(deployment: "d9"))
        for lookup in first { DeploymentScheduleCollector.record(nil, for: lookup, at: 1000, into: &knowledge) }
        var polls = 1
        while true {
            let lookups = DeploymentScheduleCollector.plan(deployments, knowledge: knowledge, now: 1000, budget: 8, refreshAfter: 300)
            if lookups.isEmpty { break }
            #expect(lookups.count <= 8)
            for lookup in lookups { DeploymentScheduleCollector.record(nil, for: lookup, at: 1000, into: &knowledge) }
            polls += 1
        }
        // Ten next runs and forty last runs, eight a poll.
        #expect(polls == 7)
        #expect(knowledge.values.allSatisfy { $0.nextCheckedAt == 1000 && $0.finishedLookedUp.count == 4 })
        // A lookup that failed (never recorded) is planned again.
        knowledge["d4"]?.finishedLookedUp.remove(.crashed)
        #expect(DeploymentScheduleCollector.plan(deployments, knowledge: knowledge, now: 1000, budget: 8, refreshAfter: 300)
            == [.lastFinished(deployment: "d4", stateType: .crashed)])
        knowledge["d4"]?.finishedLookedUp.insert(.crashed)
        // Once a next run's time has passed, or the refresh period is over, it is looked up again.
        knowledge["d3"]?.nextRun = 1010
        #expect(DeploymentScheduleCollector.plan(deployments, knowledge: knowledge, now: 1020, budget: 8, refreshAfter: 300)
            == [.nextRun(deployment: "d3")])
        #expect(DeploymentScheduleCollector.plan(deployments, knowledge: knowledge, now: 1300, budget: 3, refreshAfter: 300).count == 3)
        // A deployment with an active schedule and no run is checked again after a minute, not five.
        #expect(DeploymentScheduleCollector.plan(deployments, knowledge: knowledge, now: 1061, budget: 8, refreshAfter: 300)
            == [.nextRun(deployment: "d3"), .nextRun(deployment: "d9")])
    }

    @Test func concurrencyLimitsAreLabelledByKindAndName() async throws {
        let harness = try Harness()
        harness.fake.concurrencyLimitsJSON.withLock {
            $0 = Array("""
                [{"id": "1", "name": "database", "limit": 5, "active": true, "active_slots": 5},
                 {"id": "2", "name": "tag:etl", "limit": 2, "active": false, "active_slots": 0},
                 {"id": "3", "name": "deployment:e99041c8-6266-4f3c-880e-894f6791e64b", "limit": 1, "active": true, "active_slots": 1},
                 {"id": "4", "name": "deployment:0000", "limit": 3, "active": true, "active_slots": 2}]
                """.utf8)
        }
        let families = try await harness.poll(at: firstPoll).snapshot.families
        #expect(value(families, "prefect_concurrency_limit", ["kind": "global", "name": "database"]) == 5)
        #expect(value(families, "prefect_concurrency_limit_active_slots", ["kind": "global", "name": "database"]) == 5)
        #expect(value(families, "prefect_concurrency_limit_active", ["kind": "tag", "name": "etl"]) == 0)
        #expect(value(families, "prefect_concurrency_limit", ["kind": "deployment", "name": deploy]) == 1)
        // A deployment the exporter does not know keeps its id.
        #expect(value(families, "prefect_concurrency_limit_active_slots", ["kind": "deployment", "name": "0000"]) == 2)
        #expect(value(families, "prefect_work_pool_active_slots", ["work_pool": "fixture-pool"]) == 3)
        #expect(value(families, "prefect_work_queue_active_slots", ["work_pool": "fixture-pool", "work_queue": "fixture-high"]) == 1)
        #expect(value(families, "prefect_work_queue_active_slots", ["work_pool": "fixture-pool", "work_queue": "default"]) == nil)
    }

    /// With the pools split between exporters, each limit is reported by one: a deployment's by the
    /// exporter that reports the deployment, the others by the one that reports runs without a pool.
    @Test(arguments: [("fixture-pool", false), ("fixture-pool|", true)])
    func concurrencyLimitsAreReportedOnceAcrossShards(include: String, reportsRunsWithoutPool: Bool) async throws {
        let harness = try Harness(selection: try WorkPoolSelection(includePattern: include, excludePattern: nil))
        harness.fake.concurrencyLimitsJSON.withLock {
            $0 = Array("""
                [{"id": "1", "name": "database", "limit": 5, "active": true, "active_slots": 5},
                 {"id": "3", "name": "deployment:e99041c8-6266-4f3c-880e-894f6791e64b", "limit": 1, "active": true, "active_slots": 1},
                 {"id": "4", "name": "deployment:cfd1575a-39ec-4724-96d0-156a920f25f8", "limit": 2, "active": true, "active_slots": 0},
                 {"id": "5", "name": "deployment:0000", "limit": 3, "active": true, "active_slots": 2}]
                """.utf8)
        }
        let families = try await harness.poll(at: firstPoll).snapshot.families
        // fixture-deploy is in fixture-pool: reported by this shard either way.
        #expect(value(families, "prefect_concurrency_limit", ["kind": "deployment", "name": deploy]) == 1)
        // A global limit, the served deployment (no pool) and an unknown deployment: only by the
        // shard whose selection takes runs without a pool.
        #expect((value(families, "prefect_concurrency_limit", ["kind": "global", "name": "database"]) != nil) == reportsRunsWithoutPool)
        #expect((value(families, "prefect_concurrency_limit", ["kind": "deployment", "name": "fixture-other-flow/fixture-served"]) != nil)
            == reportsRunsWithoutPool)
        #expect((value(families, "prefect_concurrency_limit", ["kind": "deployment", "name": "0000"]) != nil) == reportsRunsWithoutPool)
    }
}
