@testable import Aggregation
import Collectors
import Exposition
import PrefectAPI
import Testing

private let queue = QueueKey(workPool: "pool", workQueue: "queue")
private let names = ["dep-1": "flow/one"]

private func finishedRun(
    _ id: String, _ type: StateType = .completed, end: Double?, start: Double? = 1_000, expected: Double? = nil,
    runTime: Double = 10, runCount: Int? = 1, pool: String? = "pool", deploymentID: String? = "dep-1"
) -> FlowRun {
    FlowRun(
        id: id, deploymentID: deploymentID, workPoolName: pool, workQueueName: pool == nil ? nil : "queue", stateType: type,
        stateName: type.rawValue.capitalized, expectedStartTime: expected, startTime: start, endTime: end,
        totalRunTime: runTime, runCount: runCount)
}

private func finishedKey(_ type: StateType, deployment: String = "flow/one", queue: QueueKey = queue) -> RunHistory.FinishedKey {
    RunHistory.FinishedKey(queue: queue, deployment: deployment, stateType: type)
}

private func durationKey(_ type: StateType, queue: QueueKey = queue) -> RunHistory.DurationKey {
    RunHistory.DurationKey(queue: queue, stateType: type)
}

private func history(start: Double = 1_000, overlap: Double = 60, settings: AggregationSettings = AggregationSettings()) -> RunHistory {
    RunHistory(startTime: start, overlap: overlap, settings: settings)
}

@Suite("RunHistory")
struct RunHistoryTests {
    @Test func aRunSeenInOverlappingWindowsIsCountedOnce() {
        var history = history()
        let run = finishedRun("r1", end: 1_020, start: 1_005, expected: 1_002)
        for poll in [1_030.0, 1_060, 1_090, 1_120] {
            history.ingest(finished: [run], started: [run], deploymentNames: names, pollTime: poll)
        }
        #expect(history.finished == [finishedKey(.completed): 1])
        #expect(history.durations[durationKey(.completed)]?.count == 1)
        #expect(history.durations[durationKey(.completed)]?.sum == 10)
        #expect(history.startDelays[queue]?.count == 1)
        #expect(history.startDelays[queue]?.sum == 3)
    }

    @Test func theSameRunTwiceInOnePollIsCountedOnce() {
        var history = history()
        let run = finishedRun("r1", end: 1_020)
        history.ingest(finished: [run, run, run], started: [run, run], deploymentNames: names, pollTime: 1_030)
        #expect(history.finished[finishedKey(.completed)] == 1)
        #expect(history.startDelays[queue]?.count == 1)
    }

    @Test func aRunThatFinishesAgainCountsAgain() {
        var history = history()
        history.ingest(finished: [finishedRun("r1", .failed, end: 1_020)], started: [], deploymentNames: names, pollTime: 1_030)
        // A manual retry: the same run finishes again, later, with a new end time.
        let retried = finishedRun("r1", .completed, end: 1_050)
        history.ingest(finished: [retried], started: [], deploymentNames: names, pollTime: 1_060)
        history.ingest(finished: [retried], started: [], deploymentNames: names, pollTime: 1_090)
        #expect(history.finished == [finishedKey(.failed): 1, finishedKey(.completed): 1])
    }

    @Test func runsThatEndedBeforeTheStartAreNeverCounted() {
        var history = history(start: 1_000)
        let old = finishedRun("old", end: 999.999, start: 990)
        let boundary = finishedRun("boundary", end: 1_000, start: 1_000)
        history.ingest(finished: [old, boundary], started: [old, boundary], deploymentNames: names, pollTime: 1_010)
        #expect(history.finished == [finishedKey(.completed): 1])
        #expect(history.startDelays[queue]?.count == 1)
        #expect(history.rememberedRuns == 2)
    }

    @Test func runsThatFellOutOfTheWindowAreNotCountedWhenSeenLate() {
        var history = history(start: 1_000, overlap: 60)
        history.ingest(finished: [], started: [], deploymentNames: names, pollTime: 1_200)
        #expect(history.queryStart == 1_140)
        // A run that ended before the window's start (a lagging server, say) is history now.
        history.ingest(finished: [finishedRun("late-commit", end: 1_100)], started: [], deploymentNames: names, pollTime: 1_230)
        #expect(history.finished.isEmpty)
    }

