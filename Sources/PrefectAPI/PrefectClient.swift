import FoundationEssentials
import Locking
#if canImport(Glibc)
import Glibc
#endif
public import HTTPClient

/// One API request as it happened, for `prefect_exporter_api_requests_total` and poll statistics.
public struct RequestRecord: Sendable, Equatable {
    /// The route template, e.g. `/flow_runs/filter`.
    public var endpoint: String
    /// The HTTP status as text, or a transport failure kind such as `timeout`.
    public var code: String
    /// Body bytes received on the wire.
    public var wireBytes: Int

    public init(endpoint: String, code: String, wireBytes: Int) {
        self.endpoint = endpoint
        self.code = code
        self.wireBytes = wireBytes
    }
}

/// A strictly read-only client for the Prefect REST API.
///
/// It only knows read endpoints. In particular it never calls the worker polling endpoints
/// (`POST /work_pools/{name}/get_scheduled_flow_runs`, `POST /deployments/get_scheduled_flow_runs`),
/// which mark queues and deployments as polled and READY as a side effect.
public final class PrefectClient: Sendable {
    public let configuration: PrefectClientConfiguration
    private let transport: any HTTPTransport
    private let observer: @Sendable (RequestRecord) -> Void
    private let semaphore: AsyncSemaphore
    /// Keeps requests within the configured budget and Prefect's rate limits (see ``RequestPacer``).
    public let pacer: RequestPacer
    /// Calls of ``serverVersion()`` left that skip `/admin/version` after it was refused.
    private let adminVersionSkips = LockedValue(0)

    /// - Parameters:
    ///   - observer: called once per HTTP attempt, from any thread.
    ///   - pacer: the request budget; by default one with ``PrefectClientConfiguration/maxRequestsPerMinute``.
    public init(
        configuration: PrefectClientConfiguration, transport: any HTTPTransport, pacer: RequestPacer? = nil,
        observer: @escaping @Sendable (RequestRecord) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.transport = transport
        self.observer = observer
        self.semaphore = AsyncSemaphore(permits: configuration.maxConcurrentRequests)
        self.pacer = pacer ?? RequestPacer(budgetPerMinute: configuration.maxRequestsPerMinute)
    }

    // MARK: Endpoints

    /// The server's package version (`GET /admin/version`; nil on Prefect Cloud, which has no `/admin`)
    /// and its API version (`GET /version`). Once `/admin/version` is refused (404, 401 or 403),
    /// it is asked again only every ``adminVersionRecheck``-th call.
    public func serverVersion() async throws(PrefectAPIError) -> (version: String?, apiVersion: String?) {
        let apiVersion: String = try await decode(String.self, from: send(.get, "/version", path: "/version"), endpoint: "/version")
        let skip = adminVersionSkips.withLock { skips -> Bool in
            guard skips > 0 else { return false }
            skips -= 1
            return true
        }
        if skip { return (nil, apiVersion) }
        var version: String?
        do {
            version = try await decode(
                String.self, from: send(.get, "/admin/version", path: "/admin/version"), endpoint: "/admin/version")
        } catch where error.kind == .notFound || error.kind == .unauthorized || error.kind == .forbidden {
            version = nil
            adminVersionSkips.withLock { $0 = Self.adminVersionRecheck - 1 }
        }
        return (version, apiVersion)
    }

    /// How often ``serverVersion()`` asks `/admin/version` again after it was refused: every this many calls.
    static let adminVersionRecheck = 20

    /// Every work pool.
    public func workPools() async throws(PrefectAPIError) -> [WorkPool] {
        try await paginate(WorkPool.self, endpoint: "/work_pools/filter", path: "/work_pools/filter", filter: [:])
    }

    /// Every work queue of every pool (legacy queues outside pools included).
    public func workQueues() async throws(PrefectAPIError) -> [WorkQueue] {
        try await paginate(WorkQueue.self, endpoint: "/work_queues/filter", path: "/work_queues/filter", filter: [:])
    }

