import Foundation
import PrefectAPI
import Testing

/// Decoding of JSON recorded from a real Prefect 3.8.8 server (`Fixtures/*.json`, trimmed to the
/// `fixture-` objects) and of a few hand-made edge cases.
@Suite("Decoding")
struct DecodingTests {
    @Test func workPools() throws {
        let pools = try decodeFixture([WorkPool].self, "work_pools")
        #expect(pools == [
            WorkPool(
                id: "559305f5-b2d1-4b48-9dd0-33d240f172d7", name: "fixture-paused-pool", type: "kubernetes", status: "PAUSED",
                isPaused: true, concurrencyLimit: nil),
            WorkPool(
                id: "de972eeb-1c54-473a-8e3d-e52c3ca34dcb", name: "fixture-pool", type: "process", status: "READY",
                isPaused: false, concurrencyLimit: 5, activeSlots: 3),
        ])
    }

    @Test func workQueues() throws {
        let queues = try decodeFixture([WorkQueue].self, "work_queues")
        #expect(queues == [
            WorkQueue(
                id: "8d5ec824-86cf-4213-ae72-bf0f3e0faa9b", name: "default", workPoolName: "fixture-pool", status: "READY",
                isPaused: false, concurrencyLimit: nil, priority: 1, lastPolled: try epoch("2026-11-23T08:51:32.387048Z")),
            WorkQueue(
                id: "b0788412-98eb-4d38-b472-024e798e2878", name: "default", workPoolName: "fixture-paused-pool",
                status: "NOT_READY", isPaused: false, concurrencyLimit: nil, priority: 1, lastPolled: nil),
            WorkQueue(
                id: "c4c1ed36-5d05-4882-ac5b-bff17e97348f", name: "fixture-high", workPoolName: "fixture-pool",
                status: "NOT_READY", isPaused: false, concurrencyLimit: 3, priority: 2, lastPolled: nil, activeSlots: 1),
            WorkQueue(
                id: "f2ab9722-7d46-49f6-8b45-44f9e5c4c87f", name: "fixture-paused-queue", workPoolName: "fixture-pool",
                status: "NOT_READY", isPaused: true, concurrencyLimit: nil, priority: 3, lastPolled: nil),
        ])
        #expect(queues[0].lastPolled.map { abs($0 - 1_795_423_892.387048) < 1e-6 } == true)
    }

    @Test func workers() throws {
        let workers = try decodeFixture([Worker].self, "workers")
        #expect(workers == [
            Worker(name: "w2", status: "ONLINE", lastHeartbeatTime: try epoch("2026-11-23T08:51:26.173162Z")),
            Worker(name: "w1", status: "ONLINE", lastHeartbeatTime: try epoch("2026-11-23T08:51:26.158444Z")),
        ])
    }

    @Test func deployments() throws {
        let deployments = try decodeFixture([Deployment].self, "deployments")
        #expect(deployments == [
            Deployment(
                id: "e99041c8-6266-4f3c-880e-894f6791e64b", name: "fixture-deploy", flowID: "5f86d070-6cba-4507-8b18-fec705a07548",
                workPoolName: "fixture-pool", workQueueName: "default", status: "READY", paused: false),
            Deployment(
                id: "4c8c12eb-54ae-439a-94a2-7f17a6f0f14f", name: "fixture-deploy-high",
                flowID: "5f86d070-6cba-4507-8b18-fec705a07548", workPoolName: "fixture-pool", workQueueName: "fixture-high",
                status: "NOT_READY", paused: true),
            Deployment(
                id: "cfd1575a-39ec-4724-96d0-156a920f25f8", name: "fixture-served", flowID: "cc19a622-5e94-4d19-bd71-baf17b9556c7",
                workPoolName: nil, workQueueName: nil, status: "NOT_READY", paused: false),
        ])
    }

    @Test func flows() throws {
        let flows = try decodeFixture([Flow].self, "flows")
        #expect(flows == [
            Flow(id: "5f86d070-6cba-4507-8b18-fec705a07548", name: "fixture-flow"),
            Flow(id: "cc19a622-5e94-4d19-bd71-baf17b9556c7", name: "fixture-other-flow"),
        ])
    }

    @Test func flowRunsKeepEveryFieldTheExporterUses() throws {
        let runs = try decodeFixture([FlowRun].self, "flow_runs")
        #expect(runs.count == 11)
        let byID = Dictionary(uniqueKeysWithValues: runs.map { ($0.id, $0) })

        #expect(byID["e5bf4cda-06df-4751-863b-c002feb02dd2"] == FlowRun(
            id: "e5bf4cda-06df-4751-863b-c002feb02dd2", deploymentID: nil, workPoolName: nil, workQueueName: nil,
            stateType: .running, stateName: "Running", expectedStartTime: try epoch("2026-11-23T08:51:26.915199Z"),
            nextScheduledStartTime: nil, startTime: try epoch("2026-11-23T08:51:26.938419Z"), endTime: nil, totalRunTime: 0,
            runCount: 1, name: "fixture-adhoc-run"))

        #expect(byID["e1824c22-a53b-494f-a715-edae75aedadf"] == FlowRun(
            id: "e1824c22-a53b-494f-a715-edae75aedadf", deploymentID: "e99041c8-6266-4f3c-880e-894f6791e64b",
            workPoolName: "fixture-pool", workQueueName: "default", stateType: .scheduled, stateName: "Scheduled",
            expectedStartTime: try epoch("2026-11-23T08:51:26.375199Z"),
            nextScheduledStartTime: try epoch("2026-11-23T08:51:21.107891Z"), runCount: 0, name: "thankful-eel"))

        #expect(byID["b1e284bf-281f-43a4-bd16-fd646b2efa1c"] == FlowRun(
            id: "b1e284bf-281f-43a4-bd16-fd646b2efa1c", deploymentID: "e99041c8-6266-4f3c-880e-894f6791e64b",
            workPoolName: "fixture-pool", workQueueName: "default", stateType: .scheduled, stateName: "Late",
            expectedStartTime: try epoch("2026-11-23T08:51:26.293599Z"),
            nextScheduledStartTime: try epoch("2026-11-23T08:41:26.107891Z"), runCount: 0, name: "fearless-robin"))

        #expect(byID["c6a78029-3df8-4b15-bbb3-f3752ac3f5f4"] == FlowRun(
            id: "c6a78029-3df8-4b15-bbb3-f3752ac3f5f4", deploymentID: "e99041c8-6266-4f3c-880e-894f6791e64b",
            workPoolName: "fixture-pool", workQueueName: "default", stateType: .completed, stateName: "Completed",
            expectedStartTime: try epoch("2026-11-23T08:51:26.687204Z"), nextScheduledStartTime: nil,
            startTime: try epoch("2026-11-23T08:51:26.731576Z"), endTime: try epoch("2026-11-23T08:51:26.755158Z"),
            totalRunTime: 0.023582, runCount: 1, name: "hallowed-dog"))

        #expect(byID["815d739a-7fb6-48ed-a1e6-6a64c698aa3e"] == FlowRun(
            id: "815d739a-7fb6-48ed-a1e6-6a64c698aa3e", deploymentID: "4c8c12eb-54ae-439a-94a2-7f17a6f0f14f",
            workPoolName: "fixture-pool", workQueueName: "fixture-high", stateType: .failed, stateName: "Failed",
            expectedStartTime: try epoch("2026-11-23T08:51:26.792191Z"), startTime: try epoch("2026-11-23T08:51:26.833621Z"),
            endTime: try epoch("2026-11-23T08:51:26.851027Z"), totalRunTime: 0.017406, runCount: 1, name: "rustling-nautilus"))

        #expect(byID["46f6bad4-8226-4af4-9cb3-25b8968e55eb"]?.stateType == .pending)
        #expect(byID["46f6bad4-8226-4af4-9cb3-25b8968e55eb"]?.startTime == nil)
        // Prefect stamps start_time on a run cancelled before it ran; run_count says it never ran.
        let cancelled = try #require(byID["3e2096f3-9069-4942-8cd4-82972060d71d"])
        #expect(cancelled.stateType == .cancelled)
        #expect(cancelled.startTime == (try epoch("2026-11-23T08:51:26.894759Z")))
        #expect(cancelled.endTime == cancelled.startTime)
        #expect(cancelled.runCount == 0)
        #expect(cancelled.hasRun == false)
        #expect(runs.filter(\.hasRun).count == 5)
        #expect(byID["87f49eb9-d5e4-435b-969d-e6174de07221"]?.nextScheduledStartTime == (try epoch("2026-11-23T09:51:26.107891Z")))

        var counts: [String: Int] = [:]
        for run in runs { counts["\(run.stateType?.rawValue ?? "-")/\(run.stateName ?? "-")", default: 0] += 1 }
        #expect(counts == [
            "SCHEDULED/Scheduled": 2, "SCHEDULED/Late": 2, "PENDING/Pending": 1, "RUNNING/Running": 3,
            "COMPLETED/Completed": 1, "FAILED/Failed": 1, "CANCELLED/Cancelled": 1,
        ])
    }

    @Test func recordedTimesDecodeToExactEpochSeconds() throws {
        let runs = try decodeFixture([FlowRun].self, "flow_runs")
        let completed = try #require(runs.first { $0.id == "c6a78029-3df8-4b15-bbb3-f3752ac3f5f4" })
        let start = try #require(completed.startTime)
        let end = try #require(completed.endTime)
        #expect(abs(start - 1_795_423_886.731576) < 1e-6)
        #expect(abs(end - 1_795_423_886.755158) < 1e-6)
        // Prefect's total_run_time equals end - start for a run that ran once.
        #expect(abs((end - start) - completed.totalRunTime) < 1e-5)
    }

    @Test func unknownStateTypeAndFieldsAreTolerated() throws {
        let runs = try decodeFixture([FlowRun].self, "handmade_flow_runs_edge_cases")
        try #require(runs.count == 4)

        let unknown = runs[0]
        #expect(unknown.id == "edge-unknown-state")
        #expect(unknown.stateType == StateType(rawValue: "ARCHIVED"))
        #expect(unknown.stateType?.rawValue == "ARCHIVED")
        #expect(unknown.stateName == "Archived")
        #expect(unknown.totalRunTime == 12)
        #expect(unknown.startTime == 1_795_424_400)
        #expect(unknown.endTime == 1_795_428_012.5)
        #expect(unknown.deploymentID == nil)
        #expect(unknown.runCount == nil)
        #expect(unknown.hasRun == true)
    }

    @Test(arguments: [1, 2])
    func missingAndNullOptionalFieldsAreNil(index: Int) throws {
        let run = try decodeFixture([FlowRun].self, "handmade_flow_runs_edge_cases")[index]
        #expect(run == FlowRun(id: run.id, stateType: nil, stateName: nil))
        #expect(run.totalRunTime == 0)
        #expect(run.hasRun == false)
    }

    @Test func wrongTypesInOptionalFieldsBecomeNil() throws {
        let run = try decodeFixture([FlowRun].self, "handmade_flow_runs_edge_cases")[3]
        #expect(run.id == "edge-bad-times")
        #expect(run.stateType == .running)
        #expect(run.startTime == nil)
        #expect(run.expectedStartTime == nil)
        #expect(run.totalRunTime == 0)
    }

    @Test func identityFieldsAreRequired() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([FlowRun].self, from: Data(#"[{"state_type":"RUNNING"}]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([WorkPool].self, from: Data(#"[{"id":"x"}]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Deployment].self, from: Data(#"[{"id":"x","name":"d"}]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Worker].self, from: Data(#"[{"status":"ONLINE"}]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Flow].self, from: Data(try fixture("error_404_pool"))) }
    }

    @Test func lenientScalarsInPoolsAndQueues() throws {
        let pool = try JSONDecoder().decode(
            WorkPool.self, from: Data(#"{"id":"p","name":"n","concurrency_limit":4.0,"is_paused":"yes","status":7}"#.utf8))
        #expect(pool == WorkPool(id: "p", name: "n", type: "", status: nil, isPaused: false, concurrencyLimit: 4))
        let queue = try JSONDecoder().decode(
            WorkQueue.self, from: Data(#"{"id":"q","name":"legacy","priority":null,"last_polled":"garbage"}"#.utf8))
        #expect(queue == WorkQueue(
            id: "q", name: "legacy", workPoolName: nil, status: nil, isPaused: false, concurrencyLimit: nil, priority: 1,
            lastPolled: nil))
        let huge = try JSONDecoder().decode(WorkPool.self, from: Data(#"{"id":"p","name":"n","concurrency_limit":1e300}"#.utf8))
        #expect(huge.concurrencyLimit == nil)
    }
}

@Suite("FlowRun.hasRun")
struct HasRunTests {
    @Test(arguments: [
        (nil, nil, false), (nil, 1, false), (100.0, nil, true), (100.0, 0, false), (100.0, 1, true), (100.0, 3, true),
    ] as [(Double?, Int?, Bool)])
    func hasRunNeedsAStartAndANonZeroRunCount(startTime: Double?, runCount: Int?, hasRun: Bool) {
        let run = FlowRun(id: "r", stateType: .completed, stateName: "Completed", startTime: startTime, runCount: runCount)
        #expect(run.hasRun == hasRun)
    }
}
