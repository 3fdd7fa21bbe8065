/// A flow run's state type. Unknown types decode too, so a new Prefect state never fails a poll.
public struct StateType: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let scheduled = StateType(rawValue: "SCHEDULED")
    public static let pending = StateType(rawValue: "PENDING")
    public static let running = StateType(rawValue: "RUNNING")
    public static let completed = StateType(rawValue: "COMPLETED")
    public static let failed = StateType(rawValue: "FAILED")
    public static let cancelled = StateType(rawValue: "CANCELLED")
    public static let crashed = StateType(rawValue: "CRASHED")
    public static let paused = StateType(rawValue: "PAUSED")
    public static let cancelling = StateType(rawValue: "CANCELLING")

    /// States a run can still leave: what "runs now" counts.
    public static let nonTerminal: [StateType] = [.scheduled, .pending, .running, .paused, .cancelling]
    /// States a run ends in: what the finished counters count.
    public static let terminal: [StateType] = [.completed, .failed, .crashed, .cancelled]

    public var description: String { rawValue }
    public static func < (lhs: StateType, rhs: StateType) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A work pool (`POST /work_pools/filter`).
public struct WorkPool: Sendable, Equatable {
    public var id: String
    public var name: String
    public var type: String
    /// `READY`, `NOT_READY` or `PAUSED`; nil on servers that do not report it.
    public var status: String?
    public var isPaused: Bool
    public var concurrencyLimit: Int?
    /// Slots taken by its PENDING and RUNNING runs (Prefect 3.6.23 and later); nil without a
    /// concurrency limit or on older servers. It can exceed the limit.
    public var activeSlots: Int?

    public init(
        id: String, name: String, type: String, status: String?, isPaused: Bool, concurrencyLimit: Int?, activeSlots: Int? = nil
    ) {
        self.id = id
        self.name = name
        self.type = type
        self.status = status
        self.isPaused = isPaused
        self.concurrencyLimit = concurrencyLimit
        self.activeSlots = activeSlots
    }
}

/// A work queue (`POST /work_queues/filter`).
public struct WorkQueue: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The pool's name; nil for legacy queues outside any pool.
    public var workPoolName: String?
    public var status: String?
    public var isPaused: Bool
    public var concurrencyLimit: Int?
    public var priority: Int
    /// Seconds since the epoch of the last worker poll; nil if never polled.
    public var lastPolled: Double?
    /// Slots taken by its PENDING and RUNNING runs (Prefect 3.6.23 and later); nil without a
    /// concurrency limit or on older servers.
    public var activeSlots: Int?

    public init(
        id: String, name: String, workPoolName: String?, status: String?, isPaused: Bool,
        concurrencyLimit: Int?, priority: Int, lastPolled: Double?, activeSlots: Int? = nil
    ) {
        self.activeSlots = activeSlots
        self.id = id
        self.name = name
        self.workPoolName = workPoolName
        self.status = status
        self.isPaused = isPaused
        self.concurrencyLimit = concurrencyLimit
        self.priority = priority
        self.lastPolled = lastPolled
    }
}

/// A worker of one pool (`POST /work_pools/{name}/workers/filter`).
public struct Worker: Sendable, Equatable {
    public var name: String
    /// `ONLINE` or `OFFLINE`.
    public var status: String?
    public var lastHeartbeatTime: Double?

    public init(name: String, status: String?, lastHeartbeatTime: Double?) {
        self.name = name
        self.status = status
        self.lastHeartbeatTime = lastHeartbeatTime
    }
}

/// A deployment (`POST /deployments/filter`).
public struct Deployment: Sendable, Equatable {
    public var id: String
    public var name: String
    public var flowID: String
    public var workPoolName: String?
    public var workQueueName: String?
    /// `READY` or `NOT_READY`.
    public var status: String?
    public var paused: Bool
    /// Its schedules (`schedules`), active or not.
    public var schedules: [DeploymentSchedule]

    public init(
        id: String, name: String, flowID: String, workPoolName: String?, workQueueName: String?,
        status: String?, paused: Bool, schedules: [DeploymentSchedule] = []
    ) {
        self.schedules = schedules
        self.id = id
        self.name = name
        self.flowID = flowID
        self.workPoolName = workPoolName
        self.workQueueName = workQueueName
        self.status = status
        self.paused = paused
    }
}

/// One schedule of a deployment: whether it is active, and its interval when it is an interval
/// schedule (cron and rrule schedules have none).
public struct DeploymentSchedule: Sendable, Equatable {
    public var active: Bool
    /// Seconds between runs of an interval schedule.
    public var interval: Double?

    public init(active: Bool, interval: Double?) {
        self.active = active
        self.interval = interval
    }
}

/// A concurrency limit (`POST /v2/concurrency_limits/filter`): a global limit, a tag limit
/// (named `tag:<tag>`) or a deployment's limit (named `deployment:<id>`).
public struct ConcurrencyLimit: Sendable, Equatable {
    public var id: String
    public var name: String
    public var limit: Int
    /// Whether it is enforced.
    public var active: Bool
    public var activeSlots: Int

    public init(id: String, name: String, limit: Int, active: Bool, activeSlots: Int) {
        self.id = id
        self.name = name
        self.limit = limit
        self.active = active
        self.activeSlots = activeSlots
    }
}

/// A flow (`POST /flows/filter`); only its name matters here.
public struct Flow: Sendable, Equatable {
    public var id: String
    public var name: String

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

/// The fields of a flow run that the exporter uses. Times are seconds since the epoch.
public struct FlowRun: Sendable, Equatable {
    public var id: String
    /// The run's generated name (`crimson-otter`), for exemplars.
    public var name: String?
    public var deploymentID: String?
    public var workPoolName: String?
    public var workQueueName: String?
    public var stateType: StateType?
    public var stateName: String?
    public var expectedStartTime: Double?
    public var nextScheduledStartTime: Double?
    public var startTime: Double?
    public var endTime: Double?
    /// Seconds spent in RUNNING, as Prefect counts it.
    public var totalRunTime: Double
    /// How many times the run entered RUNNING; nil when the server did not say. Prefect stamps
    /// `start_time` even on runs cancelled before they ever ran, so this tells whether a run ran.
    public var runCount: Int?

    /// Whether the run ever entered RUNNING (unknown counts as yes).
    public var hasRun: Bool { startTime != nil && runCount != 0 }

    public init(
        id: String, deploymentID: String? = nil, workPoolName: String? = nil, workQueueName: String? = nil,
        stateType: StateType?, stateName: String?, expectedStartTime: Double? = nil,
        nextScheduledStartTime: Double? = nil, startTime: Double? = nil, endTime: Double? = nil,
        totalRunTime: Double = 0, runCount: Int? = nil, name: String? = nil
    ) {
        self.id = id
        self.name = name
        self.deploymentID = deploymentID
        self.workPoolName = workPoolName
        self.workQueueName = workQueueName
        self.stateType = stateType
        self.stateName = stateName
        self.expectedStartTime = expectedStartTime
        self.nextScheduledStartTime = nextScheduledStartTime
        self.startTime = startTime
        self.endTime = endTime
        self.totalRunTime = totalRunTime
        self.runCount = runCount
    }
}
