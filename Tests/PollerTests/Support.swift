import Aggregation
import Exposition
import Foundation
import HTTPClient
import Logging
import Collectors
import Poller
import PrefectAPI
import Testing
import Locking

/// JSON recorded from a real Prefect 3.8.8, shared with the Aggregation tests (this target has
/// no resources of its own, so the files are read from the source tree).
func recordedFixture(_ name: String) throws -> [UInt8] {
    let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("AggregationTests/Fixtures/\(name).json")
    return Array(try Data(contentsOf: url))
}

/// What the fake Prefect answers.
enum FakeMode: Sendable {
    case normal
    case transportFailure(HTTPClientError.Kind)
    case status(Int, headers: [String: String])
    /// Normal answers, except this status for requests whose path starts with `path`.
    case statusFor(path: String, status: Int)
    /// Normal answers, except this status for requests whose body contains `text`.
    case statusForBody(containing: String, status: Int)
}

/// A fake Prefect API that routes by URL path and answers with the recorded fixtures.
final class FakePrefect: HTTPTransport {
    static let baseURL = "http://prefect.test/api"

    private let mode = LockedValue(FakeMode.normal)
    private let log = LockedValue<[HTTPRequest]>([])
    /// Due runs served instead of the recorded ones, when set.
    let dueRunsJSON = LockedValue<[UInt8]?>(nil)
    /// In-flight runs served instead of the recorded ones, when set.
    let inFlightJSON = LockedValue<[UInt8]?>(nil)
    /// What `/v2/concurrency_limits/filter` answers.
    let concurrencyLimitsJSON = LockedValue(Array("[]".utf8))
    let fixtures: [String: [UInt8]]
    /// Status of `/admin/version` (404 on Prefect Cloud).
    let adminStatus: Int

    init(adminStatus: Int = 200) throws {
        var fixtures: [String: [UInt8]] = [:]
        for name in [
            "work_pools", "work_queues", "workers", "deployments", "flows", "flow_runs_in_flight", "flow_runs_scheduled_due",
            "flow_runs_finished", "flow_runs_started",
        ] {
            fixtures[name] = try recordedFixture(name)
        }
        self.fixtures = fixtures
        self.adminStatus = adminStatus
    }

    func set(_ mode: FakeMode) { self.mode.withLock { $0 = mode } }

    var requests: [HTTPRequest] { log.withLock { $0 } }
    var paths: [String] { requests.map { String($0.url.dropFirst(Self.baseURL.count)) } }
    /// The bodies of the requests after the first `count`, as text.
    func bodies(after count: Int) -> [String] { requests.dropFirst(count).map { String(decoding: $0.body ?? [], as: UTF8.self) } }

