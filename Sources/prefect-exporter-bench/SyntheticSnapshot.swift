import Aggregation
import Exposition
import Collectors
import PrefectAPI

/// A synthetic but realistic Prefect install, turned into metric families by the exporter's
/// own aggregation (`RunHistory.ingest` and `PrefectCollectors.build`), so the label shapes and
/// the mix of gauges, counters and histograms are exactly those of a real scrape.
struct SyntheticSnapshot {
    /// The size of the install.
    struct Shape: CustomStringConvertible {
        var pools: Int
        var queuesPerPool: Int
        var deployments: Int

        var description: String {
            "\(pools) pools, \(pools * queuesPerPool) queues, \(deployments) deployments"
        }
    }

    let shape: Shape
    let data: PollData
    let history: RunHistory
    let settings: AggregationSettings
    let now: Double

    /// The families one poll of this install yields.
    func families() -> [MetricFamily] {
        PrefectCollectors.build(from: data, history: history, settings: settings, now: now)
    }

    /// The shape whose exposition has about `target` series (sample lines), and its snapshot.
    /// Queues drive the histogram series (one queue per 250 target series, four per pool),
    /// deployments the rest; the number of deployments is solved from two trial builds.
    static func make(series target: Int, now: Double) -> (snapshot: SyntheticSnapshot, series: Int) {
        let queues = max(1, Int((Double(target) / 250).rounded()))
        let pools = max(1, (queues + 3) / 4)
        let queuesPerPool = max(1, (queues + pools - 1) / pools)
        // Trials with every queue targeted by a deployment (below that, queues without one get
        // `deployment=""` series, which would bend the line).
        func trial(_ deployments: Int) -> Int {
            let shape = Shape(pools: pools, queuesPerPool: queuesPerPool, deployments: deployments)
            return countSeries(TextFormat.encodeBytes(SyntheticSnapshot(shape: shape, now: now).families()))
        }
        let covering = pools * queuesPerPool * 2
        let base = trial(covering)
        let perDeployment = Double(trial(covering + 100) - base) / 100
        let deployments = max(0, covering + Int((Double(target - base) / perDeployment).rounded()))
        let snapshot = SyntheticSnapshot(
            shape: Shape(pools: pools, queuesPerPool: queuesPerPool, deployments: deployments), now: now)
        return (snapshot, countSeries(TextFormat.encodeBytes(snapshot.families())))
    }

    /// Sample lines of an exposition: what Prometheus counts as series (each histogram bucket is one).
    static func countSeries(_ text: [UInt8]) -> Int {
        var count = 0
        var atLineStart = true
        for byte in text {
            if atLineStart && byte != UInt8(ascii: "#") && byte != UInt8(ascii: "\n") { count += 1 }
            atLineStart = byte == UInt8(ascii: "\n")
        }
        return count
    }

