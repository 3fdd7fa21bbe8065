import Aggregation
import Collectors
import Exposition
import PrefectAPI
import Testing

/// A small, hand-built poll rendered with `TextFormat.encode` and compared byte for byte.
@Suite("PrefectFamilies golden text")
struct GoldenTextTests {
    static let now = 1_700_000_100.0

    static let settings = AggregationSettings(
        lateAfter: 15, latenessBuckets: [60, 300], runningBuckets: [60], startDelayBuckets: [1, 5], durationBuckets: [10, 60],
        includeDeploymentLabel: true, includesRunsWithoutPool: false)

    static func data(
        pool: WorkPool = WorkPool(id: "p-id", name: "p", type: "process", status: "READY", isPaused: false, concurrencyLimit: 10)
    ) -> PollData {
        PollData(
            serverVersion: "3.8.8", apiVersion: "0.8.4",
            workPools: [pool],
            workQueues: [WorkQueue(
                id: "q-id", name: "q", workPoolName: "p", status: "READY", isPaused: false, concurrencyLimit: nil, priority: 1,
                lastPolled: 1_700_000_090.5)],
            workers: ["p": [Worker(name: "w1", status: "ONLINE", lastHeartbeatTime: 1_700_000_005)]],
            deployments: [Deployment(
                id: "d-id", name: "d", flowID: "f-id", workPoolName: "p", workQueueName: "q", status: "READY", paused: false)],
            flowNames: ["f-id": "f"],
            activeRuns: [
                FlowRun(
                    id: "running", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: .running,
                    stateName: "Running", expectedStartTime: 1_700_000_060, startTime: 1_700_000_070, runCount: 1),
                FlowRun(
                    id: "late", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: .scheduled,
                    stateName: "Late", expectedStartTime: 1_700_000_000, nextScheduledStartTime: 1_700_000_000, runCount: 0),
            ],
            upcomingRuns: [QueueKey(workPool: "p", workQueue: "q"): 2])
    }

    static func history(for data: PollData) -> RunHistory {
        var history = RunHistory(startTime: 1_700_000_000, overlap: 60, settings: settings)
        let finished = FlowRun(
            id: "done", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: .completed, stateName: "Completed",
            expectedStartTime: 1_700_000_008, startTime: 1_700_000_010, endTime: 1_700_000_050, totalRunTime: 40, runCount: 1)
        history.ingest(finished: [finished], started: [finished], deploymentNames: data.deploymentNames, pollTime: now)
        return history
    }

