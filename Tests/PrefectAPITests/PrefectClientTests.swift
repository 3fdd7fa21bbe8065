import Foundation
import HTTPClient
@testable import PrefectAPI
import Testing

/// `count` work pools named pool-000, pool-001, … as a JSON array.
private func poolsJSON(_ range: Range<Int>) -> String {
    "[" + range.map { #"{"id":"id-\#($0)","name":"pool-\#(String(format: "%03d", $0))","type":"process","status":"READY"}"# }
        .joined(separator: ",") + "]"
}

/// `limit` and `offset` of a paged request body.
private func paging(_ request: HTTPRequest) -> (limit: Int, offset: Int) {
    let object = (try? JSONSerialization.jsonObject(with: Data(request.body ?? []))) as? [String: Any] ?? [:]
    return ((object["limit"] as? Int) ?? -1, (object["offset"] as? Int) ?? -1)
}

/// A server holding `total` pools that honours limit and offset.
private func pagingServer(total: Int) -> FakeTransport {
    FakeTransport { request, _ in
        let (limit, offset) = paging(request)
        let start = min(offset, total)
        return ok(poolsJSON(start..<min(start + limit, total)))
    }
}

@Suite("PrefectClient paging")
struct PrefectClientPagingTests {
    @Test func pagesUntilAShortPage() async throws {
        let transport = pagingServer(total: 5)
        let pools = try await makeClient(transport, pageSize: 2).workPools()
        #expect(pools.map(\.name) == ["pool-000", "pool-001", "pool-002", "pool-003", "pool-004"])
        #expect(transport.bodies == [#"{"limit":2,"offset":0}"#, #"{"limit":2,"offset":2}"#, #"{"limit":2,"offset":4}"#])
        #expect(transport.paths == ["/work_pools/filter", "/work_pools/filter", "/work_pools/filter"])
        #expect(transport.requests.allSatisfy { $0.method == .post })
    }

    @Test func anExactMultipleNeedsOneEmptyPage() async throws {
        let transport = pagingServer(total: 4)
        let pools = try await makeClient(transport, pageSize: 2).workPools()
        #expect(pools.count == 4)
        #expect(transport.requests.map { paging($0).offset } == [0, 2, 4])
    }

    @Test func anEmptyResultIsOneRequest() async throws {
        let transport = pagingServer(total: 0)
        #expect(try await makeClient(transport).workQueues().isEmpty)
        #expect(transport.bodies == [#"{"limit":200,"offset":0}"#])
        #expect(transport.paths == ["/work_queues/filter"])
    }

    @Test func flowRunsCarryFilterSortLimitAndOffsetInOrder() async throws {
        let transport = FakeTransport { _, index in
            index == 0 ? ok(#"[{"id":"a"},{"id":"b"},{"id":"c"}]"#) : ok(#"[{"id":"d"}]"#)
        }
        let runs = try await makeClient(transport, pageSize: 3).flowRuns(matching: FlowRunQueries.inFlight(), sort: FlowRunQueries.Sort.id)
        #expect(runs.map(\.id) == ["a", "b", "c", "d"])
        let filter = #"{"flow_runs":{"state":{"type":{"any_":["PENDING","RUNNING","PAUSED","CANCELLING"]}}}"#
        #expect(transport.bodies == [
            filter + #","sort":"ID_DESC","limit":3,"offset":0}"#,
            filter + #","sort":"ID_DESC","limit":3,"offset":3}"#,
        ])
        #expect(transport.paths == ["/flow_runs/filter", "/flow_runs/filter"])
    }

    @Test func offsetAdvancesByWhatThePageHeld() async throws {
        let transport = pagingServer(total: 450)
        let pools = try await makeClient(transport, pageSize: 200).workPools()
        #expect(pools.count == 450)
        #expect(Set(pools.map(\.name)).count == 450)
        #expect(transport.requests.map { paging($0).offset } == [0, 200, 400])
        #expect(transport.requests.map { paging($0).limit } == [200, 200, 200])
    }

    @Test(arguments: [(500, 200), (201, 200), (200, 200), (50, 50), (1, 1), (0, 1), (-3, 1)])
    func pageSizeIsClampedToPrefectsMaximum(requested: Int, effective: Int) async throws {
        #expect(PrefectClientConfiguration(baseURL: "http://x/api", pageSize: requested).pageSize == effective)
        let transport = pagingServer(total: 0)
        _ = try await makeClient(transport, pageSize: requested).deployments()
        #expect(paging(try #require(transport.requests.first)).limit == effective)
    }

    @Test func aServerIgnoringOffsetCannotLoopForever() async throws {
        let transport = FakeTransport { _, _ in ok(#"[{"id":"same","name":"same"}]"#) }
        let error = await expectAPIError { try await makeClient(transport, pageSize: 1).workPools() }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.message == "/work_pools/filter returned more than 5000 full pages; the server may be ignoring `offset`")
        #expect(transport.requests.count == 5_000)
    }

    @Test func flowsAreRequestedInChunksOfThePageSize() async throws {
        let transport = FakeTransport { request, _ in
            let object = (try? JSONSerialization.jsonObject(with: Data(request.body ?? []))) as? [String: Any]
            let ids = ((object?["flows"] as? [String: Any])?["id"] as? [String: Any])?["any_"] as? [String] ?? []
            return ok("[" + ids.map { #"{"id":"\#($0)","name":"flow-\#($0)"}"# }.joined(separator: ",") + "]")
        }
        let flows = try await makeClient(transport, pageSize: 2).flows(ids: ["c", "a", "b", "a", "e", "d", "c"])
        #expect(flows.map(\.id) == ["a", "b", "c", "d", "e"])
        #expect(flows.map(\.name) == ["flow-a", "flow-b", "flow-c", "flow-d", "flow-e"])
        // Ids are de-duplicated and sorted; a chunk holds at most a page of ids, so one request each.
        #expect(transport.bodies == [
            #"{"flows":{"id":{"any_":["a","b"]}},"limit":2}"#,
            #"{"flows":{"id":{"any_":["c","d"]}},"limit":2}"#,
            #"{"flows":{"id":{"any_":["e"]}},"limit":2}"#,
        ])
        #expect(Set(transport.paths) == ["/flows/filter"])
    }

    @Test func noFlowIdsMeansNoRequest() async throws {
        let transport = pagingServer(total: 3)
        #expect(try await makeClient(transport).flows(ids: []).isEmpty)
        #expect(transport.requests.isEmpty)
    }

    @Test func countIsOneRequestWithTheBareFilter() async throws {
        let transport = FakeTransport(status: 200, body: "42")
        let filter = FlowRunQueries.scheduledUpcoming(now: 1_704_164_645, workQueueID: "q-id")
        #expect(try await makeClient(transport).countFlowRuns(matching: filter) == 42)
        #expect(transport.paths == ["/flow_runs/count"])
        #expect(transport.bodies == [filter.serialized])
        #expect(transport.requests.first?.header("Content-Type") == "application/json")
    }

    @Test func fixturesDecodeThroughTheClient() async throws {
        let transport = FakeTransport { request, _ in
            let name: String
            switch String(request.url.dropFirst(FakeTransport.baseURL.count)) {
            case "/work_pools/filter": name = "work_pools"
            case "/work_queues/filter": name = "work_queues"
            case "/work_pools/fixture-pool/workers/filter": name = "workers"
            case "/deployments/filter": name = "deployments"
            case "/flows/filter": name = "flows"
            case "/flow_runs/filter": name = "flow_runs"
            default: return status(404, #"{"detail":"Not Found"}"#)
            }
            return .success(HTTPResponse(status: 200, body: (try? fixture(name)) ?? []))
        }
        let client = makeClient(transport)
        #expect(try await client.workPools().map(\.name) == ["fixture-paused-pool", "fixture-pool"])
        #expect(try await client.workQueues().count == 4)
        #expect(try await client.workers(inPool: "fixture-pool").map(\.name) == ["w2", "w1"])
        #expect(try await client.deployments().map(\.name) == ["fixture-deploy", "fixture-deploy-high", "fixture-served"])
        #expect(try await client.flows(ids: ["5f86d070-6cba-4507-8b18-fec705a07548"]).count == 2)
        #expect(try await client.flowRuns(matching: FlowRunQueries.inFlight(), sort: FlowRunQueries.Sort.id).count == 11)
    }
}

@Suite("PrefectClient errors and retries")
struct PrefectClientErrorTests {
    @Test(arguments: [500, 502, 503, 504])
    func serverErrorsWithoutRetryAfterAreRetriedThenFail(code: Int) async {
        let log = RecordLog()
        let body = #"{"detail":"database is locked"}"#
        let transport = FakeTransport(status: code, body: body)
        let error = await expectAPIError { try await makeClient(transport, retries: 2, log: log).workPools() }
        #expect(error?.kind == .httpStatus)
        #expect(error?.status == code)
        #expect(error?.retryAfter == nil)
        #expect(error?.endpoint == "/work_pools/filter")
        #expect(error?.message == "Prefect answered \(code) to POST /work_pools/filter at http://prefect.test:4200/api: database is locked")
        #expect(transport.requests.count == 3)
        #expect(log.all == Array(repeating: RequestRecord(endpoint: "/work_pools/filter", code: String(code), wireBytes: body.utf8.count), count: 3))
    }

    @Test(arguments: [0, 1, 4])
    func retriesIsTheNumberOfExtraAttempts(retries: Int) async {
        let transport = FakeTransport(status: 503)
        _ = await expectAPIError { try await makeClient(transport, retries: retries).workPools() }
        #expect(transport.requests.count == retries + 1)
    }

    @Test func aRetryThatSucceedsReturnsTheData() async throws {
        let log = RecordLog()
        let transport = FakeTransport { _, index in
            index < 2 ? status(503) : ok(poolsJSON(0..<1))
        }
        let pools = try await makeClient(transport, retries: 2, log: log).workPools()
        #expect(pools.map(\.name) == ["pool-000"])
        #expect(log.all.map(\.code) == ["503", "503", "200"])
        // Every attempt sends the same request.
        #expect(Set(transport.bodies) == [#"{"limit":200,"offset":0}"#])
    }

    @Test(arguments: [HTTPClientError.Kind.timeout, .connectionError])
    func transientTransportFailuresAreRetried(kind: HTTPClientError.Kind) async throws {
        let log = RecordLog()
        let transport = FakeTransport { _, index in
            index == 0 ? .failure(HTTPClientError(kind: kind, message: "flaky")) : ok("[]")
        }
        #expect(try await makeClient(transport, log: log).workQueues().isEmpty)
        #expect(log.all == [
            RequestRecord(endpoint: "/work_queues/filter", code: kind.rawValue, wireBytes: 0),
            RequestRecord(endpoint: "/work_queues/filter", code: "200", wireBytes: 2),
        ])
    }

    @Test func persistentTimeoutsFailAfterTheRetries() async {
        let log = RecordLog()
        let transport = FakeTransport { _, _ in .failure(HTTPClientError(kind: .timeout, message: "Timeout was reached")) }
        let client = makeClient(transport, retries: 3, baseURL: "http://robot:s3cret@prefect.test:4200/api/", log: log)
        let error = await expectAPIError { try await client.workPools() }
        #expect(error?.kind == .transport(.timeout))
        #expect(error?.reason == "timeout")
        #expect(error?.status == nil)
        #expect(error?.message == "cannot reach Prefect at http://prefect.test:4200/api (POST /work_pools/filter): Timeout was reached")
        #expect(transport.requests.count == 4)
        #expect(log.all.map(\.code) == ["timeout", "timeout", "timeout", "timeout"])
    }

    @Test(arguments: [HTTPClientError.Kind.tlsError, .responseTooLarge, .invalidRequest, .other])
    func permanentTransportFailuresAreNotRetried(kind: HTTPClientError.Kind) async {
        let transport = FakeTransport { _, _ in .failure(HTTPClientError(kind: kind, message: "nope")) }
        let error = await expectAPIError { try await makeClient(transport, retries: 3).workPools() }
        #expect(error?.kind == .transport(kind))
        #expect(error?.reason == kind.rawValue)
        #expect(transport.requests.count == 1)
    }

    @Test(arguments: [(400, PrefectAPIError.Kind.httpStatus), (401, .unauthorized), (403, .forbidden), (404, .notFound), (409, .httpStatus), (422, .httpStatus)])
    func clientErrorsAreNotRetried(code: Int, kind: PrefectAPIError.Kind) async {
        let log = RecordLog()
        let transport = FakeTransport(status: code)
        let error = await expectAPIError { try await makeClient(transport, retries: 3, log: log).workPools() }
        #expect(error?.kind == kind)
        #expect(error?.status == code)
        #expect(transport.requests.count == 1)
        #expect(log.all.map(\.code) == [String(code)])
    }

    @Test(arguments: [429, 503])
    func retryAfterIsRateLimitedWithoutRetry(code: Int) async {
        let log = RecordLog()
        let transport = FakeTransport(status: code, headers: ["retry-after": "7"])
        let error = await expectAPIError { try await makeClient(transport, retries: 3, log: log).workPools() }
        #expect(error?.kind == .rateLimited)
        #expect(error?.reason == "rate_limited")
        #expect(error?.retryAfter == 7)
        #expect(error?.status == code)
        #expect(error?.message == "Prefect answered \(code) to POST /work_pools/filter at http://prefect.test:4200/api and asked to "
            + "retry after 7s; polls are skipped until then")
        #expect(transport.requests.count == 1)
        #expect(log.all.map(\.code) == [String(code)])
    }

    @Test func fractionalRetryAfterIsRoundedUpInTheMessage() async {
        let transport = FakeTransport(status: 429, headers: ["retry-after": "7.2"])
        let error = await expectAPIError { try await makeClient(transport).workPools() }
        #expect(error?.retryAfter == 7.2)
        #expect(error?.message.contains("retry after 8s") == true)
    }

    @Test func tooManyRequestsWithoutRetryAfterIsRetried() async {
        let transport = FakeTransport(status: 429, body: #"{"detail":"slow down"}"#)
        let error = await expectAPIError { try await makeClient(transport, retries: 2).workPools() }
        #expect(error?.kind == .rateLimited)
        #expect(error?.retryAfter == nil)
        #expect(error?.message == "Prefect rate-limited POST /work_pools/filter at http://prefect.test:4200/api (HTTP 429): slow down")
        #expect(transport.requests.count == 3)
    }

    @Test func retryAfterOnOtherStatusesIsIgnored() async {
        let transport = FakeTransport(status: 500, headers: ["retry-after": "7"])
        let error = await expectAPIError { try await makeClient(transport, retries: 1).workPools() }
        #expect(error?.kind == .httpStatus)
        #expect(error?.retryAfter == nil)
        #expect(transport.requests.count == 2)
    }

    @Test(arguments: [
        (PrefectAuth.none, "the server requires credentials: set PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING "
            + "(self-hosted basic auth), or the --prefect.api-key-file / --prefect.auth-string-file flags"),
        (.apiKey("pnu_x"), "check the API key from PREFECT_API_KEY or --prefect.api-key-file: it may be wrong, expired, "
            + "or lack access to this workspace"),
        (.basic("u:p"), "check the user:pass from PREFECT_API_AUTH_STRING or --prefect.auth-string-file against the "
            + "server's PREFECT_SERVER_API_AUTH_STRING"),
    ])
    func unauthorizedMessageNamesTheCredentialToCheck(auth: PrefectAuth, hint: String) async {
        let transport = FakeTransport(status: 401, body: #"{"detail":"Unauthorized"}"#)
        let error = await expectAPIError { try await makeClient(transport, auth: auth).deployments() }
        #expect(error?.kind == .unauthorized)
        #expect(error?.reason == "unauthorized")
        #expect(error?.message == "Prefect rejected the credentials (HTTP 401) on POST /deployments/filter at "
            + "http://prefect.test:4200/api: \(hint)")
        #expect(auth.credentialHint == hint)
        #expect(error?.message.contains("pnu_x") == false)
    }

    /// A 403 names a missing permission on one endpoint: the same credentials may work on every other.
    @Test func forbiddenMessageNamesTheEndpointNotTheCredentials() async {
        let transport = FakeTransport(status: 403, body: #"{"detail":"Forbidden"}"#)
        let error = await expectAPIError { try await makeClient(transport, auth: .apiKey("pnu_x")).workers(inPool: "a b") }
        #expect(error?.kind == .forbidden)
        #expect(error?.endpoint == "/work_pools/{name}/workers/filter")
        #expect(error?.message == "Prefect refused POST /work_pools/{name}/workers/filter at http://prefect.test:4200/api "
            + "(HTTP 403 Forbidden): Forbidden: the credentials were accepted but lack permission for this endpoint; "
            + "grant read access to it (a Prefect Cloud role or service account), the other collectors keep working")
        #expect(error?.message.contains("PREFECT_API_KEY") == false)
    }

    @Test func notFoundMessageSaysTheURLNeedsAPI() async {
        let transport = FakeTransport(status: 404, body: #"{"detail":"Not Found"}"#)
        let client = makeClient(transport, baseURL: "http://prefect.test:4200")
        let error = await expectAPIError { try await client.workPools() }
        #expect(error?.kind == .notFound)
        #expect(error?.reason == "not_found")
        #expect(error?.message == "Prefect answered 404 to POST /work_pools/filter at http://prefect.test:4200: check that "
            + "--prefect.api-url is the API root (a self-hosted server's URL ends in /api; a Prefect Cloud URL ends in "
            + "/accounts/<id>/workspaces/<id>)")
        #expect(error?.message.contains("/api") == true)
    }

    @Test(arguments: [
        ("error_422_limit", ": Invalid limit: must be less than or equal to 200."),
        ("error_422_validation", ": Invalid request received."),
        ("error_404_pool", ": Work pool \"no-such-pool\" not found."),
    ])
    func prefectErrorDetailsAreQuoted(name: String, detail: String) async throws {
        let body = try fixture(name)
        let transport = FakeTransport { _, _ in .success(HTTPResponse(status: 422, body: body)) }
        let error = await expectAPIError {
            try await makeClient(transport).flowRuns(matching: FlowRunQueries.inFlight(), sort: FlowRunQueries.Sort.id)
        }
        #expect(error?.kind == .httpStatus)
        #expect(error?.reason == "http_error")
        #expect(error?.message == "Prefect answered 422 to POST /flow_runs/filter at http://prefect.test:4200/api\(detail)")
    }

    @Test func longOrNonJSONErrorBodiesAreNotQuotedWhole() async {
        let long = String(repeating: "x", count: 500)
        let transport = FakeTransport { _, index in
            index == 0 ? status(418, "<html>teapot</html>") : status(418, #"{"detail":"\#(long)"}"#)
        }
        let client = makeClient(transport)
        let first = await expectAPIError { try await client.workPools() }
        #expect(first?.message == "Prefect answered 418 to POST /work_pools/filter at http://prefect.test:4200/api")
        let second = await expectAPIError { try await client.workPools() }
        #expect(second?.message == "Prefect answered 418 to POST /work_pools/filter at http://prefect.test:4200/api: "
            + String(repeating: "x", count: 200))
    }

    @Test func invalidJSONIsAnInvalidResponseNamingTheEndpoint() async {
        let log = RecordLog()
        let transport = FakeTransport(status: 200, body: "<html>Prefect UI</html>")
        let error = await expectAPIError { try await makeClient(transport, log: log).workPools() }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.reason == "invalid_response")
        #expect(error?.endpoint == "/work_pools/filter")
        #expect(error?.status == 200)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("unexpected response from /work_pools/filter at http://prefect.test:4200/api: invalid JSON"))
        #expect(message.hasSuffix(#"; body starts with "<html>Prefect UI</html>""#))
        #expect(transport.requests.count == 1)
        #expect(log.all.map(\.code) == ["200"])
    }

    @Test func missingFieldsAndWrongShapesAreDescribed() async {
        let transport = FakeTransport { request, _ in
            request.url.hasSuffix("/work_pools/filter") ? ok(#"[{"id":"p1"}]"#) : ok(#"{"detail":"not a list"}"#)
        }
        let client = makeClient(transport)
        let missing = await expectAPIError { try await client.workPools() }
        #expect(missing?.message.contains(#"missing field "name""#) == true)
        let shape = await expectAPIError { try await client.deployments() }
        #expect(shape?.kind == .invalidResponse)
        #expect(shape?.endpoint == "/deployments/filter")
        #expect(shape?.message.contains("unexpected response from /deployments/filter") == true)
        #expect(shape?.message.contains("expected Array") == true)
    }

    @Test func countThatIsNotANumberIsInvalid() async {
        let transport = FakeTransport(status: 200, body: #""many""#)
        let error = await expectAPIError { try await makeClient(transport).countFlowRuns(matching: FlowRunQueries.inFlight()) }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.endpoint == "/flow_runs/count")
    }

    @Test func loneSurrogatesInNamesDecodeAsReplacementCharacters() async throws {
        // JSON can carry "\udc80"; Foundation's JSONDecoder fails the whole page on it unless repaired.
        let body = #"[{"id":"p1","name":"pool-\udc80-\ud800x","type":"process","is_paused":false,"status":"READY"}]"#
        let pools = try await makeClient(FakeTransport(status: 200, body: body)).workPools()
        #expect(pools.map(\.name) == ["pool-\u{FFFD}-\u{FFFD}x"])
    }

    @Test(arguments: [[0xFF, 0xFE] as [UInt8], [0xFE, 0xFF]])
    func utf16BodiesAreLeftToTheDecoder(byteOrderMark: [UInt8]) async throws {
        // Found by Fuzz/JSONDecodingFuzz: the UTF-8 repair broke UTF-16 and UTF-32 bodies that decode.
        let littleEndian = byteOrderMark == [0xFF, 0xFE]
        let units = Array("42".utf16)
        let text = units.flatMap { littleEndian ? [UInt8($0 & 0xFF), UInt8($0 >> 8)] : [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let transport = FakeTransport { _, _ in .success(HTTPResponse(status: 200, body: byteOrderMark + text)) }
        #expect(try await makeClient(transport).countFlowRuns(matching: FlowRunQueries.inFlight()) == 42)
    }

    @Test(arguments: [
        (PrefectAPIError.Kind.transport(.timeout), "timeout"), (.transport(.connectionError), "connection_error"),
        (.transport(.tlsError), "tls_error"), (.unauthorized, "unauthorized"), (.forbidden, "forbidden"), (.notFound, "not_found"),
        (.rateLimited, "rate_limited"), (.httpStatus, "http_error"), (.invalidResponse, "invalid_response"),
    ])
    func reasonsAreStable(kind: PrefectAPIError.Kind, reason: String) {
        let error = PrefectAPIError(kind: kind, endpoint: "/x", message: "m")
        #expect(error.reason == reason)
        #expect(error.description == "m")
    }
}

@Suite("PrefectClient requests")
struct PrefectClientRequestTests {
    @Test(arguments: [
        (PrefectAuth.apiKey("pnu_abc123"), "Bearer pnu_abc123"),
        (.basic("user:pa ss"), "Basic dXNlcjpwYSBzcw=="),
        (.basic("admin:pässword"), "Basic YWRtaW46cMOkc3N3b3Jk"),
    ])
    func authorizationHeaderIsExact(auth: PrefectAuth, header: String) async throws {
        let transport = FakeTransport(status: 200, body: "[]")
        _ = try await makeClient(transport, auth: auth).workPools()
        let request = try #require(transport.requests.first)
        #expect(request.headers.filter { $0.name == "Authorization" }.map(\.value) == [header])
    }

    @Test func noCredentialsNoAuthorizationHeader() async throws {
        let transport = FakeTransport(status: 200, body: "[]")
        _ = try await makeClient(transport, auth: PrefectAuth.none).workPools()
        let request = try #require(transport.requests.first)
        #expect(request.header("Authorization") == nil)
        #expect(request.headers.map(\.name) == ["Accept", "Content-Type"])
        #expect(request.header("Accept") == "application/json")
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.url == "http://prefect.test:4200/api/work_pools/filter")
    }

    @Test func getsHaveNoBodyAndNoContentType() async throws {
        let transport = FakeTransport { request, _ in
            request.url.hasSuffix("/admin/version") ? ok(#""3.8.8""#) : ok(#""0.8.4""#)
        }
        let version = try await makeClient(transport, auth: .apiKey("k")).serverVersion()
        #expect(version.version == "3.8.8")
        #expect(version.apiVersion == "0.8.4")
        #expect(transport.paths == ["/version", "/admin/version"])
        for request in transport.requests {
            #expect(request.method == .get)
            #expect(request.body == nil)
            #expect(request.headers.map(\.name) == ["Accept", "Authorization"])
        }
    }

    @Test(arguments: [404, 401, 403])
    func serverVersionToleratesAMissingAdminAPI(code: Int) async throws {
        let log = RecordLog()
        let transport = FakeTransport { request, _ in
            request.url.hasSuffix("/admin/version") ? status(code, #"{"detail":"Not Found"}"#) : ok(#""0.8.4""#)
        }
        let client = makeClient(transport, log: log)
        let version = try await client.serverVersion()
        #expect(version.version == nil)
        #expect(version.apiVersion == "0.8.4")
        #expect(log.all.map(\.endpoint) == ["/version", "/admin/version"])
        #expect(log.all.map(\.code) == ["200", String(code)])
        // Refused once, /admin/version is asked again only every 20th call (Prefect Cloud has none).
        for _ in 1..<PrefectClient.adminVersionRecheck { #expect(try await client.serverVersion().apiVersion == "0.8.4") }
        #expect(log.all.filter { $0.endpoint == "/admin/version" }.count == 1)
        _ = try await client.serverVersion()
        #expect(log.all.filter { $0.endpoint == "/admin/version" }.count == 2)
    }

    @Test func serverVersionFailsWhenTheAdminAPIFailsOtherwise() async {
        let transport = FakeTransport { request, _ in
            request.url.hasSuffix("/admin/version") ? status(500) : ok(#""0.8.4""#)
        }
        let error = await expectAPIError { try await makeClient(transport, retries: 1).serverVersion() }
        #expect(error?.kind == .httpStatus)
        #expect(error?.endpoint == "/admin/version")
        #expect(transport.paths == ["/version", "/admin/version", "/admin/version"])
    }

    @Test func serverVersionFailsWhenVersionIsMissing() async {
        let transport = FakeTransport(status: 404)
        let error = await expectAPIError { try await makeClient(transport).serverVersion() }
        #expect(error?.kind == .notFound)
        #expect(error?.endpoint == "/version")
        #expect(transport.requests.count == 1)
    }

    @Test(arguments: [
        ("fixture-pool", "fixture-pool"),
        ("my pool", "my%20pool"),
        ("team/a", "team%2Fa"),
        ("zürich-☃", "z%C3%BCrich-%E2%98%83"),
        ("q?x=1#frag", "q%3Fx%3D1%23frag"),
        ("100%", "100%25"),
        ("a+b&c", "a%2Bb%26c"),
        ("dots.and_under~", "dots.and_under~"),
    ])
    func poolNamesArePercentEncodedInThePath(pool: String, encoded: String) async throws {
        let log = RecordLog()
        let transport = FakeTransport(status: 200, body: "[]")
        _ = try await makeClient(transport, log: log).workers(inPool: pool)
        #expect(transport.requests.map(\.url) == ["http://prefect.test:4200/api/work_pools/\(encoded)/workers/filter"])
        #expect(log.all == [RequestRecord(endpoint: "/work_pools/{name}/workers/filter", code: "200", wireBytes: 2)])
        #expect(PrefectClient.encodePathSegment(pool) == encoded)
    }

    @Test func observerGetsOneRecordPerAttemptWithTemplateCodeAndWireBytes() async throws {
        let log = RecordLog()
        let transport = FakeTransport { request, index in
            if index == 0 { return .failure(HTTPClientError(kind: .connectionError, message: "refused")) }
            let body = request.url.hasSuffix("/count") ? "0" : "[]"
            return .success(HTTPResponse(status: 200, body: Array(body.utf8), wireBytes: 123))
        }
        let client = makeClient(transport, log: log)
        #expect(try await client.workers(inPool: "p q").isEmpty)
        #expect(try await client.countFlowRuns(matching: [:]) == 0)
        #expect(log.all == [
            RequestRecord(endpoint: "/work_pools/{name}/workers/filter", code: "connection_error", wireBytes: 0),
            RequestRecord(endpoint: "/work_pools/{name}/workers/filter", code: "200", wireBytes: 123),
            RequestRecord(endpoint: "/flow_runs/count", code: "200", wireBytes: 123),
        ])
    }

    @Test func requestsInFlightAreBounded() async throws {
        let transport = FakeTransport { _, _ in
            try? await Task.sleep(for: .milliseconds(100))
            return ok("[]")
        }
        let client = makeClient(transport, maxConcurrentRequests: 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                group.addTask { _ = try await client.workers(inPool: "pool-\(index)") }
            }
            try await group.waitForAll()
        }
        #expect(transport.requests.count == 8)
        #expect(transport.maximumInFlight == 2)
    }
}

@Suite("PrefectClientConfiguration")
struct PrefectClientConfigurationTests {
    @Test(arguments: [
        ("https://user:pass@prefect.example.com/api", "https://prefect.example.com/api"),
        ("https://robot:s3cr@t@prefect.example.com:8443/api", "https://prefect.example.com:8443/api"),
        ("http://token@127.0.0.1:4200/api", "http://127.0.0.1:4200/api"),
        ("http://127.0.0.1:4200/api", "http://127.0.0.1:4200/api"),
        ("https://api.prefect.cloud/api/accounts/a/workspaces/w", "https://api.prefect.cloud/api/accounts/a/workspaces/w"),
        ("http://host/api/user@example", "http://host/api/user@example"),
        ("https://user:pass@host", "https://host"),
        ("not a url", "not a url"),
    ])
    func redactedBaseURLStripsCredentials(url: String, redacted: String) {
        #expect(PrefectClientConfiguration(baseURL: url).redactedBaseURL == redacted)
    }

    @Test func trailingSlashesAreRemoved() {
        #expect(PrefectClientConfiguration(baseURL: "http://h/api///").baseURL == "http://h/api")
        #expect(PrefectClientConfiguration(baseURL: "http://h/api").baseURL == "http://h/api")
    }

    @Test func defaultsAndClamps() {
        let defaults = PrefectClientConfiguration(baseURL: "http://h/api")
        #expect(defaults.auth == PrefectAuth.none)
        #expect(defaults.retries == 2)
        #expect(defaults.retryBaseDelay == .milliseconds(200))
        #expect(defaults.pageSize == 200)
        #expect(defaults.maxConcurrentRequests == 4)
        let clamped = PrefectClientConfiguration(baseURL: "http://h/api", retries: -1, maxConcurrentRequests: 0)
        #expect(clamped.retries == 0)
        #expect(clamped.maxConcurrentRequests == 1)
    }

    @Test(arguments: [("7", 7.0), (" 120 ", 120), ("0", 0), ("2.5", 2.5), ("1000000", 86_400)] as [(String, Double)])
    func retryAfterSeconds(value: String, seconds: Double) {
        #expect(PrefectClient.parseRetryAfter(value) == seconds)
    }

    @Test(arguments: ["", "-1", "soon", "inf", "nan", "Wed, 99 Foo 2015 07:28:00 GMT"])
    func retryAfterGarbageIsNil(value: String) {
        #expect(PrefectClient.parseRetryAfter(value) == nil)
    }

    @Test func retryAfterHTTPDates() throws {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let future = formatter.string(from: Date().addingTimeInterval(100))
        let seconds = try #require(PrefectClient.parseRetryAfter(future))
        #expect(seconds > 95 && seconds <= 100)
        #expect(PrefectClient.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT") == 0)
    }
}
