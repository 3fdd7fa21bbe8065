/// The flow-run filter bodies the poller sends. Each one selects a set whose size does not
/// grow with the finished-run history or with future scheduled runs.
///
/// Beware `start_time.after_`: since Prefect 3.4.1 the server evaluates it as
/// `COALESCE(start_time, expected_start_time) >= after`, which alone matches every future
/// scheduled run. ``started(since:)`` pairs it with `is_null_: false`.
public enum FlowRunQueries {
    /// Which runs a query covers: all, those of some work pools, or those with no work queue
    /// (ad-hoc and `flow.serve()` runs). Used when exporters split Prefect by work pool.
    public enum Scope: Sendable, Equatable {
        case all
        case pools([String])
        case noPool
    }

    /// Adds a scope's constraints to a filter body built by this type.
    public static func restrict(_ body: JSONValue, to scope: Scope) -> JSONValue {
        guard case .object(var members) = body else { return body }
        switch scope {
        case .all:
            return body
        case .pools(let names):
            members.append((key: "work_pools", value: ["name": ["any_": .array(names.map(JSONValue.string))]]))
        case .noPool:
            if let index = members.firstIndex(where: { $0.key == "flow_runs" }), case .object(var runFilter) = members[index].value {
                runFilter.append((key: "work_queue_name", value: ["is_null_": true]))
                members[index].value = .object(runFilter)
            }
        }
        return .object(members)
    }

    /// Sort orders Prefect accepts (`FlowRunSort`).
    public enum Sort {
        public static let id = "ID_DESC"
        public static let nextScheduledStartAscending = "NEXT_SCHEDULED_START_TIME_ASC"
        public static let endTimeDescending = "END_TIME_DESC"
        public static let startTimeDescending = "START_TIME_DESC"
    }

    private static func types(_ types: [StateType]) -> JSONValue {
        ["any_": .array(types.map { .string($0.rawValue) })]
    }

    /// PENDING, RUNNING, PAUSED and CANCELLING runs: the runs in flight.
    public static func inFlight() -> JSONValue {
        ["flow_runs": ["state": ["type": types([.pending, .running, .paused, .cancelling])]]]
    }

    /// SCHEDULED runs whose next scheduled start is at or before `now` (due, late or waiting for a
    /// slot), optionally narrowed down for the due-run bookkeeping:
    /// - `from`: only runs whose next scheduled start is at or after this (a recent window, or a
    ///   keyset cursor when paging by that time);
    /// - `names`: only runs whose state name is one of these; `excludingNames`: none of these;
    /// - `deploymentIDs`: only runs of these deployments;
    /// - `ids`: only these runs (the rotating audit asks how many of the runs it knows are still due).
    ///
    /// There is deliberately no `state.type` filter: Prefect sets `next_scheduled_start_time` when a
    /// run enters a SCHEDULED state and clears it when the run leaves (`SetNextScheduledStartTime`,
    /// a universal transform in `orchestration/global_policy.py` that forced transitions go through
    /// too), so a run with one is SCHEDULED. With 100k due runs on SQLite the type filter made
    /// Prefect walk its state-type index over the whole pile: 240 to 320 ms against 6 to 17 ms for
    /// the same set by start time alone (`scripts/bench`, size P).
    public static func scheduledDue(
        now: Double, from: Double? = nil, names: [String]? = nil, excludingNames: [String]? = nil,
        deploymentIDs: [String]? = nil, ids: [String]? = nil
    ) -> JSONValue {
        var nameFilter: [(key: String, value: JSONValue)] = []
        if let names { nameFilter.append((key: "any_", value: .array(names.map(JSONValue.string)))) }
        if let excludingNames { nameFilter.append((key: "not_any_", value: .array(excludingNames.map(JSONValue.string)))) }
        var start: [(key: String, value: JSONValue)] = [(key: "before_", value: .string(PrefectTimestamp.format(now)))]
        if let from { start.append((key: "after_", value: .string(PrefectTimestamp.format(from)))) }
        var runs: [(key: String, value: JSONValue)] = []
        if !nameFilter.isEmpty { runs.append((key: "state", value: ["name": .object(nameFilter)])) }
        runs.append((key: "next_scheduled_start_time", value: .object(start)))
        if let deploymentIDs { runs.append((key: "deployment_id", value: ["any_": .array(deploymentIDs.map(JSONValue.string))])) }
        if let ids { runs.append((key: "id", value: ["any_": .array(ids.map(JSONValue.string))])) }
        return .object([(key: "flow_runs", value: .object(runs))])
    }

    /// A count of SCHEDULED runs that start after `now`, in the work queue with id `workQueueID`
    /// (or, with nil, runs that have no work queue at all).
    ///
    /// The queue is named by id, not by pool and queue name: with 100k runs on SQLite the name
    /// filters made the count take 82 ms instead of 8 ms (`scripts/bench`). There is no
    /// `state.type` filter, for the reason given at ``scheduledDue(now:from:names:excludingNames:deploymentIDs:ids:)``:
    /// with a pile of 100k due runs it made each count take 225 to 320 ms instead of 17 ms.
    public static func scheduledUpcoming(now: Double, workQueueID: String?) -> JSONValue {
        let after = PrefectTimestamp.format(now + 0.000_001)
        guard let workQueueID else {
            return [
                "flow_runs": [
                    "next_scheduled_start_time": ["after_": .string(after)],
                    "work_queue_name": ["is_null_": true],
                ],
            ]
        }
        return [
            "flow_runs": ["next_scheduled_start_time": ["after_": .string(after)]],
            "work_pool_queues": ["id": ["any_": [.string(workQueueID)]]],
        ]
    }

    /// Runs with an end time at or after `since`: the runs that finished since then.
    ///
    /// There is deliberately no state-type filter. Prefect sets `end_time` when a run enters a
    /// terminal state, and the caller keeps only terminal runs anyway (a run re-run since keeps
    /// its old end time). With 100k runs on SQLite, adding the filter made the query take
    /// 322 ms instead of 8 ms (`scripts/bench`).
    public static func finished(since: Double) -> JSONValue {
        ["flow_runs": ["end_time": ["after_": .string(PrefectTimestamp.format(since))]]]
    }

    /// Runs that started at or after `since`.
    public static func started(since: Double) -> JSONValue {
        [
            "flow_runs": [
                "start_time": ["after_": .string(PrefectTimestamp.format(since)), "is_null_": false],
            ],
        ]
    }

    /// The SCHEDULED runs of one deployment, due or future (sorted by next scheduled start, the
    /// first is its next run). Filtered on `next_scheduled_start_time`, which only SCHEDULED runs
    /// have (see ``scheduledDue(now:from:names:excludingNames:deploymentIDs:ids:)``).
    public static func scheduled(deploymentID: String) -> JSONValue {
        [
            "flow_runs": [
                "deployment_id": ["any_": [.string(deploymentID)]],
                "next_scheduled_start_time": ["after_": .string(PrefectTimestamp.format(0))],
            ],
        ]
    }

    /// The runs of one deployment now in a terminal state type, with an end time (sorted by end
    /// time descending, the first is its last such run).
    public static func finished(deploymentID: String, stateType: StateType) -> JSONValue {
        [
            "flow_runs": [
                "deployment_id": ["any_": [.string(deploymentID)]],
                "state": ["type": types([stateType])],
                "end_time": ["is_null_": false],
            ],
        ]
    }
}