    func perform(_ request: HTTPRequest) async throws(HTTPClientError) -> HTTPResponse {
        log.withLock { $0.append(request) }
        switch mode.withLock({ $0 }) {
        case .transportFailure(let kind):
            throw HTTPClientError(kind: kind, message: "fake \(kind.rawValue)")
        case .status(let code, let headers):
            return HTTPResponse(status: code, headers: headers, body: Array(#"{"detail":"fake"}"#.utf8))
        case .statusFor(let path, let status):
            guard request.url.dropFirst(Self.baseURL.count).hasPrefix(path) else { return route(request) }
            return HTTPResponse(status: status, body: Array(#"{"detail":"fake"}"#.utf8))
        case .statusForBody(let text, let status):
            guard String(decoding: request.body ?? [], as: UTF8.self).contains(text) else { return route(request) }
            return HTTPResponse(status: status, body: Array(#"{"detail":"fake"}"#.utf8))
        case .normal:
            return route(request)
        }
    }

    private func route(_ request: HTTPRequest) -> HTTPResponse {
        let path = String(request.url.dropFirst(Self.baseURL.count))
        let body = String(decoding: request.body ?? [], as: UTF8.self)
        func ok(_ bytes: [UInt8]) -> HTTPResponse { HTTPResponse(status: 200, body: bytes) }
        func fixture(_ name: String) -> HTTPResponse { ok(fixtures[name] ?? []) }
        switch path {
        case "/version": return ok(Array(#""0.8.4""#.utf8))
        case "/admin/version":
            return adminStatus == 200 ? ok(Array(#""3.8.8""#.utf8)) : HTTPResponse(status: adminStatus, body: Array(#"{"detail":"Not Found"}"#.utf8))
        case "/work_pools/filter": return fixture("work_pools")
        case "/work_queues/filter": return fixture("work_queues")
        case "/work_pools/fixture-pool/workers/filter": return fixture("workers")
        case "/work_pools/fixture-paused-pool/workers/filter": return ok(Array("[]".utf8))
        case "/deployments/filter": return fixture("deployments")
        case "/flows/filter": return fixture("flows")
        case "/v2/concurrency_limits/filter": return ok(concurrencyLimitsJSON.withLock { $0 })
        case "/flow_runs/filter":
            if isScheduleLookup(body) { return ok(scheduleLookup(body)) }
            if body.contains(#""end_time""#) { return fixture("flow_runs_finished") }
            if body.contains(#""start_time""#) { return fixture("flow_runs_started") }
            if body.contains(#""next_scheduled_start_time""#) {
                // Sorted by next scheduled start (a stable sort, like SQLite's index order), then paged.
                let runs = dueRuns(matching: body).enumerated().sorted {
                    let (lhs, rhs) = ($0.element["next_scheduled_start_time"] as? String ?? "", $1.element["next_scheduled_start_time"] as? String ?? "")
                    return lhs == rhs ? $0.offset < $1.offset : lhs < rhs
                }.map(\.element)
                let paging = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
                let offset = paging["offset"] as? Int ?? 0
                let limit = paging["limit"] as? Int ?? 200
                let page = Array(runs.dropFirst(offset).prefix(limit))
                return ok(Array((try? JSONSerialization.data(withJSONObject: page)) ?? Data()))
            }
            return inFlightJSON.withLock { $0 }.map(ok) ?? fixture("flow_runs_in_flight")
        case "/flow_runs/count":
            if body.contains(#""next_scheduled_start_time":{"before_""#) {
                return ok(Array(String(dueRuns(matching: body).count).utf8))
            }
            // One upcoming run, in fixture-pool's queue "default" (asked for by its id).
            return ok(Array((body.contains(#""id":{"any_":["8d5ec824-86cf-4213-ae72-bf0f3e0faa9b"]}"#) ? "1" : "0").utf8))
        default:
            return HTTPResponse(status: 404, body: Array(#"{"detail":"Not Found"}"#.utf8))
        }
    }
}

extension FakePrefect {
    /// Whether a `/flow_runs/filter` body is a one-run lookup of one deployment.
    func isScheduleLookup(_ body: String) -> Bool {
        let request = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        return request["limit"] as? Int == 1 && body.contains(#""deployment_id""#)
    }

    /// A deployment's next SCHEDULED run, or its last run in one terminal state (one-run lookups),
    /// from the recorded runs.
    func scheduleLookup(_ body: String) -> [UInt8] {
        let request = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        let runFilter = request["flow_runs"] as? [String: Any] ?? [:]
        let deployment = ((runFilter["deployment_id"] as? [String: Any])?["any_"] as? [String])?.first
        let type = (((runFilter["state"] as? [String: Any])?["type"] as? [String: Any])?["any_"] as? [String])?.first
        func runs(_ name: String) -> [[String: Any]] {
            (try? JSONSerialization.jsonObject(with: Data(fixtures[name] ?? []))) as? [[String: Any]] ?? []
        }
        let candidates: [[String: Any]]
        if let type {
            candidates = runs("flow_runs_finished")
                .filter { $0["state_type"] as? String == type && $0["end_time"] is String }
                .sorted { ($0["end_time"] as? String ?? "") > ($1["end_time"] as? String ?? "") }
        } else {
            candidates = recordedDueRuns()
                .sorted { ($0["next_scheduled_start_time"] as? String ?? "") < ($1["next_scheduled_start_time"] as? String ?? "") }
        }
        let first = candidates.first { $0["deployment_id"] as? String == deployment }
        return Array((try? JSONSerialization.data(withJSONObject: first.map { [$0] } ?? [])) ?? Data("[]".utf8))
    }

    /// Filters the recorded due runs (or those set with ``setDueRuns(_:)``) the way Prefect would:
    /// by next scheduled start (`after_`, `before_`), state name (`any_` / `not_any_`), work pool
    /// name, work queue id, run id, or runs without a queue. Ignores paging: the fixtures are one page.
    func dueRuns(matching body: String) -> [[String: Any]] {
        guard let filter = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let runs = try? JSONSerialization.jsonObject(with: Data(dueRunsJSON.withLock { $0 } ?? fixtures["flow_runs_scheduled_due"] ?? [])) as? [[String: Any]],
              let queues = try? JSONSerialization.jsonObject(with: Data(fixtures["work_queues"] ?? [])) as? [[String: Any]]
        else { return [] }
        let runFilter = filter["flow_runs"] as? [String: Any] ?? [:]
        let start = runFilter["next_scheduled_start_time"] as? [String: String] ?? [:]
        let names = (runFilter["state"] as? [String: Any])?["name"] as? [String: [String]]
        let pools = ((filter["work_pools"] as? [String: Any])?["name"] as? [String: [String]])?["any_"]
        let queueIDs = ((filter["work_pool_queues"] as? [String: Any])?["id"] as? [String: [String]])?["any_"]
        let withoutQueue = runFilter["work_queue_name"] != nil
        let deploymentIDs = (runFilter["deployment_id"] as? [String: [String]])?["any_"]
        let ids = (runFilter["id"] as? [String: [String]])?["any_"]
        return runs.filter { run in
            let name = run["state_name"] as? String ?? ""
            let pool = run["work_pool_name"] as? String
            let queue = run["work_queue_name"] as? String
            // Same-length UTC timestamps with microseconds compare as strings.
            let scheduled = run["next_scheduled_start_time"] as? String ?? ""
            if let after = start["after_"], scheduled < after { return false }
            if let before = start["before_"], scheduled > before { return false }
            if let any = names?["any_"], !any.contains(name) { return false }
            if let notAny = names?["not_any_"], notAny.contains(name) { return false }
            if let pools, !pools.contains(pool ?? "") { return false }
            if withoutQueue, queue != nil { return false }
            if let deploymentIDs, !deploymentIDs.contains(run["deployment_id"] as? String ?? "") { return false }
            if let ids, !ids.contains(run["id"] as? String ?? "") { return false }
            if let queueIDs {
                let matches = queues.contains { candidate in
                    queueIDs.contains(candidate["id"] as? String ?? "") && candidate["name"] as? String == queue
                        && candidate["work_pool_name"] as? String == pool
                }
                if !matches { return false }
            }
            return true
        }
    }

    /// Replaces the due runs the fake serves (a JSON array of flow runs).
    func setDueRuns(_ runs: [[String: Any]]) {
        let json = (try? JSONSerialization.data(withJSONObject: runs)).map(Array.init)
        dueRunsJSON.withLock { $0 = json }
    }

    /// The recorded due runs, as JSON objects.
    func recordedDueRuns() -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(fixtures["flow_runs_scheduled_due"] ?? []))) as? [[String: Any]] ?? []
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let time: LockedValue<Double>
    init(_ start: Double) { time = LockedValue(start) }
    var now: Double { time.withLock { $0 } }
    func set(_ value: Double) { time.withLock { $0 = value } }
    func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
}

/// Every snapshot the poller published.
final class Snapshots: Sendable {
    private let all = LockedValue<[PollerSnapshot]>([])
    func append(_ snapshot: PollerSnapshot) { all.withLock { $0.append(snapshot) } }
    var count: Int { all.withLock { $0.count } }
    var last: PollerSnapshot? { all.withLock { $0.last } }
}

/// 2026-11-23T08:51:00Z, shortly before the recorded runs were created.
let exporterStart = 1_795_423_860.0
/// 2026-11-23T08:52:00Z.
let firstPoll = 1_795_423_920.0

struct Harness {
    let fake: FakePrefect
    let clock: TestClock
    let snapshots: Snapshots
    let statistics: RequestStatistics
    let poller: Poller

    init(
        adminStatus: Int = 200, retries: Int = 0, maxStaleness: Duration = .seconds(300),
        selection: WorkPoolSelection = .all, maxRequestsPerMinute: Int? = nil
    ) throws {
        fake = try FakePrefect(adminStatus: adminStatus)
        clock = TestClock(exporterStart)
        snapshots = Snapshots()
        statistics = RequestStatistics()
        let client = PrefectClient(
            configuration: PrefectClientConfiguration(baseURL: FakePrefect.baseURL, retries: retries, retryBaseDelay: .milliseconds(1)),
            transport: fake,
            // Retry-After holds and budgets follow the test's clock, as the poller's skips do.
            pacer: RequestPacer(budgetPerMinute: maxRequestsPerMinute, clock: { [clock] in clock.now }, sleep: { [clock] in clock.advance($0) }),
            observer: statistics.record)
        let clock = clock
        let snapshots = snapshots
        poller = Poller(
            client: client,
            configuration: PollerConfiguration(
                interval: .seconds(30), maxStaleness: maxStaleness,
                aggregation: AggregationSettings(includesRunsWithoutPool: selection.includes("")),
                workPoolSelection: selection),
            statistics: statistics,
            logger: Logger(label: "poller-tests", factory: { _ in SwiftLogNoOpLogHandler() }),
            clock: { clock.now },
            publish: { snapshots.append($0) })
    }

    /// Polls at `time` and returns the report and the snapshot it published.
    func poll(at time: Double) async throws -> (report: PollReport, snapshot: PollerSnapshot) {
        clock.set(time)
        let before = snapshots.count
        let report = await poller.pollOnce()
        #expect(snapshots.count == before + 1)
        return (report, try #require(snapshots.last))
    }
}

// MARK: Reading families

func labelDictionary(_ metric: Metric) -> [String: String] {
    Dictionary(metric.labels.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
}

func value(_ families: [MetricFamily], _ name: String, _ labels: [String: String] = [:]) -> Double? {
    guard let metric = families.first(where: { $0.name == name })?.metrics.first(where: { labelDictionary($0) == labels }),
          case .number(let number) = metric.value
    else { return nil }
    return number
}

func has(_ families: [MetricFamily], _ name: String) -> Bool {
    families.contains { $0.name == name && !$0.metrics.isEmpty }
}

/// The Prefect-derived families the exporter serves after a good poll.
let prefectFamilyNames = [
    "prefect_server_info", "prefect_work_pool_info", "prefect_work_pool_status", "prefect_work_queue_status",
    "prefect_deployment_info", "prefect_flow_runs", "prefect_flow_runs_late", "prefect_flow_runs_finished_total",
]

/// The exporter's own families, served whatever Prefect does.
let exporterFamilyNames = [
    "prefect_up", "prefect_exporter_poll_duration_seconds", "prefect_exporter_polls_total", "prefect_exporter_collector_success",
]

/// Runs /bin/gzip over bytes.
func runGzip(_ arguments: [String], input: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/bin/gzip") ? "/bin/gzip" : "/usr/bin/gzip")
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    let writer = Thread {
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
    }
    writer.start()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "gzip \(arguments) exited \(process.terminationStatus)")
    return Array(output)
}