    @Test func queryStartTrailsThePollByTheOverlapAndNeverMovesBack() {
        var history = history(start: 1_000, overlap: 60)
        #expect(history.queryStart == 1_000)
        #expect(history.overlap == 60)
        var starts: [Double] = []
        for poll in [1_030.0, 1_100, 1_070, 1_200, 1_150, 1_260] {
            history.ingest(finished: [], started: [], deploymentNames: names, pollTime: poll)
            starts.append(history.queryStart)
        }
        #expect(starts == [1_000, 1_040, 1_040, 1_140, 1_140, 1_200])
    }

    @Test func rememberedRunsArePruned() {
        var history = history(start: 1_000, overlap: 60)
        let runs = [finishedRun("a", end: 1_010), finishedRun("b", end: 1_050), finishedRun("c", end: 1_100)]
        history.ingest(finished: runs, started: [], deploymentNames: names, pollTime: 1_055)
        // The window still starts at 1_000: nothing is forgotten yet.
        #expect(history.rememberedRuns == 3)
        history.ingest(finished: runs, started: [], deploymentNames: names, pollTime: 1_110)
        // Window start 1_050: "a" is forgotten.
        #expect(history.queryStart == 1_050)
        #expect(history.rememberedRuns == 2)
        history.ingest(finished: runs, started: [], deploymentNames: names, pollTime: 1_200)
        #expect(history.rememberedRuns == 0)
        // Forgetting never recounts.
        history.ingest(finished: runs, started: [], deploymentNames: names, pollTime: 1_230)
        #expect(history.finished == [finishedKey(.completed): 3])
    }

    @Test func startedRunsAreRememberedAndPrunedToo() {
        var history = history(start: 1_000, overlap: 60)
        let started = [
            FlowRun(id: "s1", workPoolName: "pool", workQueueName: "queue", stateType: .running, stateName: "Running",
                    expectedStartTime: 1_000, startTime: 1_010, runCount: 1),
            FlowRun(id: "s2", workPoolName: "pool", workQueueName: "queue", stateType: .running, stateName: "Running",
                    expectedStartTime: 1_090, startTime: 1_100, runCount: 1),
        ]
        history.ingest(finished: [], started: started, deploymentNames: names, pollTime: 1_055)
        #expect(history.rememberedRuns == 2)
        history.ingest(finished: [], started: started, deploymentNames: names, pollTime: 1_130)
        #expect(history.rememberedRuns == 1)
        #expect(history.startDelays[queue]?.count == 2)
        #expect(history.startDelays[queue]?.sum == 20)
    }

    @Test func startDelayObservations() {
        var history = history(settings: AggregationSettings(startDelayBuckets: [1, 5, 15]))
        let started = [
            finishedRun("on-time", end: nil, start: 1_010, expected: 1_010),
            finishedRun("late", end: nil, start: 1_012, expected: 1_005),
            finishedRun("early", end: nil, start: 1_004, expected: 1_020),
            finishedRun("no-expected", end: nil, start: 1_030, expected: nil),
            finishedRun("slow", end: nil, start: 1_040, expected: 1_010),
            finishedRun("never-ran", end: nil, start: 1_050, expected: 1_000, runCount: 0),
            finishedRun("not-started", end: nil, start: nil, expected: 1_000),
        ]
        history.ingest(finished: [], started: started, deploymentNames: names, pollTime: 1_060)
        let delays = history.startDelays[queue]
        #expect(delays?.upperBounds == [1, 5, 15])
        // 0, 7, 0 (early clamps to 0), 0 (no expected start), 30.
        #expect(delays?.count == 5)
        #expect(delays?.sum == 37)
        #expect(delays?.bucketCounts == [3, 0, 1, 1])
        #expect(history.startDelays.count == 1)
    }

    @Test func durationObservations() {
        var history = history(settings: AggregationSettings(durationBuckets: [10, 60]))
        let runs = [
            finishedRun("quick", .completed, end: 1_010, runTime: 4.5),
            finishedRun("long", .completed, end: 1_020, runTime: 75),
            finishedRun("crash", .crashed, end: 1_030, runTime: 30),
            finishedRun("weird", .failed, end: 1_040, runTime: -3),
            finishedRun("no-start", .cancelled, end: 1_050, start: nil, runTime: 0),
            finishedRun("cancelled-before-running", .cancelled, end: 1_051, start: 1_051, runTime: 0, runCount: 0),
            finishedRun("unknown-run-count", .failed, end: 1_052, runTime: 12, runCount: nil),
        ]
        history.ingest(finished: runs, started: [], deploymentNames: names, pollTime: 1_060)
        #expect(history.durations[durationKey(.completed)]?.bucketCounts == [1, 0, 1])
        #expect(history.durations[durationKey(.completed)]?.sum == 79.5)
        #expect(history.durations[durationKey(.crashed)]?.bucketCounts == [0, 1, 0])
        // A negative run time is clamped to 0; an unknown run count counts as having run.
        #expect(history.durations[durationKey(.failed)]?.bucketCounts == [1, 1, 0])
        #expect(history.durations[durationKey(.failed)]?.sum == 12)
        // Runs without a start, or with run_count 0, are counted as finished but get no duration.
        #expect(history.durations[durationKey(.cancelled)] == nil)
        #expect(history.finished[finishedKey(.cancelled)] == 2)
        #expect(history.finished[finishedKey(.failed)] == 2)
    }