    /// The workers of one pool.
    public func workers(inPool pool: String) async throws(PrefectAPIError) -> [Worker] {
        try await paginate(
            Worker.self, endpoint: "/work_pools/{name}/workers/filter",
            path: "/work_pools/\(Self.encodePathSegment(pool))/workers/filter", filter: [:])
    }

    /// Every deployment.
    public func deployments() async throws(PrefectAPIError) -> [Deployment] {
        try await paginate(Deployment.self, endpoint: "/deployments/filter", path: "/deployments/filter", filter: [:])
    }

    /// Every concurrency limit (V2: global, tag and deployment limits).
    public func concurrencyLimits() async throws(PrefectAPIError) -> [ConcurrencyLimit] {
        try await paginate(
            ConcurrencyLimit.self, endpoint: "/v2/concurrency_limits/filter", path: "/v2/concurrency_limits/filter", filter: [:])
    }

    /// The first flow run matching a filter body in a sort order, or nil: one small request.
    public func firstFlowRun(matching filter: JSONValue, sort: String) async throws(PrefectAPIError) -> FlowRun? {
        var members: [(key: String, value: JSONValue)] = filter.objectMembers ?? []
        members.append((key: "sort", value: .string(sort)))
        members.append((key: "limit", value: 1))
        let response = try await send(.post, "/flow_runs/filter", path: "/flow_runs/filter", body: .object(members))
        return try decode([FlowRun].self, from: response, endpoint: "/flow_runs/filter").first
    }

    /// The flows with these ids, in pages of at most the page size.
    public func flows(ids: [String]) async throws(PrefectAPIError) -> [Flow] {
        var flows: [Flow] = []
        var start = 0
        let unique = Array(Set(ids)).sorted()
        while start < unique.count {
            let chunk = Array(unique[start..<min(start + configuration.pageSize, unique.count)])
            let filter: JSONValue = ["flows": ["id": ["any_": .array(chunk.map(JSONValue.string))]]]
            // A chunk holds at most a page of ids, so one request returns all of its flows.
            let body: JSONValue = .object(
                (filter.objectMembers ?? []) + [(key: "limit", value: .number(Double(configuration.pageSize)))])
            let response = try await send(.post, "/flows/filter", path: "/flows/filter", body: body)
            flows += try decode([Flow].self, from: response, endpoint: "/flows/filter")
            start += chunk.count
        }
        return flows
    }

    /// Flow runs matching a filter body (`flow_runs`, `work_pools`, `work_pool_queues`…), all pages.
    /// Only call this for bounded sets: never for the finished-run history or future scheduled runs.
    public func flowRuns(matching filter: JSONValue, sort: String) async throws(PrefectAPIError) -> [FlowRun] {
        try await paginate(FlowRun.self, endpoint: "/flow_runs/filter", path: "/flow_runs/filter", filter: filter, sort: sort)
    }

    /// One page of flow runs matching a filter body: at most the page size, from `offset`.
    /// For callers that page by a key of their own (see `DueRunSync`) and fold each page as it comes.
    public func flowRunPage(matching filter: JSONValue, sort: String, offset: Int = 0) async throws(PrefectAPIError) -> [FlowRun] {
        var members: [(key: String, value: JSONValue)] = filter.objectMembers ?? []
        members.append((key: "sort", value: .string(sort)))
        members.append((key: "limit", value: .number(Double(configuration.pageSize))))
        members.append((key: "offset", value: .number(Double(offset))))
        let response = try await send(.post, "/flow_runs/filter", path: "/flow_runs/filter", body: .object(members))
        return try decode([FlowRun].self, from: response, endpoint: "/flow_runs/filter")
    }

    /// The most runs one request returns.
    public var pageSize: Int { configuration.pageSize }

