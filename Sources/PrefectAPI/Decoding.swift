// Decoding is tolerant by design: unknown fields are ignored, unknown enum values are kept
// as strings, and a missing optional field is nil. Only the identity of an object (id, name)
// is required, so a newer Prefect does not fail a poll.

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == AnyKey {
    fileprivate func string(_ key: String) throws -> String {
        try decode(String.self, forKey: AnyKey(key))
    }

    fileprivate func optionalString(_ key: String) -> String? {
        (try? decodeIfPresent(String.self, forKey: AnyKey(key))) ?? nil
    }

    fileprivate func optionalInt(_ key: String) -> Int? {
        if let value = (try? decodeIfPresent(Int.self, forKey: AnyKey(key))) ?? nil { return value }
        if let value = (try? decodeIfPresent(Double.self, forKey: AnyKey(key))) ?? nil, value.isFinite,
           abs(value) < 1e15
        {
            return Int(value)
        }
        return nil
    }

    fileprivate func optionalDouble(_ key: String) -> Double? {
        (try? decodeIfPresent(Double.self, forKey: AnyKey(key))) ?? nil
    }

    fileprivate func optionalBool(_ key: String) -> Bool? {
        (try? decodeIfPresent(Bool.self, forKey: AnyKey(key))) ?? nil
    }

    fileprivate func bool(_ key: String) -> Bool {
        ((try? decodeIfPresent(Bool.self, forKey: AnyKey(key))) ?? nil) ?? false
    }

    fileprivate func timestamp(_ key: String) -> Double? {
        optionalString(key).flatMap(PrefectTimestamp.parse)
    }
}

extension WorkPool: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        self.init(
            id: try container.string("id"), name: try container.string("name"),
            type: container.optionalString("type") ?? "",
            status: container.optionalString("status"), isPaused: container.bool("is_paused"),
            concurrencyLimit: container.optionalInt("concurrency_limit"), activeSlots: container.optionalInt("active_slots"))
    }
}

extension WorkQueue: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        self.init(
            id: try container.string("id"), name: try container.string("name"),
            workPoolName: container.optionalString("work_pool_name"),
            status: container.optionalString("status"), isPaused: container.bool("is_paused"),
            concurrencyLimit: container.optionalInt("concurrency_limit"),
            priority: container.optionalInt("priority") ?? 1,
            lastPolled: container.timestamp("last_polled"), activeSlots: container.optionalInt("active_slots"))
    }
}

extension Worker: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        self.init(
            name: try container.string("name"), status: container.optionalString("status"),
            lastHeartbeatTime: container.timestamp("last_heartbeat_time"))
    }
}

extension Deployment: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        self.init(
            id: try container.string("id"), name: try container.string("name"),
            flowID: try container.string("flow_id"),
            workPoolName: container.optionalString("work_pool_name"),
            workQueueName: container.optionalString("work_queue_name"),
            status: container.optionalString("status"), paused: container.bool("paused"),
            schedules: (try? container.decodeIfPresent([DeploymentSchedule].self, forKey: AnyKey("schedules")) ?? []) ?? [])
    }
}

extension DeploymentSchedule: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        var interval: Double?
        if let schedule = try? container.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("schedule")) {
            interval = schedule.optionalDouble("interval")
        }
        self.init(active: container.optionalBool("active") ?? true, interval: interval)
    }
}

extension ConcurrencyLimit: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        self.init(
            id: try container.string("id"), name: try container.string("name"),
            limit: container.optionalInt("limit") ?? 0, active: container.optionalBool("active") ?? true,
            activeSlots: container.optionalInt("active_slots") ?? 0)
    }
}

extension Flow: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        self.init(id: try container.string("id"), name: try container.string("name"))
    }
}

extension FlowRun: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        self.init(
            id: try container.string("id"),
            deploymentID: container.optionalString("deployment_id"),
            workPoolName: container.optionalString("work_pool_name"),
            workQueueName: container.optionalString("work_queue_name"),
            stateType: container.optionalString("state_type").map(StateType.init(rawValue:)),
            stateName: container.optionalString("state_name"),
            expectedStartTime: container.timestamp("expected_start_time"),
            nextScheduledStartTime: container.timestamp("next_scheduled_start_time"),
            startTime: container.timestamp("start_time"),
            endTime: container.timestamp("end_time"),
            totalRunTime: container.optionalDouble("total_run_time") ?? 0,
            runCount: container.optionalInt("run_count"), name: container.optionalString("name"))
    }
}