    @Test func fullExposition() {
        let data = Self.data()
        let text = TextFormat.encode(PrefectCollectors.build(from: data, history: Self.history(for: data), settings: Self.settings, now: Self.now))
        let runLabels = #"work_pool="p",work_queue="q",deployment="f/d""#
        let queueLabels = #"work_pool="p",work_queue="q""#
        let expected = """
            # HELP prefect_server_info Prefect server version (empty on Prefect Cloud) and API version; always 1.
            # TYPE prefect_server_info gauge
            prefect_server_info{version="3.8.8",api_version="0.8.4"} 1
            # HELP prefect_work_pool_info Work pools and their type; always 1.
            # TYPE prefect_work_pool_info gauge
            prefect_work_pool_info{work_pool="p",type="process"} 1
            # HELP prefect_work_pool_status Work pool status, one series per possible status (READY, NOT_READY, PAUSED); 1 on the current one.
            # TYPE prefect_work_pool_status gauge
            prefect_work_pool_status{work_pool="p",status="READY"} 1
            prefect_work_pool_status{work_pool="p",status="NOT_READY"} 0
            prefect_work_pool_status{work_pool="p",status="PAUSED"} 0
            # HELP prefect_work_pool_concurrency_limit Work pool concurrency limit; absent when unlimited.
            # TYPE prefect_work_pool_concurrency_limit gauge
            prefect_work_pool_concurrency_limit{work_pool="p"} 10
            # HELP prefect_work_pool_workers Workers of the pool by status.
            # TYPE prefect_work_pool_workers gauge
            prefect_work_pool_workers{work_pool="p",status="ONLINE"} 1
            prefect_work_pool_workers{work_pool="p",status="OFFLINE"} 0
            # HELP prefect_work_pool_last_worker_heartbeat_timestamp_seconds Most recent heartbeat of any worker of the pool, in seconds since the epoch.
            # TYPE prefect_work_pool_last_worker_heartbeat_timestamp_seconds gauge
            prefect_work_pool_last_worker_heartbeat_timestamp_seconds{work_pool="p"} 1700000005
            # HELP prefect_work_queue_status Work queue status, one series per possible status (READY, NOT_READY, PAUSED); 1 on the current one. A paused queue is PAUSED.
            # TYPE prefect_work_queue_status gauge
            prefect_work_queue_status{\(queueLabels),status="READY"} 1
            prefect_work_queue_status{\(queueLabels),status="NOT_READY"} 0
            prefect_work_queue_status{\(queueLabels),status="PAUSED"} 0
            # HELP prefect_work_queue_priority Work queue priority; 1 is the highest.
            # TYPE prefect_work_queue_priority gauge
            prefect_work_queue_priority{\(queueLabels)} 1
            # HELP prefect_work_queue_last_polled_timestamp_seconds When a worker last polled the queue, in seconds since the epoch; absent if never.
            # TYPE prefect_work_queue_last_polled_timestamp_seconds gauge
            prefect_work_queue_last_polled_timestamp_seconds{\(queueLabels)} 1700000090.5
            # HELP prefect_deployment_info Deployments with their flow and default work pool and queue; always 1.
            # TYPE prefect_deployment_info gauge
            prefect_deployment_info{deployment="f/d",flow="f",work_pool="p",work_queue="q"} 1
            # HELP prefect_deployment_status Deployment status, one series per possible status (READY, NOT_READY); 1 on the current one.
            # TYPE prefect_deployment_status gauge
            prefect_deployment_status{deployment="f/d",status="READY"} 1
            prefect_deployment_status{deployment="f/d",status="NOT_READY"} 0
            # HELP prefect_deployment_paused 1 if the deployment's schedules are paused, else 0.
            # TYPE prefect_deployment_paused gauge
            prefect_deployment_paused{deployment="f/d"} 0
            # HELP prefect_deployment_active_schedules Active schedules of the deployment (0 when it has none, or all are switched off).
            # TYPE prefect_deployment_active_schedules gauge
            prefect_deployment_active_schedules{deployment="f/d"} 0
            # HELP prefect_flow_runs Flow runs that are due or in flight, by state: every PENDING, RUNNING, PAUSED and CANCELLING run, and SCHEDULED runs whose scheduled start has passed. Future scheduled runs are in prefect_flow_runs_upcoming.
            # TYPE prefect_flow_runs gauge
            prefect_flow_runs{\(runLabels),state_type="CANCELLING",state_name="Cancelling"} 0
            prefect_flow_runs{\(runLabels),state_type="PAUSED",state_name="Paused"} 0
            prefect_flow_runs{\(runLabels),state_type="PAUSED",state_name="Suspended"} 0
            prefect_flow_runs{\(runLabels),state_type="PENDING",state_name="Pending"} 0
            prefect_flow_runs{\(runLabels),state_type="RUNNING",state_name="Retrying"} 0
            prefect_flow_runs{\(runLabels),state_type="RUNNING",state_name="Running"} 1
            prefect_flow_runs{\(runLabels),state_type="SCHEDULED",state_name="AwaitingConcurrencySlot"} 0
            prefect_flow_runs{\(runLabels),state_type="SCHEDULED",state_name="AwaitingRetry"} 0
            prefect_flow_runs{\(runLabels),state_type="SCHEDULED",state_name="Late"} 1
            prefect_flow_runs{\(runLabels),state_type="SCHEDULED",state_name="Scheduled"} 0
            # HELP prefect_flow_runs_upcoming SCHEDULED flow runs whose scheduled start is still in the future, counted per work queue.
            # TYPE prefect_flow_runs_upcoming gauge
            prefect_flow_runs_upcoming{\(queueLabels)} 2
            # HELP prefect_flow_runs_late SCHEDULED flow runs whose scheduled start is more than --prefect.late-after in the past, whatever their state name (Prefect's late-runs service may not have renamed them Late yet).
            # TYPE prefect_flow_runs_late gauge
            prefect_flow_runs_late{\(runLabels)} 1
            # HELP prefect_flow_run_lateness_seconds How late each currently late flow run is, in seconds.
            # TYPE prefect_flow_run_lateness_seconds histogram
            prefect_flow_run_lateness_seconds_bucket{\(queueLabels),le="60"} 0
            prefect_flow_run_lateness_seconds_bucket{\(queueLabels),le="300"} 1
            prefect_flow_run_lateness_seconds_bucket{\(queueLabels),le="+Inf"} 1
            prefect_flow_run_lateness_seconds_sum{\(queueLabels)} 100
            prefect_flow_run_lateness_seconds_count{\(queueLabels)} 1
            # HELP prefect_flow_run_max_lateness_seconds Lateness of the latest currently late flow run, in seconds; 0 when none is late.
            # TYPE prefect_flow_run_max_lateness_seconds gauge
            prefect_flow_run_max_lateness_seconds{\(queueLabels)} 100
            # HELP prefect_flow_run_running_seconds How long each RUNNING flow run has been running, in seconds.
            # TYPE prefect_flow_run_running_seconds histogram
            prefect_flow_run_running_seconds_bucket{\(queueLabels),le="60"} 1
            prefect_flow_run_running_seconds_bucket{\(queueLabels),le="+Inf"} 1
            prefect_flow_run_running_seconds_sum{\(queueLabels)} 30
            prefect_flow_run_running_seconds_count{\(queueLabels)} 1
            # HELP prefect_flow_run_max_running_seconds How long the longest RUNNING flow run has been running, in seconds; 0 when none runs.
            # TYPE prefect_flow_run_max_running_seconds gauge
            prefect_flow_run_max_running_seconds{\(queueLabels)} 30
            # HELP prefect_flow_runs_finished_total Flow runs that reached a terminal state (COMPLETED, FAILED, CRASHED, CANCELLED) since the exporter started; each run is counted once.
            # TYPE prefect_flow_runs_finished_total counter
            prefect_flow_runs_finished_total{\(runLabels),state_type="CANCELLED"} 0
            prefect_flow_runs_finished_total{\(runLabels),state_type="COMPLETED"} 1
            prefect_flow_runs_finished_total{\(runLabels),state_type="CRASHED"} 0
            prefect_flow_runs_finished_total{\(runLabels),state_type="FAILED"} 0
            # HELP prefect_flow_run_start_delay_seconds How long after their expected start time runs started (start_time - expected_start_time), for runs that started since the exporter started.
            # TYPE prefect_flow_run_start_delay_seconds histogram
            prefect_flow_run_start_delay_seconds_bucket{\(queueLabels),le="1"} 0
            prefect_flow_run_start_delay_seconds_bucket{\(queueLabels),le="5"} 1
            prefect_flow_run_start_delay_seconds_bucket{\(queueLabels),le="+Inf"} 1
            prefect_flow_run_start_delay_seconds_sum{\(queueLabels)} 2
            prefect_flow_run_start_delay_seconds_count{\(queueLabels)} 1
            # HELP prefect_flow_run_duration_seconds Run time (Prefect's total_run_time) of runs that finished after they had started, since the exporter started.
            # TYPE prefect_flow_run_duration_seconds histogram
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="CANCELLED",le="10"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="CANCELLED",le="60"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="CANCELLED",le="+Inf"} 0
            prefect_flow_run_duration_seconds_sum{\(queueLabels),state_type="CANCELLED"} 0
            prefect_flow_run_duration_seconds_count{\(queueLabels),state_type="CANCELLED"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="COMPLETED",le="10"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="COMPLETED",le="60"} 1
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="COMPLETED",le="+Inf"} 1
            prefect_flow_run_duration_seconds_sum{\(queueLabels),state_type="COMPLETED"} 40
            prefect_flow_run_duration_seconds_count{\(queueLabels),state_type="COMPLETED"} 1
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="CRASHED",le="10"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="CRASHED",le="60"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="CRASHED",le="+Inf"} 0
            prefect_flow_run_duration_seconds_sum{\(queueLabels),state_type="CRASHED"} 0
            prefect_flow_run_duration_seconds_count{\(queueLabels),state_type="CRASHED"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="FAILED",le="10"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="FAILED",le="60"} 0
            prefect_flow_run_duration_seconds_bucket{\(queueLabels),state_type="FAILED",le="+Inf"} 0
            prefect_flow_run_duration_seconds_sum{\(queueLabels),state_type="FAILED"} 0
            prefect_flow_run_duration_seconds_count{\(queueLabels),state_type="FAILED"} 0

            """
        #expect(text == expected)
    }