    /// How many flow runs match a filter body, in one request.
    public func countFlowRuns(matching filter: JSONValue) async throws(PrefectAPIError) -> Int {
        let response = try await send(.post, "/flow_runs/count", path: "/flow_runs/count", body: filter)
        return try decode(Int.self, from: response, endpoint: "/flow_runs/count")
    }

    // MARK: Paging

    private func paginate<Item: Decodable>(
        _ type: Item.Type, endpoint: String, path: String, filter: JSONValue, sort: String? = nil
    ) async throws(PrefectAPIError) -> [Item] {
        var items: [Item] = []
        var offset = 0
        // A hard stop, so that a server ignoring `offset` cannot loop us forever.
        let maxPages = 5_000
        for _ in 0..<maxPages {
            var members: [(key: String, value: JSONValue)] = []
            if case .object(let filterMembers) = filter { members = filterMembers }
            if let sort { members.append((key: "sort", value: .string(sort))) }
            members.append((key: "limit", value: .number(Double(configuration.pageSize))))
            members.append((key: "offset", value: .number(Double(offset))))
            let response = try await send(.post, endpoint, path: path, body: .object(members))
            let page = try decode([Item].self, from: response, endpoint: endpoint)
            items += page
            if page.count < configuration.pageSize { return items }
            offset += page.count
        }
        throw PrefectAPIError(
            kind: .invalidResponse, endpoint: endpoint,
            message: "\(endpoint) returned more than \(maxPages) full pages; the server may be ignoring `offset`")
    }

    // MARK: Requests

    private func decode<Value: Decodable>(
        _ type: Value.Type, from response: HTTPResponse, endpoint: String
    ) throws(PrefectAPIError) -> Value {
        do {
            // A lone surrogate escape ("\udc80") or a non-UTF-8 byte in one name would fail the
            // whole page, or silently drop an optional field: they are decoded as U+FFFD instead.
            let body = JSONTextRepair.repair(response.body) ?? response.body
            return try JSONDecoder().decode(Value.self, from: Data(body))
        } catch {
            let preview = String(decoding: response.body.prefix(120), as: UTF8.self)
            throw PrefectAPIError(
                kind: .invalidResponse, endpoint: endpoint, status: response.status,
                message: "unexpected response from \(endpoint) at \(configuration.redactedBaseURL): "
                    + "\(Self.describe(decodingError: error)); body starts with \(preview.debugDescription)")
        }
    }