    @Test func onlyTerminalRunsWithAnEndTimeAreCounted() {
        var history = history()
        let runs = [
            finishedRun("running", .running, end: 1_010),
            finishedRun("scheduled", .scheduled, end: 1_010),
            finishedRun("no-end", .completed, end: nil),
            FlowRun(id: "no-type", stateType: nil, stateName: nil, endTime: 1_010),
            finishedRun("unknown", StateType(rawValue: "ARCHIVED"), end: 1_010),
            finishedRun("ok", .crashed, end: 1_010),
        ]
        history.ingest(finished: runs, started: [], deploymentNames: names, pollTime: 1_020)
        #expect(history.finished == [finishedKey(.crashed): 1])
    }

    @Test func labelsComeFromTheRun() {
        var history = history()
        let runs = [
            finishedRun("adhoc", end: 1_010, pool: nil, deploymentID: nil),
            finishedRun("served", end: 1_011, pool: nil, deploymentID: "dep-1"),
            finishedRun("unknown-deployment", end: 1_012, deploymentID: "dep-gone"),
            finishedRun("pool-without-queue", end: 1_013, deploymentID: nil),
        ]
        var noQueue = runs[3]
        noQueue.workQueueName = nil
        history.ingest(finished: Array(runs.prefix(3)) + [noQueue], started: [], deploymentNames: names, pollTime: 1_020)
        #expect(history.finished == [
            finishedKey(.completed, deployment: "", queue: .none): 1,
            finishedKey(.completed, deployment: "flow/one", queue: .none): 1,
            // A deployment missing from the known list is labelled by its id, never merged with ad-hoc runs.
            finishedKey(.completed, deployment: "dep-gone", queue: queue): 1,
            finishedKey(.completed, deployment: "", queue: QueueKey(workPool: "pool", workQueue: "")): 1,
        ])
    }

    @Test func withoutTheDeploymentLabelRunsShareOneSeries() {
        var history = history(settings: AggregationSettings(includeDeploymentLabel: false))
        let runs = [finishedRun("a", end: 1_010), finishedRun("b", end: 1_011, deploymentID: nil)]
        history.ingest(finished: runs, started: [], deploymentNames: names, pollTime: 1_020)
        #expect(history.finished == [finishedKey(.completed, deployment: ""): 2])
    }

    @Test func historyFeedsTheCounterFamilies() {
        let settings = AggregationSettings(durationBuckets: [60], includesRunsWithoutPool: false)
        var history = history(settings: settings)
        let data = PollData(
            workQueues: [WorkQueue(
                id: "q", name: "queue", workPoolName: "pool", status: "READY", isPaused: false, concurrencyLimit: nil,
                priority: 1, lastPolled: nil)],
            deployments: [Deployment(
                id: "dep-1", name: "one", flowID: "f", workPoolName: "pool", workQueueName: "queue", status: "READY",
                paused: false)],
            flowNames: ["f": "flow"])
        let run = finishedRun("r", .failed, end: 1_010, runTime: 5)
        for poll in [1_020.0, 1_050, 1_080] {
            history.ingest(finished: [run], started: [], deploymentNames: data.deploymentNames, pollTime: poll)
        }
        let families = PrefectCollectors.build(from: data, history: history, settings: settings, now: 1_080)
        #expect(value(families, "prefect_flow_runs_finished_total", ["work_pool": "pool", "work_queue": "queue", "deployment": "flow/one", "state_type": "FAILED"]) == 1)
        #expect(value(families, "prefect_flow_runs_finished_total", ["work_pool": "pool", "work_queue": "queue", "deployment": "flow/one", "state_type": "COMPLETED"]) == 0)
        #expect(histogram(families, "prefect_flow_run_duration_seconds", ["work_pool": "pool", "work_queue": "queue", "state_type": "FAILED"])?.sum == 5)
    }
}
