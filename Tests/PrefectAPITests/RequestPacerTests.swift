import HTTPClient
import Locking
@testable import PrefectAPI
import Testing

/// A clock that only moves when the pacer sleeps (or a test advances it).
private final class ManualClock: Sendable {
    private let time = LockedValue(1000.0)
    private let slept = LockedValue<[Double]>([])
    var now: Double { time.withLock { $0 } }
    var sleeps: [Double] { slept.withLock { $0 } }
    func advance(_ seconds: Double) { time.withLock { $0 += seconds } }

    func pacer(budget: Int?) -> RequestPacer {
        RequestPacer(budgetPerMinute: budget, clock: { self.now }, sleep: { seconds in
            self.slept.withLock { $0.append(seconds) }
            self.advance(seconds)
        })
    }
}

@Suite struct RequestPacerTests {
    @Test(arguments: [
        ("/flow_runs/count", "flow_runs"), ("/flow_runs/filter", "flow_runs"), ("/work_pools/{name}/workers/filter", "work_pools"),
        ("/v2/concurrency_limits/filter", "v2/concurrency_limits"), ("/version", "version"), ("/admin/version", "admin"), ("", ""),
    ])
    func routes(endpoint: String, route: String) {
        #expect(RequestPacer.route(of: endpoint) == route)
    }

    @Test func unboundedNeverWaits() async throws {
        let clock = ManualClock()
        let pacer = clock.pacer(budget: nil)
        for _ in 0..<1000 { #expect(try await pacer.admit(route: "flow_runs") == .send) }
        #expect(clock.sleeps.isEmpty)
        #expect(pacer.minimumInterval(forPollSending: ["flow_runs": 1000]) == nil)
    }

    @Test func budgetBoundsEveryMinute() async throws {
        let clock = ManualClock()
        let pacer = clock.pacer(budget: 3)
        var sentAt: [Double] = []
        for _ in 0..<7 {
            #expect(try await pacer.admit(route: "flow_runs") == .send)
            sentAt.append(clock.now)
            clock.advance(1)
        }
        // No 61-second window holds more than 3 requests, and the pacer waited for that.
        for (index, time) in sentAt.enumerated() {
            #expect(sentAt[index...].prefix { $0 < time + RequestPacer.window }.count <= 3)
        }
        #expect(sentAt[3] == sentAt[0] + RequestPacer.window)
        #expect(pacer.status.waitedSeconds > 100)
        #expect(pacer.takePollCounts() == ["flow_runs": 7])
        #expect(pacer.takePollCounts() == [:])
    }

    @Test func retryAfterHoldsEveryRequestUnsent() async throws {
        let clock = ManualClock()
        let pacer = clock.pacer(budget: nil)
        pacer.hold(for: 5)
        #expect(try await pacer.admit(route: "work_pools") == .held(remaining: 5))
        clock.advance(2)
        pacer.hold(for: 1)  // a shorter hold does not shorten the longer one
        #expect(try await pacer.admit(route: "flow_runs") == .held(remaining: 3))
        clock.advance(3)
        #expect(try await pacer.admit(route: "flow_runs") == .send)
        #expect(pacer.takePollCounts() == ["flow_runs": 1])
    }

    @Test func a429TeachesTheRouteNinetyPercentOfWhatItSent() async throws {
        let clock = ManualClock()
        let pacer = clock.pacer(budget: nil)
        for _ in 0..<11 {
            _ = try await pacer.admit(route: "flow_runs")
            clock.advance(1)
        }
        _ = try await pacer.admit(route: "work_pools")
        // The 11th flow_runs request was refused: 10 were accepted, 9 a minute is the limit.
        #expect(pacer.learnFromRateLimit(route: "flow_runs") == 9)
        #expect(pacer.status.learnedPerMinute == ["flow_runs": 9])
        // A higher count later does not raise it.
        #expect(pacer.learnFromRateLimit(route: "flow_runs") == nil)
        // Other routes are not limited.
        let before = clock.now
        #expect(try await pacer.admit(route: "work_pools") == .send)
        #expect(clock.now == before)
        // Over it, a flow_runs request fails at once, unsent (and counted as the poll's), until
        // only 8 of the route's requests remain in the window.
        _ = pacer.takePollCounts()
        #expect(try await pacer.admit(route: "flow_runs") == .overLimit(9))
        #expect(clock.now == before)
        #expect(pacer.takePollCounts() == ["flow_runs": 1])
        clock.advance(1000 + 2 + RequestPacer.window - clock.now)
        #expect(try await pacer.admit(route: "flow_runs") == .send)
        #expect(clock.sleeps.isEmpty)
        #expect(pacer.minimumInterval(forPollSending: ["flow_runs": 18, "work_pools": 40]) == 120)
    }

    @Test func fewRequestsTeachNothingAndLearnedLimitsAreLifted() async throws {
        let clock = ManualClock()
        let pacer = clock.pacer(budget: nil)
        for _ in 0..<10 { _ = try await pacer.admit(route: "flow_runs") }
        #expect(pacer.learnFromRateLimit(route: "flow_runs") == nil)  // 9 accepted: below 10
        _ = try await pacer.admit(route: "flow_runs")
        #expect(pacer.learnFromRateLimit(route: "flow_runs") == 9)
        clock.advance(RequestPacer.learnedLifetime - 1)
        #expect(pacer.status.learnedPerMinute == ["flow_runs": 9])
        clock.advance(1)
        #expect(pacer.status.learnedPerMinute.isEmpty)
        #expect(pacer.minimumInterval(forPollSending: ["flow_runs": 100]) == nil)
    }

    @Test func budgetStretchesThePollInterval() {
        let pacer = RequestPacer(budgetPerMinute: 600)
        #expect(pacer.minimumInterval(forPollSending: ["flow_runs": 200, "work_pools": 100]) == 30)
        #expect(RequestPacer(budgetPerMinute: 0).budgetPerMinute == 1)
    }
}

@Suite struct ClientPacingTests {
    @Test func nothingIsSentWhileRetryAfterIsPending() async throws {
        let transport = FakeTransport { request, index in
            index == 0 ? status(429, #"{"detail":"slow down"}"#, headers: ["retry-after": "30"]) : ok("[]")
        }
        let client = makeClient(transport)
        let first = await expectAPIError { try await client.workPools() }
        #expect(first?.kind == .rateLimited)
        #expect(first?.retryAfter == 30)
        let second = await expectAPIError { try await client.deployments() }
        #expect(second?.kind == .rateLimited)
        #expect(second?.status == nil)
        #expect(second?.message.contains("was not sent") == true)
        #expect((second?.retryAfter ?? 0) > 29)
        #expect(transport.requests.count == 1)
        // One request is too few to learn a limit from: the 429 is about someone else's rate.
        #expect(client.pacer.status.learnedPerMinute.isEmpty)
    }

    @Test func aConfiguredBudgetReachesThePacer() {
        let client = PrefectClient(
            configuration: PrefectClientConfiguration(baseURL: FakeTransport.baseURL, maxRequestsPerMinute: 120),
            transport: FakeTransport(status: 200, body: "[]"))
        #expect(client.pacer.budgetPerMinute == 120)
        #expect(PrefectClientConfiguration(baseURL: "http://h/api", maxRequestsPerMinute: -5).maxRequestsPerMinute == 1)
    }
}