    private static func describe(decodingError error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .dataCorrupted(let context): return "invalid JSON (\(context.debugDescription))"
        case .keyNotFound(let key, _): return "missing field \"\(key.stringValue)\""
        case .typeMismatch(let type, let context):
            return "expected \(type) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case .valueNotFound(let type, let context):
            return "missing \(type) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        @unknown default: return "\(error)"
        }
    }

    private func send(
        _ method: HTTPRequest.Method, _ endpoint: String, path: String, body: JSONValue? = nil
    ) async throws(PrefectAPIError) -> HTTPResponse {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        switch configuration.auth {
        case .none: break
        case .apiKey(let key): headers.append(("Authorization", "Bearer \(key)"))
        case .basic(let userPass): headers.append(("Authorization", "Basic \(Data(userPass.utf8).base64EncodedString())"))
        }
        let request = HTTPRequest(
            method: method, url: configuration.baseURL + path, headers: headers,
            body: body.map { Array($0.serialized.utf8) })

        let route = RequestPacer.route(of: endpoint)
        var attempt = 0
        while true {
            await semaphore.acquire()
            // Paced after the concurrency limit, so that a request counts from when it is sent.
            let refusal: PrefectAPIError?
            do {
                switch try await pacer.admit(route: route) {
                case .send:
                    refusal = nil
                case .overLimit(let limit):
                    refusal = PrefectAPIError(
                        kind: .rateLimited, endpoint: endpoint,
                        message: "\(method.rawValue) \(endpoint) was not sent: the \(route) routes are at the limit of \(limit) "
                            + "requests a minute learned from Prefect's 429 answers at \(configuration.redactedBaseURL); "
                            + "polls run less often until they fit")
                case .held(let remaining):
                    refusal = PrefectAPIError(
                        kind: .rateLimited, endpoint: endpoint, retryAfter: remaining,
                        message: "\(method.rawValue) \(endpoint) was not sent: Prefect at \(configuration.redactedBaseURL) asked "
                            + "the exporter to wait (Retry-After) another \(Int(remaining.rounded(.up)))s")
                }
            } catch {
                refusal = PrefectAPIError(
                    kind: .transport(.other), endpoint: endpoint,
                    message: "\(method.rawValue) \(endpoint) was cancelled while waiting for the request budget")
            }
            if let refusal {
                semaphore.release()
                throw refusal
            }
            let outcome: Result<HTTPResponse, HTTPClientError>
            do {
                outcome = .success(try await transport.perform(request))
            } catch {
                outcome = .failure(error)
            }
            semaphore.release()

            let failure: PrefectAPIError
            let retryable: Bool
            switch outcome {
            case .failure(let error):
                observer(RequestRecord(endpoint: endpoint, code: error.kind.rawValue, wireBytes: 0))
                failure = PrefectAPIError(
                    kind: .transport(error.kind), endpoint: endpoint,
                    message: "cannot reach Prefect at \(configuration.redactedBaseURL) (\(method.rawValue) \(endpoint)): \(error.message)")
                retryable = error.kind == .timeout || error.kind == .connectionError
            case .success(let response):
                observer(RequestRecord(endpoint: endpoint, code: String(response.status), wireBytes: response.wireBytes))
                if (200..<300).contains(response.status) { return response }
                (failure, retryable) = classify(response, method: method, endpoint: endpoint)
                if response.status == 429 { pacer.learnFromRateLimit(route: route) }
                if failure.kind == .rateLimited, let retryAfter = failure.retryAfter { pacer.hold(for: retryAfter) }
            }
            guard retryable, attempt < configuration.retries else { throw failure }
            attempt += 1
            let base = Double(configuration.retryBaseDelay.components.seconds)
                + Double(configuration.retryBaseDelay.components.attoseconds) / 1e18
            let delay = min(2.0, base * pow(2, Double(attempt - 1))) * Double.random(in: 0.75...1.25)
            do {
                try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            } catch {
                // Cancelled (the exporter is stopping): no more attempts; the last failure stands.
                throw failure
            }
        }
    }

    private func classify(
        _ response: HTTPResponse, method: HTTPRequest.Method, endpoint: String
    ) -> (PrefectAPIError, retryable: Bool) {
        let status = response.status
        let where_ = "\(method.rawValue) \(endpoint) at \(configuration.redactedBaseURL)"
        let detail = Self.errorDetail(response.body)
        if let retryAfter = response.header("retry-after").flatMap(Self.parseRetryAfter), status == 429 || status == 503 {
            return (PrefectAPIError(
                kind: .rateLimited, endpoint: endpoint, status: status, retryAfter: retryAfter,
                message: "Prefect answered \(status) to \(where_) and asked to retry after \(Int(retryAfter.rounded(.up)))s; "
                    + "polls are skipped until then"), false)
        }
        switch status {
        case 401:
            return (PrefectAPIError(
                kind: .unauthorized, endpoint: endpoint, status: status,
                message: "Prefect rejected the credentials (HTTP 401) on \(where_): \(configuration.credentialHint)"), false)
        case 403:
            // A 403 names one endpoint: the same credentials may work everywhere else (Prefect Cloud
            // roles and service accounts grant per-resource access), so it is not a credentials hint.
            return (PrefectAPIError(
                kind: .forbidden, endpoint: endpoint, status: status,
                message: "Prefect refused \(where_) (HTTP 403 Forbidden)\(detail): the credentials were accepted but "
                    + "lack permission for this endpoint; grant read access to it (a Prefect Cloud role or service "
                    + "account), the other collectors keep working"), false)
        case 404:
            return (PrefectAPIError(
                kind: .notFound, endpoint: endpoint, status: status,
                message: "Prefect answered 404 to \(where_): check that --prefect.api-url is the API root "
                    + "(a self-hosted server's URL ends in /api; a Prefect Cloud URL ends in /accounts/<id>/workspaces/<id>)"), false)
        case 429:
            return (PrefectAPIError(
                kind: .rateLimited, endpoint: endpoint, status: status,
                message: "Prefect rate-limited \(where_) (HTTP 429)\(detail)"), true)
        case 500, 502, 503, 504:
            return (PrefectAPIError(
                kind: .httpStatus, endpoint: endpoint, status: status,
                message: "Prefect answered \(status) to \(where_)\(detail)"), true)
        default:
            return (PrefectAPIError(
                kind: .httpStatus, endpoint: endpoint, status: status,
                message: "Prefect answered \(status) to \(where_)\(detail)"), false)
        }
    }

    /// `: <detail>` from Prefect's error bodies (`{"detail": …}` or `{"exception_message": …}`), or empty.
    private static func errorDetail(_ body: [UInt8]) -> String {
        guard !body.isEmpty, let object = try? JSONDecoder().decode(ErrorBody.self, from: Data(body.prefix(4096)))
        else { return "" }
        if let detail = object.detail { return ": \(detail.prefix(200))" }
        if let message = object.exceptionMessage { return ": \(message.prefix(200))" }
        return ""
    }

    /// The members of a Prefect error body that ``errorDetail(_:)`` reports; any other shape of
    /// either (a list of validation errors, say) counts as absent.
    private struct ErrorBody: Decodable {
        var detail: String?
        var exceptionMessage: String?

        private enum CodingKeys: String, CodingKey {
            case detail
            case exceptionMessage = "exception_message"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            detail = (try? container.decodeIfPresent(String.self, forKey: .detail)) ?? nil
            exceptionMessage = (try? container.decodeIfPresent(String.self, forKey: .exceptionMessage)) ?? nil
        }
    }

    /// `Retry-After` as seconds: either delta-seconds or an HTTP date.
    static func parseRetryAfter(_ value: String) -> Double? {
        let trimmed = value.trimmingWhitespace()
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite { return min(seconds, 86_400) }
        guard let date = parseHTTPDate(trimmed) else { return nil }
        return min(max(0, date - Date().timeIntervalSince1970), 86_400)
    }

    /// An HTTP date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 section
    /// 5.6.7) as seconds since the epoch; nil for anything else. `UTC` is accepted for `GMT`.
    static func parseHTTPDate(_ text: String) -> Double? {
        func number(_ text: Substring, digits: ClosedRange<Int>) -> Int? {
            guard digits.contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(text)
        }
        let parts = text.split(separator: " ")
        let weekdays = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, weekdays.contains(String(parts[0])), parts[5] == "GMT" || parts[5] == "UTC",
              let day = number(parts[1], digits: 1...2), (1...31).contains(day),
              let month = months.firstIndex(of: String(parts[2])).map({ $0 + 1 }),
              let year = number(parts[3], digits: 4...4)
        else { return nil }
        let time = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard time.count == 3, let hour = number(time[0], digits: 2...2), let minute = number(time[1], digits: 2...2),
              let second = number(time[2], digits: 2...2), hour < 24, minute < 60, second <= 60
        else { return nil }
        let days = PrefectTimestamp.daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second)
    }

    /// Percent-encodes one path segment (a pool name may hold any character).
    /// Every UTF-8 byte but the unreserved characters of RFC 3986 (letters, digits, `-._~`) becomes `%XX`.
    static func encodePathSegment(_ segment: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var encoded: [UInt8] = []
        encoded.reserveCapacity(segment.utf8.count)
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                encoded.append(byte)
            default:
                encoded += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }
}
