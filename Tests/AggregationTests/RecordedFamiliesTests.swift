import Aggregation
import Collectors
import Exposition
import PrefectAPI
import Testing

/// 2026-11-23T08:52:00Z: the "Scheduled" run due at 08:51:21.107891 is 38.9 s overdue, the two
/// "Late" runs due at 08:41:26.107891 are 633.9 s overdue.
private let now = 1_795_423_920.0
/// 2026-11-23T08:51:30Z: the "Scheduled" run is only 8.9 s overdue, within the 15 s grace.
private let withinGrace = 1_795_423_890.0

private let knownNames: [(String, String)] = [
    ("SCHEDULED", "Scheduled"), ("SCHEDULED", "Late"), ("SCHEDULED", "AwaitingRetry"), ("SCHEDULED", "AwaitingConcurrencySlot"),
    ("PENDING", "Pending"), ("RUNNING", "Running"), ("RUNNING", "Retrying"), ("PAUSED", "Paused"), ("PAUSED", "Suspended"),
    ("CANCELLING", "Cancelling"),
]

/// `PrefectCollectors.build` over JSON recorded from a real Prefect 3.8.8.
@Suite("PrefectFamilies from recorded Prefect data")
struct RecordedFamiliesTests {
    @Test func familiesComeInAStableOrder() throws {
        let families = try Recorded.families(now: now)
        #expect(families.map(\.name) == [
            "prefect_server_info",
            "prefect_work_pool_info", "prefect_work_pool_status", "prefect_work_pool_concurrency_limit",
            "prefect_work_pool_active_slots",
            "prefect_work_pool_workers", "prefect_work_pool_last_worker_heartbeat_timestamp_seconds",
            "prefect_work_queue_status", "prefect_work_queue_concurrency_limit", "prefect_work_queue_priority",
            "prefect_work_queue_last_polled_timestamp_seconds", "prefect_work_queue_active_slots",
            "prefect_concurrency_limit", "prefect_concurrency_limit_active_slots", "prefect_concurrency_limit_active",
            "prefect_deployment_info", "prefect_deployment_status", "prefect_deployment_paused",
            "prefect_deployment_active_schedules", "prefect_deployment_schedule_interval_seconds",
            "prefect_deployment_has_scheduled_run", "prefect_deployment_next_scheduled_run_timestamp_seconds",
            "prefect_deployment_last_run_finished_timestamp_seconds",
            "prefect_flow_runs", "prefect_flow_runs_upcoming", "prefect_flow_runs_late",
            "prefect_flow_run_lateness_seconds", "prefect_flow_run_max_lateness_seconds",
            "prefect_flow_run_running_seconds", "prefect_flow_run_max_running_seconds",
            "prefect_flow_runs_finished_total", "prefect_flow_run_start_delay_seconds", "prefect_flow_run_duration_seconds",
        ])
        #expect(families.map(\.type) == [.gauge] + Array(repeating: .gauge, count: 22) + [
            .gauge, .gauge, .gauge, .histogram, .gauge, .histogram, .gauge, .counter, .histogram, .histogram,
        ])
    }

    @Test func serverInfo() throws {
        let families = try Recorded.families(now: now)
        #expect(labelSets(families, "prefect_server_info") == [["version": "3.8.8", "api_version": "0.8.4"]])
        #expect(value(families, "prefect_server_info", ["version": "3.8.8", "api_version": "0.8.4"]) == 1)
    }

    @Test func flowRunsByState() throws {
        let families = try Recorded.families(now: now)
        let expectedNonZero: [[String: String]: Double] = [
            stateLabels(Recorded.defaultQueue, Recorded.deploy, "SCHEDULED", "Scheduled"): 1,
            stateLabels(Recorded.defaultQueue, Recorded.deploy, "SCHEDULED", "Late"): 2,
            stateLabels(Recorded.defaultQueue, Recorded.deploy, "PENDING", "Pending"): 1,
            stateLabels(Recorded.defaultQueue, Recorded.deploy, "RUNNING", "Running"): 1,
            stateLabels(Recorded.highQueue, Recorded.deployHigh, "RUNNING", "Running"): 1,
            // The ad-hoc run: no pool, no queue, no deployment.
            stateLabels(.none, "", "RUNNING", "Running"): 1,
        ]
        let series = try #require(families.first { $0.name == "prefect_flow_runs" }).metrics
        // Ten known state names for each of six known (queue, deployment) pairs; the no-pool pair with
        // deployment="" is always zero-filled, since ad-hoc runs may appear at any time.
        #expect(series.count == 60)
        for metric in series {
            let labels = labelDictionary(metric)
            #expect(metric.value == .number(expectedNonZero[labels] ?? 0), "\(labels)")
        }
        for labels in expectedNonZero.keys {
            #expect(value(families, "prefect_flow_runs", labels) != nil, "\(labels) missing")
        }
        #expect(series.map { $0.labels.map(\.name) }.allSatisfy {
            $0 == ["work_pool", "work_queue", "deployment", "state_type", "state_name"]
        })
    }

    @Test(arguments: [
        (Recorded.defaultQueue, Recorded.deploy), (Recorded.highQueue, Recorded.deployHigh), (QueueKey.none, Recorded.served),
        (Recorded.pausedQueue, ""), (Recorded.pausedPoolQueue, ""),
    ])
    func knownQueuesAndDeploymentsAreZeroFilled(queue: QueueKey, deployment: String) throws {
        let families = try Recorded.families(now: now)
        for (type, name) in knownNames {
            #expect(value(families, "prefect_flow_runs", stateLabels(queue, deployment, type, name)) != nil, "\(type)/\(name)")
        }
        #expect(value(families, "prefect_flow_runs_late", runLabels(queue, deployment)) != nil)
        for type in ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"] {
            var labels = runLabels(queue, deployment)
            labels["state_type"] = type
            #expect(value(families, "prefect_flow_runs_finished_total", labels) != nil, "\(type)")
        }
    }

    @Test func queuesWithADeploymentAreNotAlsoZeroFilledWithoutOne() throws {
        let families = try Recorded.families(now: now)
        #expect(value(families, "prefect_flow_runs", stateLabels(Recorded.defaultQueue, "", "RUNNING", "Running")) == nil)
        #expect(value(families, "prefect_flow_runs_late", runLabels(Recorded.highQueue, "")) == nil)
    }

    @Test func lateRunsCountWhateverTheirStateName() throws {
        let families = try Recorded.families(now: now)
        // Two runs Prefect renamed "Late", and one still named "Scheduled" that is 38.9 s overdue.
        #expect(value(families, "prefect_flow_runs_late", runLabels(Recorded.defaultQueue, Recorded.deploy)) == 3)
        #expect(value(families, "prefect_flow_runs_late", runLabels(Recorded.highQueue, Recorded.deployHigh)) == 0)
        #expect(value(families, "prefect_flow_runs_late", runLabels(.none, Recorded.served)) == 0)
        #expect(labelSets(families, "prefect_flow_runs_late").count == 6)
        #expect(value(families, "prefect_flow_runs_late", runLabels(.none, "")) == 0)
    }

    @Test func aScheduledRunWithinTheGraceIsNotLate() throws {
        let families = try Recorded.families(now: withinGrace)
        #expect(value(families, "prefect_flow_runs_late", runLabels(Recorded.defaultQueue, Recorded.deploy)) == 2)
        // It is still counted by state.
        #expect(value(families, "prefect_flow_runs", stateLabels(Recorded.defaultQueue, Recorded.deploy, "SCHEDULED", "Scheduled")) == 1)
        let lateness = try #require(histogram(families, "prefect_flow_run_lateness_seconds", queueLabels(Recorded.defaultQueue)))
        #expect(lateness.count == 2)
    }

    @Test(arguments: [(14.0, 3), (38.0, 3), (38.9, 2), (600.0, 2), (633.0, 2), (634.0, 0), (100_000.0, 0)])
    func lateAfterIsTheGrace(lateAfter: Double, late: Int) throws {
        let families = try Recorded.families(now: now, settings: AggregationSettings(lateAfter: lateAfter))
        #expect(value(families, "prefect_flow_runs_late", runLabels(Recorded.defaultQueue, Recorded.deploy)) == Double(late))
    }

    @Test func latenessHistogramAndMaximum() throws {
        let families = try Recorded.families(now: now)
        let lateness = try #require(histogram(families, "prefect_flow_run_lateness_seconds", queueLabels(Recorded.defaultQueue)))
        #expect(lateness.upperBounds == AggregationSettings.defaultLatenessBuckets)
        // 38.9 s, and 633.9 s twice.
        #expect(lateness.cumulativeCounts == [0, 0, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3])
        #expect(lateness.count == 3)
        let scheduled = try epoch("2026-11-23T08:51:21.107891Z")
        let renamed = try epoch("2026-11-23T08:41:26.107891Z")
        #expect(abs(lateness.sum - ((now - scheduled) + 2 * (now - renamed))) < 1e-6)
        #expect(abs(lateness.sum - 1_306.676327) < 1e-5)
        let maximum = try #require(value(families, "prefect_flow_run_max_lateness_seconds", queueLabels(Recorded.defaultQueue)))
        #expect(abs(maximum - 633.892109) < 1e-5)

        for queue in Recorded.allQueues where queue != Recorded.defaultQueue {
            #expect(histogram(families, "prefect_flow_run_lateness_seconds", queueLabels(queue))?.count == 0, "\(queue)")
            #expect(value(families, "prefect_flow_run_max_lateness_seconds", queueLabels(queue)) == 0, "\(queue)")
        }
        #expect(labelSets(families, "prefect_flow_run_lateness_seconds") == Recorded.allQueues.map(queueLabels))
    }

    @Test(arguments: [
        (Recorded.defaultQueue, "2026-11-23T08:51:26.569025Z"),
        (Recorded.highQueue, "2026-11-23T08:51:26.649985Z"),
        (QueueKey.none, "2026-11-23T08:51:26.938419Z"),
    ])
    func runningHistogramAndMaximum(queue: QueueKey, started: String) throws {
        let families = try Recorded.families(now: now)
        let elapsed = now - (try epoch(started))
        let running = try #require(histogram(families, "prefect_flow_run_running_seconds", queueLabels(queue)))
        #expect(running.upperBounds == AggregationSettings.defaultRunningBuckets)
        #expect(running.count == 1)
        #expect(running.cumulativeCounts.first == 1)
        #expect(abs(running.sum - elapsed) < 1e-6)
        #expect(elapsed > 33 && elapsed < 34)
        let maximum = try #require(value(families, "prefect_flow_run_max_running_seconds", queueLabels(queue)))
        #expect(abs(maximum - elapsed) < 1e-6)
    }

    @Test func queuesWithNothingRunningHaveZeros() throws {
        let families = try Recorded.families(now: now)
        for queue in [Recorded.pausedQueue, Recorded.pausedPoolQueue] {
            #expect(histogram(families, "prefect_flow_run_running_seconds", queueLabels(queue))?.count == 0)
            #expect(value(families, "prefect_flow_run_max_running_seconds", queueLabels(queue)) == 0)
        }
    }

    @Test func upcomingCountsArePassedThroughAndZeroFilled() throws {
        let families = try Recorded.families(now: now)
        #expect(labelSets(families, "prefect_flow_runs_upcoming") == Recorded.allQueues.map(queueLabels))
        #expect(value(families, "prefect_flow_runs_upcoming", queueLabels(Recorded.defaultQueue)) == 1)
        for queue in Recorded.allQueues where queue != Recorded.defaultQueue {
            #expect(value(families, "prefect_flow_runs_upcoming", queueLabels(queue)) == 0)
        }
    }

    @Test func workPools() throws {
        let families = try Recorded.families(now: now)
        #expect(labelSets(families, "prefect_work_pool_info") == [
            ["work_pool": Recorded.pausedPool, "type": "kubernetes"], ["work_pool": Recorded.pool, "type": "process"],
        ])
        let status = { (pool: String, status: String) in
            value(families, "prefect_work_pool_status", ["work_pool": pool, "status": status])
        }
        #expect(status(Recorded.pausedPool, "PAUSED") == 1)
        #expect(status(Recorded.pausedPool, "READY") == 0)
        #expect(status(Recorded.pausedPool, "NOT_READY") == 0)
        #expect(status(Recorded.pool, "READY") == 1)
        #expect(status(Recorded.pool, "NOT_READY") == 0)
        #expect(status(Recorded.pool, "PAUSED") == 0)
        #expect(labelSets(families, "prefect_work_pool_status").count == 6)
        #expect(labelSets(families, "prefect_work_pool_concurrency_limit") == [["work_pool": Recorded.pool]])
        #expect(value(families, "prefect_work_pool_concurrency_limit", ["work_pool": Recorded.pool]) == 5)
    }

    @Test func workersAndHeartbeats() throws {
        let families = try Recorded.families(now: now)
        #expect(value(families, "prefect_work_pool_workers", ["work_pool": Recorded.pool, "status": "ONLINE"]) == 2)
        #expect(value(families, "prefect_work_pool_workers", ["work_pool": Recorded.pool, "status": "OFFLINE"]) == 0)
        #expect(value(families, "prefect_work_pool_workers", ["work_pool": Recorded.pausedPool, "status": "ONLINE"]) == 0)
        #expect(value(families, "prefect_work_pool_workers", ["work_pool": Recorded.pausedPool, "status": "OFFLINE"]) == 0)
        // The later of w1 (08:51:26.158444) and w2 (08:51:26.173162); none for the pool without workers.
        #expect(labelSets(families, "prefect_work_pool_last_worker_heartbeat_timestamp_seconds") == [["work_pool": Recorded.pool]])
        #expect(value(families, "prefect_work_pool_last_worker_heartbeat_timestamp_seconds", ["work_pool": Recorded.pool])
            == (try epoch("2026-11-23T08:51:26.173162Z")))
    }

    @Test func workQueues() throws {
        let families = try Recorded.families(now: now)
        let expected: [(QueueKey, String)] = [
            (Recorded.pausedPoolQueue, "NOT_READY"), (Recorded.defaultQueue, "READY"), (Recorded.highQueue, "NOT_READY"),
            // Prefect reports NOT_READY for a paused queue; the exporter says PAUSED.
            (Recorded.pausedQueue, "PAUSED"),
        ]
        for (queue, current) in expected {
            for candidate in ["READY", "NOT_READY", "PAUSED"] {
                var labels = queueLabels(queue)
                labels["status"] = candidate
                #expect(value(families, "prefect_work_queue_status", labels) == (candidate == current ? 1 : 0), "\(queue) \(candidate)")
            }
        }
        #expect(labelSets(families, "prefect_work_queue_status").count == 12)
        #expect(labelSets(families, "prefect_work_queue_priority") == expected.map { queueLabels($0.0) })
        #expect(expected.map { value(families, "prefect_work_queue_priority", queueLabels($0.0)) } == [1, 1, 2, 3])
        #expect(labelSets(families, "prefect_work_queue_concurrency_limit") == [queueLabels(Recorded.highQueue)])
        #expect(value(families, "prefect_work_queue_concurrency_limit", queueLabels(Recorded.highQueue)) == 3)
        #expect(labelSets(families, "prefect_work_queue_last_polled_timestamp_seconds") == [queueLabels(Recorded.defaultQueue)])
        #expect(value(families, "prefect_work_queue_last_polled_timestamp_seconds", queueLabels(Recorded.defaultQueue))
            == (try epoch("2026-11-23T08:51:32.387048Z")))
    }

    @Test func deployments() throws {
        let families = try Recorded.families(now: now)
        #expect(labelSets(families, "prefect_deployment_info") == [
            ["deployment": Recorded.deploy, "flow": "fixture-flow", "work_pool": Recorded.pool, "work_queue": "default"],
            ["deployment": Recorded.deployHigh, "flow": "fixture-flow", "work_pool": Recorded.pool, "work_queue": "fixture-high"],
            ["deployment": Recorded.served, "flow": "fixture-other-flow", "work_pool": "", "work_queue": ""],
        ])
        let status = { (deployment: String, status: String) in
            value(families, "prefect_deployment_status", ["deployment": deployment, "status": status])
        }
        #expect(status(Recorded.deploy, "READY") == 1)
        #expect(status(Recorded.deploy, "NOT_READY") == 0)
        #expect(status(Recorded.deployHigh, "READY") == 0)
        #expect(status(Recorded.deployHigh, "NOT_READY") == 1)
        #expect(status(Recorded.served, "NOT_READY") == 1)
        #expect(labelSets(families, "prefect_deployment_status").count == 6)
        #expect(value(families, "prefect_deployment_paused", ["deployment": Recorded.deploy]) == 0)
        #expect(value(families, "prefect_deployment_paused", ["deployment": Recorded.deployHigh]) == 1)
        #expect(value(families, "prefect_deployment_paused", ["deployment": Recorded.served]) == 0)
    }

    @Test func finishedRunsCountedByQueueDeploymentAndState() throws {
        let families = try Recorded.families(now: now)
        let series = try #require(families.first { $0.name == "prefect_flow_runs_finished_total" }).metrics
        #expect(series.count == 24)
        let nonZero = series.filter { $0.value != .number(0) }.map { labelDictionary($0) }
        #expect(nonZero == [
            ["work_pool": Recorded.pool, "work_queue": "default", "deployment": Recorded.deploy, "state_type": "CANCELLED"],
            ["work_pool": Recorded.pool, "work_queue": "default", "deployment": Recorded.deploy, "state_type": "COMPLETED"],
            ["work_pool": Recorded.pool, "work_queue": "fixture-high", "deployment": Recorded.deployHigh, "state_type": "FAILED"],
        ])
        #expect(series.filter { $0.value == .number(1) }.count == 3)
    }

    @Test func durationsOnlyForRunsThatRan() throws {
        let families = try Recorded.families(now: now)
        let completed = try #require(histogram(
            families, "prefect_flow_run_duration_seconds", queueLabels(Recorded.defaultQueue).merging(["state_type": "COMPLETED"]) { $1 }))
        #expect(completed.count == 1)
        #expect(completed.sum == 0.023582)
        #expect(completed.cumulativeCounts.first == 1)
        let failed = try #require(histogram(
            families, "prefect_flow_run_duration_seconds", queueLabels(Recorded.highQueue).merging(["state_type": "FAILED"]) { $1 }))
        #expect(failed.count == 1)
        #expect(failed.sum == 0.017406)
        // The run cancelled before it ran has a start_time but run_count 0: no duration.
        let cancelled = try #require(histogram(
            families, "prefect_flow_run_duration_seconds", queueLabels(Recorded.defaultQueue).merging(["state_type": "CANCELLED"]) { $1 }))
        #expect(cancelled.count == 0)
        #expect(labelSets(families, "prefect_flow_run_duration_seconds").count == 20)
    }

    @Test func startDelays() throws {
        let families = try Recorded.families(now: now)
        let delay = { (queue: QueueKey) in histogram(families, "prefect_flow_run_start_delay_seconds", queueLabels(queue)) }
        #expect(labelSets(families, "prefect_flow_run_start_delay_seconds") == Recorded.allQueues.map(queueLabels))
        // Ad-hoc run: 26.938419 - 26.915199.
        #expect(delay(.none)?.count == 1)
        #expect(abs((delay(.none)?.sum ?? -1) - 0.023220) < 1e-5)
        // hallowed-dog (0.044372) and fantastic-gerbil (0.076156); the cancelled run never started.
        #expect(delay(Recorded.defaultQueue)?.count == 2)
        #expect(abs((delay(Recorded.defaultQueue)?.sum ?? -1) - 0.120528) < 1e-5)
        // rustling-nautilus (0.041430) and fluorescent-stingray (0.045999).
        #expect(delay(Recorded.highQueue)?.count == 2)
        #expect(abs((delay(Recorded.highQueue)?.sum ?? -1) - 0.087429) < 1e-5)
        #expect(delay(Recorded.pausedQueue)?.count == 0)
        #expect(delay(Recorded.highQueue)?.cumulativeCounts.first == 2)
    }

    @Test func withoutTheDeploymentLabel() throws {
        let settings = AggregationSettings(includeDeploymentLabel: false)
        let families = try Recorded.families(now: now, settings: settings)
        for name in ["prefect_flow_runs", "prefect_flow_runs_late", "prefect_flow_runs_finished_total"] {
            let sets = labelSets(families, name)
            #expect(!sets.isEmpty, "\(name)")
            #expect(sets.allSatisfy { $0["deployment"] == nil }, "\(name)")
        }
        for family in families where family.name.hasPrefix("prefect_flow_run") {
            #expect(family.metrics.allSatisfy { !$0.labels.contains { $0.name == "deployment" } }, "\(family.name)")
        }
        // Five queues, ten known state names each; the ad-hoc run lands on the zero-filled no-pool queue.
        #expect(labelSets(families, "prefect_flow_runs").count == 50)
        #expect(value(families, "prefect_flow_runs", stateLabels(Recorded.defaultQueue, nil, "SCHEDULED", "Late")) == 2)
        #expect(value(families, "prefect_flow_runs", stateLabels(Recorded.defaultQueue, nil, "RUNNING", "Running")) == 1)
        #expect(value(families, "prefect_flow_runs", stateLabels(.none, nil, "RUNNING", "Running")) == 1)
        #expect(value(families, "prefect_flow_runs", stateLabels(.none, nil, "PENDING", "Pending")) == 0)
        #expect(value(families, "prefect_flow_runs_late", queueLabels(Recorded.defaultQueue)) == 3)
        #expect(value(families, "prefect_flow_runs_finished_total", queueLabels(Recorded.defaultQueue).merging(["state_type": "COMPLETED"]) { $1 }) == 1)
        #expect(labelSets(families, "prefect_flow_runs_late").count == 5)
        #expect(labelSets(families, "prefect_flow_runs_finished_total").count == 20)
    }

    @Test func withoutRunsWithoutPool() throws {
        let settings = AggregationSettings(includesRunsWithoutPool: false)
        let data = try Recorded.pollData()
        var trimmed = data
        trimmed.activeRuns = data.activeRuns.filter { $0.workPoolName != nil }
        trimmed.deployments = data.deployments.filter { $0.workPoolName != nil }
        trimmed.upcomingRuns = [Recorded.defaultQueue: 1]
        let history = RunHistory(startTime: Recorded.exporterStart, overlap: 60, settings: settings)
        let families = PrefectCollectors.build(from: trimmed, history: history, settings: settings, now: now)
        for family in families where family.name.hasPrefix("prefect_flow_run") {
            #expect(family.metrics.allSatisfy { labelDictionary($0)["work_pool"] != "" }, "\(family.name)")
        }
        #expect(labelSets(families, "prefect_flow_runs_upcoming").count == 4)
    }
}
