import Dispatch
import Locking

/// Keeps one client's requests within what Prefect allows, so that a rate-limited server (Prefect
/// Cloud limits the `flow_runs` routes per minute) is never pushed past its limit:
///
/// - **A configured budget** (`--prefect.max-requests-per-minute`): at most that many requests
///   in any 60-second window, whatever their route. A request over it waits until the oldest
///   one in the window is a minute old.
/// - **Limits learned from a 429.** When Prefect rate-limits a route (`flow_runs`, say) after the
///   exporter sent it at least ``minimumToLearn`` requests in the minute before, the pacer allows
///   that route 90% of them, and lowers that again at each further 429. A request over a learned
///   limit is not sent and does not wait: it fails at once (``Admission/overLimit(_:)``), so the
///   poll ends and says what failed, and the poll interval stretches to fit the limit. A limit is lifted
///   ``learnedLifetime`` after the route's last 429: Prefect Cloud's limits are shared with the
///   account's other clients, so a 429 may say more about them than about the exporter. A 429
///   after fewer requests teaches nothing; its `Retry-After` is still honoured.
/// - **A hold while `Retry-After` is pending.** After a 429 or 503 with `Retry-After`, no request
///   is sent until that time has passed: each fails at once, unsent, as ``PrefectAPIError/Kind/rateLimited``.
///
/// Windows are measured with a monotonic clock and one second of margin, from the moment a
/// request is let through (after the client's concurrency limit), so the server's count of the
/// same requests is never higher. Memory is bounded by the requests sent in the last minute.
public final class RequestPacer: Sendable {
    /// What the pacer allows and has done, for metrics and logs.
    public struct Status: Sendable, Equatable {
        /// The configured budget, requests a minute over all routes; nil when unbounded.
        public var budgetPerMinute: Int?
        /// Limits learned from 429 answers, requests a minute by route (``RequestPacer/route(of:)``).
        public var learnedPerMinute: [String: Int]
        /// Seconds requests spent waiting for the budget, in all (a wait counts from its start).
        public var waitedSeconds: Double
    }

    /// Whether a request may go out now.
    enum Admission: Equatable {
        case send
        /// Prefect asked to wait: this many seconds remain.
        case held(remaining: Double)
        /// The route is at the limit learned from Prefect's 429s: this many requests a minute.
        case overLimit(Int)
    }

    private struct State {
        /// Requests let through in the last window, oldest first: (monotonic seconds, route).
        var sent: [(time: Double, route: String)] = []
        /// The index of the oldest entry still in ``sent`` (entries before it are expired).
        var head = 0
        var sentByRoute: [String: Int] = [:]
        var learned: [String: Int] = [:]
        /// When each route was last rate-limited with a limit learned.
        var learnedAt: [String: Double] = [:]
        var holdUntil: Double?
        var waited: Double = 0
        /// Requests let through since the last ``takePollCounts()``, by route.
        var pollCounts: [String: Int] = [:]
    }

    /// The window the budget and learned limits apply to, plus a second of margin for the time
    /// a request takes to reach the server.
    static let window: Double = 61
    /// A 429 after fewer requests than this in the last minute teaches no limit.
    static let minimumToLearn = 10
    /// A learned limit is lifted this long after the route's last 429.
    static let learnedLifetime: Double = 900

    /// The configured budget: requests a minute over all routes; nil when unbounded.
    public let budgetPerMinute: Int?
    private let state = LockedValue(State())
    private let clock: @Sendable () -> Double
    private let sleep: @Sendable (Double) async throws -> Void

    /// - Parameters:
    ///   - budgetPerMinute: at most this many requests in any minute; nil for no configured bound.
    ///   - clock: monotonic seconds; injectable for tests.
    ///   - sleep: waits that many seconds; throws when cancelled. Injectable for tests.
    public init(
        budgetPerMinute: Int?, clock: (@Sendable () -> Double)? = nil,
        sleep: (@Sendable (Double) async throws -> Void)? = nil
    ) {
        self.budgetPerMinute = budgetPerMinute.map { max(1, $0) }
        self.clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        self.sleep = sleep ?? { seconds in try await Task.sleep(for: .milliseconds(Int((seconds * 1000).rounded(.up)))) }
    }

    /// The route a budget is kept for: the first segment of an endpoint template (`flow_runs`
    /// for `/flow_runs/count`), or the first two under a version prefix (`v2/concurrency_limits`).
    public static func route(of endpoint: String) -> String {
        let segments = endpoint.split(separator: "/", omittingEmptySubsequences: true)
        guard let first = segments.first else { return "" }
        if first.count >= 2, first.first == "v", first.dropFirst().allSatisfy(\.isNumber), segments.count > 1 {
            return "\(first)/\(segments[1])"
        }
        return String(first)
    }