    init(shape: Shape, now: Double) {
        self.shape = shape
        self.now = now
        let settings = AggregationSettings()
        self.settings = settings
        var random = SplitMix64(seed: 42)

        var pools: [WorkPool] = []
        var queues: [WorkQueue] = []
        var workers: [String: [Worker]] = [:]
        let types = ["kubernetes", "process", "docker", "ecs"]
        for p in 0..<shape.pools {
            let name = "prod-\(types[p % types.count])-\(pad(p, 2))"
            pools.append(WorkPool(
                id: uuid(1, p), name: name, type: types[p % types.count], status: p % 7 == 3 ? "NOT_READY" : "READY",
                isPaused: p % 11 == 5, concurrencyLimit: p % 3 == 0 ? 20 + p : nil))
            workers[name] = (0..<2).map { w in
                Worker(
                    name: "\(name)-worker-\(w)", status: (p + w) % 5 == 4 ? "OFFLINE" : "ONLINE",
                    lastHeartbeatTime: now - Double(5 + w * 7))
            }
            for q in 0..<shape.queuesPerPool {
                queues.append(WorkQueue(
                    id: uuid(2, p * 1000 + q), name: q == 0 ? "default" : "queue-\(pad(q, 2))", workPoolName: name,
                    status: q % 9 == 8 ? "NOT_READY" : "READY", isPaused: q % 13 == 12,
                    concurrencyLimit: q % 2 == 1 ? 10 : nil, priority: q + 1, lastPolled: now - Double(q % 30)))
            }
        }

        var deployments: [Deployment] = []
        var flowNames: [String: String] = [:]
        var activeRuns: [FlowRun] = []
        var finishedRuns: [FlowRun] = []
        for d in 0..<shape.deployments {
            let flowIndex = d / 3
            let flowID = uuid(3, flowIndex)
            flowNames[flowID] = "ingest-\(["orders", "events", "invoices", "users", "metrics"][flowIndex % 5])-\(pad(flowIndex, 3))"
            // Most deployments run in a pool; one in fifty is served (flow.serve()) and has none.
            let served = d % 50 == 49 || queues.isEmpty
            let queue = served ? nil : queues[d % queues.count]
            let deployment = Deployment(
                id: uuid(4, d), name: "\(["nightly", "hourly", "backfill", "adhoc"][d % 4])-\(pad(d, 4))", flowID: flowID,
                workPoolName: queue?.workPoolName, workQueueName: queue?.name, status: d % 6 == 5 ? "NOT_READY" : "READY",
                paused: d % 17 == 16)
            deployments.append(deployment)

            func run(_ kind: Int, _ type: StateType, _ stateName: String) -> FlowRun {
                FlowRun(
                    id: uuid(5, d * 100 + kind), deploymentID: deployment.id, workPoolName: queue?.workPoolName,
                    workQueueName: queue?.name, stateType: type, stateName: stateName,
                    expectedStartTime: now - 600, nextScheduledStartTime: now - 600, startTime: nil, endTime: nil)
            }
            // In flight: a tenth late, a tenth running, a few pending or waiting to retry.
            switch d % 10 {
            case 0:
                var late = run(0, .scheduled, "Late")
                late.nextScheduledStartTime = now - random.uniform(20, 7200)
                activeRuns.append(late)
            case 1, 4:
                var running = run(1, .running, "Running")
                running.startTime = now - random.uniform(5, 20_000)
                activeRuns.append(running)
            case 2: activeRuns.append(run(2, .pending, "Pending"))
            case 3:
                var retry = run(3, .scheduled, "AwaitingRetry")
                retry.nextScheduledStartTime = now - 3
                activeRuns.append(retry)
            default: break
            }
            // Finished in the last hour: mostly completed, some failed, a few crashed or cancelled.
            for k in 0..<4 {
                let type: StateType = [.completed, .completed, .failed, k % 2 == 0 ? .crashed : .cancelled][(d + k) % 4]
                let start = now - random.uniform(60, 3500)
                let runTime = random.uniform(0.5, min(3000, now - start))
                finishedRuns.append(FlowRun(
                    id: uuid(6, d * 100 + k), deploymentID: deployment.id, workPoolName: queue?.workPoolName,
                    workQueueName: queue?.name, stateType: type, stateName: type.rawValue.capitalized,
                    expectedStartTime: start - random.uniform(0, 90), startTime: start, endTime: start + runTime,
                    totalRunTime: runTime, runCount: 1))
            }
        }
        // A few ad-hoc runs with no deployment, pool or queue.
        for a in 0..<5 {
            activeRuns.append(FlowRun(
                id: uuid(7, a), stateType: .running, stateName: "Running", startTime: now - Double(30 * (a + 1))))
        }
        var upcoming: [QueueKey: Int] = [:]
        for queue in queues {
            upcoming[QueueKey(workPool: queue.workPoolName ?? "", workQueue: queue.name)] = Int(random.next() % 40)
        }
        upcoming[.none] = 0

        let data = PollData(
            serverVersion: "3.8.8", apiVersion: "0.8.4", workPools: pools, workQueues: queues, workers: workers,
            deployments: deployments, flowNames: flowNames, activeRuns: activeRuns, upcomingRuns: upcoming,
            finishedRuns: finishedRuns, startedRuns: finishedRuns)
        var history = RunHistory(startTime: now - 3600, overlap: 60, settings: settings)
        history.ingest(
            finished: data.finishedRuns, started: data.startedRuns, deploymentNames: data.deploymentNames, pollTime: now)
        self.data = data
        self.history = history
    }
}

/// A small deterministic generator, so every run of the benchmark renders the same snapshot.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * Double(next() >> 11) / Double(1 << 53)
    }
}

private func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}

/// A UUID-shaped id, unique per kind and index.
private func uuid(_ kind: Int, _ index: Int) -> String {
    let hex = String(index, radix: 16)
    return "0000000\(kind)-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
}
