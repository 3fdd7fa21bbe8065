import HTTPClient
public import PrefectAPI
import Locking

/// Counts API requests by endpoint and code across the exporter's life, and the requests and
/// bytes of the current poll. Fed by the ``PrefectClient`` observer from any thread.
public final class RequestStatistics: Sendable {
    public struct Key: Hashable, Sendable, Comparable {
        public var endpoint: String
        public var code: String

        public static func < (lhs: Key, rhs: Key) -> Bool { (lhs.endpoint, lhs.code) < (rhs.endpoint, rhs.code) }
    }

    private struct State {
        var totals: [Key: Double] = [:]
        var pollRequests = 0
        var pollBytes = 0
    }

    private let state = LockedValue(State())

    public init() {}

    /// Records one request. Pass this as the client's observer.
    public func record(_ request: RequestRecord) {
        state.withLock { state in
            state.totals[Key(endpoint: request.endpoint, code: request.code), default: 0] += 1
            state.pollRequests += 1
            state.pollBytes += request.wireBytes
        }
    }

    /// Requests so far, by endpoint and code.
    public var totals: [Key: Double] { state.withLock { $0.totals } }

    /// Requests and bytes since the last call, and resets them: one poll's cost.
    public func takePollCost() -> (requests: Int, bytes: Int) {
        state.withLock { state in
            defer { state.pollRequests = 0; state.pollBytes = 0 }
            return (state.pollRequests, state.pollBytes)
        }
    }
}