    /// Waits until a request to `route` fits the budget, then counts it as sent now. Returns at
    /// once, without counting it as sent, ``Admission/held(remaining:)`` while Prefect's
    /// `Retry-After` is pending and ``Admission/overLimit(_:)`` when the route is at its learned
    /// limit; throws only when the task is cancelled while waiting.
    func admit(route: String) async throws -> Admission {
        while true {
            let decision = state.withLock { state -> Result<Admission, WaitNeeded> in
                let now = clock()
                if let until = state.holdUntil {
                    if now < until { return .success(.held(remaining: until - now)) }
                    state.holdUntil = nil
                }
                Self.expire(&state, now: now)
                if let limit = state.learned[route], (state.sentByRoute[route] ?? 0) >= limit {
                    // Counted as this poll's, so that the interval stretches to what the poll needs.
                    state.pollCounts[route, default: 0] += 1
                    return .success(.overLimit(limit))
                }
                if let wait = budgetWait(state, now: now) { return .failure(WaitNeeded(seconds: wait)) }
                state.sent.append((now, route))
                state.sentByRoute[route, default: 0] += 1
                state.pollCounts[route, default: 0] += 1
                return .success(.send)
            }
            switch decision {
            case .success(let admission): return admission
            case .failure(let wait):
                // Counted when the wait starts, so that a long one shows while it lasts.
                state.withLock { $0.waited += wait.seconds }
                try await sleep(wait.seconds)
            }
        }
    }

    private struct WaitNeeded: Error { var seconds: Double }

    /// Seconds until a request fits the configured budget, or nil when it fits now.
    private func budgetWait(_ state: State, now: Double) -> Double? {
        let live = state.sent[state.head...]
        guard let budget = budgetPerMinute, live.count >= budget else { return nil }
        // The request that leaves the window next frees a slot once the count is below budget.
        let index = live.startIndex + (live.count - budget)
        return max(0.01, live[index].time + Self.window - now)
    }

    private static func expire(_ state: inout State, now: Double) {
        for (route, time) in state.learnedAt where now - time >= learnedLifetime {
            state.learned[route] = nil
            state.learnedAt[route] = nil
        }
        while state.head < state.sent.count, state.sent[state.head].time <= now - window {
            let route = state.sent[state.head].route
            state.sentByRoute[route, default: 1] -= 1
            if state.sentByRoute[route] == 0 { state.sentByRoute[route] = nil }
            state.head += 1
        }
        // Compact once the expired prefix is both large and most of the buffer.
        if state.head > 256, state.head * 2 > state.sent.count {
            state.sent.removeFirst(state.head)
            state.head = 0
        }
    }

    /// Sends nothing for `seconds` (Prefect's `Retry-After`); a later, longer hold wins.
    func hold(for seconds: Double) {
        state.withLock { state in
            let until = clock() + max(0, seconds)
            state.holdUntil = max(state.holdUntil ?? until, until)
        }
    }

    /// Prefect answered 429 to a request to `route`: from now on, allow the route 90% of what it
    /// was sent in the last minute (the rejected request excluded), never more than before, when
    /// that was at least ``minimumToLearn``. Returns the new limit when it changed.
    @discardableResult
    func learnFromRateLimit(route: String) -> Int? {
        state.withLock { state in
            let now = clock()
            Self.expire(&state, now: now)
            let accepted = max(0, (state.sentByRoute[route] ?? 0) - 1)
            guard accepted >= Self.minimumToLearn else { return nil }
            if state.learned[route] != nil { state.learnedAt[route] = now }
            let limit = Int((Double(accepted) * 0.9).rounded(.down))
            if let previous = state.learned[route], previous <= limit { return nil }
            if let budget = budgetPerMinute, budget <= limit { return nil }
            state.learned[route] = limit
            state.learnedAt[route] = now
            return limit
        }
    }

    /// Seconds until Prefect's `Retry-After` has passed; nil when no hold is pending.
    public var remainingHold: Double? {
        state.withLock { state in
            guard let until = state.holdUntil else { return nil }
            let remaining = until - clock()
            return remaining > 0 ? remaining : nil
        }
    }

    /// Requests let through since the last call, by route; resets them. One poll's requests.
    public func takePollCounts() -> [String: Int] {
        state.withLock { state in
            defer { state.pollCounts = [:] }
            return state.pollCounts
        }
    }

    /// The shortest poll interval, in seconds, at which polls that each send `counts` requests
    /// (by route) keep within the budget and the learned limits; nil when any interval does.
    public func minimumInterval(forPollSending counts: [String: Int]) -> Double? {
        let learned = state.withLock { state in
            Self.expire(&state, now: clock())
            return state.learned
        }
        var needed: Double?
        if let budget = budgetPerMinute {
            let total = counts.values.reduce(0, +)
            needed = Double(total) * 60 / Double(budget)
        }
        for (route, limit) in learned {
            let perPoll = Double(counts[route] ?? 0) * 60 / Double(limit)
            needed = max(needed ?? 0, perPoll)
        }
        return needed
    }

    public var status: Status {
        state.withLock {
            Self.expire(&$0, now: clock())
            return Status(budgetPerMinute: budgetPerMinute, learnedPerMinute: $0.learned, waitedSeconds: $0.waited)
        }
    }
}