    @Test func pausedPoolWithoutStatusOrWorkersOrLimit() {
        var data = Self.data(pool: WorkPool(id: "p-id", name: "p", type: "docker", status: nil, isPaused: true, concurrencyLimit: nil))
        data.workers = [:]
        let families = PrefectCollectors.build(from: data, history: Self.history(for: data), settings: Self.settings, now: Self.now)
        let pools = families.filter { $0.name.hasPrefix("prefect_work_pool") }
        #expect(TextFormat.encode(pools) == """
            # HELP prefect_work_pool_info Work pools and their type; always 1.
            # TYPE prefect_work_pool_info gauge
            prefect_work_pool_info{work_pool="p",type="docker"} 1
            # HELP prefect_work_pool_status Work pool status, one series per possible status (READY, NOT_READY, PAUSED); 1 on the current one.
            # TYPE prefect_work_pool_status gauge
            prefect_work_pool_status{work_pool="p",status="READY"} 0
            prefect_work_pool_status{work_pool="p",status="NOT_READY"} 0
            prefect_work_pool_status{work_pool="p",status="PAUSED"} 1
            # HELP prefect_work_pool_workers Workers of the pool by status.
            # TYPE prefect_work_pool_workers gauge
            prefect_work_pool_workers{work_pool="p",status="ONLINE"} 0
            prefect_work_pool_workers{work_pool="p",status="OFFLINE"} 0

            """)
    }

    @Test func unknownStatesAndStateNamesGetTheirOwnSeries() {
        var data = Self.data()
        data.activeRuns = [
            FlowRun(id: "a", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: .running, stateName: "Resuming"),
            FlowRun(id: "b", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: .pending, stateName: nil),
            // Terminal and unknown state types are not "runs now".
            FlowRun(id: "c", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: .completed, stateName: "Completed"),
            FlowRun(id: "d", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: StateType(rawValue: "ARCHIVED"), stateName: "Archived"),
            FlowRun(id: "e", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: nil, stateName: nil),
            // A run listed twice (in flight and due, say) counts once.
            FlowRun(id: "a", deploymentID: "d-id", workPoolName: "p", workQueueName: "q", stateType: .running, stateName: "Resuming"),
        ]
        let families = PrefectCollectors.build(from: data, history: Self.history(for: data), settings: Self.settings, now: Self.now)
        let runs = families.filter { $0.name == "prefect_flow_runs" }
        let lines = TextFormat.encode(runs).split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasSuffix(" 0") }
        #expect(lines == [
            #"prefect_flow_runs{work_pool="p",work_queue="q",deployment="f/d",state_type="PENDING",state_name=""} 1"#,
            #"prefect_flow_runs{work_pool="p",work_queue="q",deployment="f/d",state_type="RUNNING",state_name="Resuming"} 1"#,
        ])
        #expect(runs.first?.metrics.count == 12)
    }

    @Test func labelValuesAreEscaped() {
        var data = Self.data()
        data.deployments[0].name = "say \"hi\"\\n"
        data.flowNames = ["f-id": "multi\nline"]
        let families = PrefectCollectors.build(from: data, history: Self.history(for: data), settings: Self.settings, now: Self.now)
        let text = TextFormat.encode(families.filter { $0.name == "prefect_deployment_paused" })
        #expect(text.hasSuffix(#"prefect_deployment_paused{deployment="multi\nline/say \"hi\"\\n"} 0"# + "\n"))
    }

    @Test func schedulingEdgeCases() {
        var data = Self.data()
        data.activeRuns = [
            // Exactly at the grace: not late. Just past it: late.
            FlowRun(id: "at", workPoolName: "p", workQueueName: "q", stateType: .scheduled, stateName: "Scheduled",
                    nextScheduledStartTime: Self.now - 15),
            FlowRun(id: "past", workPoolName: "p", workQueueName: "q", stateType: .scheduled, stateName: "Scheduled",
                    nextScheduledStartTime: Self.now - 15.5),
            // Without a next scheduled start, the expected start is used.
            FlowRun(id: "expected", workPoolName: "p", workQueueName: "q", stateType: .scheduled, stateName: "AwaitingRetry",
                    expectedStartTime: Self.now - 400),
            // Neither: counted by state, never late.
            FlowRun(id: "timeless", workPoolName: "p", workQueueName: "q", stateType: .scheduled, stateName: "Scheduled"),
            // A running run whose start is ahead of our clock is running for 0 s; one without a start is not observed.
            FlowRun(id: "skewed", workPoolName: "p", workQueueName: "q", stateType: .running, stateName: "Running",
                    startTime: Self.now + 5),
            FlowRun(id: "no-start", workPoolName: "p", workQueueName: "q", stateType: .running, stateName: "Running"),
        ]
        let families = PrefectCollectors.build(from: data, history: Self.history(for: data), settings: Self.settings, now: Self.now)
        let queue = ["work_pool": "p", "work_queue": "q"]
        var undeployed = queue
        undeployed["deployment"] = ""
        #expect(value(families, "prefect_flow_runs_late", undeployed) == 2)
        #expect(value(families, "prefect_flow_runs_late", ["work_pool": "p", "work_queue": "q", "deployment": "f/d"]) == 0)
        let lateness = histogram(families, "prefect_flow_run_lateness_seconds", queue)
        #expect(lateness?.count == 2)
        #expect(lateness?.sum == 415.5)
        #expect(lateness?.bucketCounts == [1, 0, 1])
        #expect(value(families, "prefect_flow_run_max_lateness_seconds", queue) == 400)
        #expect(value(families, "prefect_flow_runs", undeployed.merging(["state_type": "SCHEDULED", "state_name": "Scheduled"]) { $1 }) == 3)
        let running = histogram(families, "prefect_flow_run_running_seconds", queue)
        #expect(running?.count == 1)
        #expect(running?.sum == 0)
        #expect(value(families, "prefect_flow_run_max_running_seconds", queue) == 0)
        #expect(value(families, "prefect_flow_runs", undeployed.merging(["state_type": "RUNNING", "state_name": "Running"]) { $1 }) == 2)
    }

    @Test func workerStatusesAndHeartbeats() {
        var data = Self.data()
        data.workers = ["p": [
            Worker(name: "a", status: "ONLINE", lastHeartbeatTime: 1_700_000_001),
            Worker(name: "b", status: "OFFLINE", lastHeartbeatTime: 1_700_000_050),
            Worker(name: "c", status: nil, lastHeartbeatTime: nil),
            Worker(name: "d", status: "ONLINE", lastHeartbeatTime: 1_700_000_020),
        ]]
        let families = PrefectCollectors.build(from: data, history: Self.history(for: data), settings: Self.settings, now: Self.now)
        #expect(value(families, "prefect_work_pool_workers", ["work_pool": "p", "status": "ONLINE"]) == 2)
        // A worker without a status counts as OFFLINE.
        #expect(value(families, "prefect_work_pool_workers", ["work_pool": "p", "status": "OFFLINE"]) == 2)
        #expect(value(families, "prefect_work_pool_last_worker_heartbeat_timestamp_seconds", ["work_pool": "p"]) == 1_700_000_050)
    }

    @Test func statusFallbacks() {
        var data = Self.data(pool: WorkPool(id: "p-id", name: "p", type: "process", status: nil, isPaused: false, concurrencyLimit: nil))
        data.workQueues[0].status = nil
        data.deployments[0].status = nil
        let families = PrefectCollectors.build(from: data, history: Self.history(for: data), settings: Self.settings, now: Self.now)
        #expect(value(families, "prefect_work_pool_status", ["work_pool": "p", "status": "NOT_READY"]) == 1)
        #expect(value(families, "prefect_work_queue_status", ["work_pool": "p", "work_queue": "q", "status": "NOT_READY"]) == 1)
        #expect(value(families, "prefect_deployment_status", ["deployment": "f/d", "status": "NOT_READY"]) == 1)
        // A deployment whose flow is unknown is named by the flow id.
        data.flowNames = [:]
        #expect(data.deploymentNames == ["d-id": "f-id/d"])
    }
}
