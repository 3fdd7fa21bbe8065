import Foundation
@testable import HTTPClient
import Testing
import Locking

private func client(
    requestTimeout: Duration = .seconds(5), connectTimeout: Duration = .seconds(2), maxResponseBytes: Int = 32 << 20,
    userAgent: String = "prefect-exporter-tests/1"
) -> CurlHTTPClient {
    CurlHTTPClient(configuration: HTTPClientConfiguration(
        connectTimeout: connectTimeout, requestTimeout: requestTimeout, maxResponseBytes: maxResponseBytes,
        userAgent: userAgent))
}

private func expectFailure(
    _ result: Result<HTTPResponse, HTTPClientError>, sourceLocation: SourceLocation = #_sourceLocation
) -> HTTPClientError? {
    switch result {
    case .success(let response):
        Issue.record("expected a failure, got HTTP \(response.status)", sourceLocation: sourceLocation)
        return nil
    case .failure(let error):
        return error
    }
}

@Suite("CurlHTTPClient")
struct CurlHTTPClientTests {
    @Test func getReturnsStatusHeadersAndBody() async throws {
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(
                headers: ["Content-Type: application/json", "X-Prefect-Thing: Mixed Case Value"],
                body: Array("[1,2,3]".utf8)))
        }
        defer { server.stop() }
        let response = try await client().perform(HTTPRequest(
            method: .get, url: server.baseURL + "/api/version?x=1",
            headers: [("Accept", "application/json"), ("X-Test", "yes")]))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "[1,2,3]")
        #expect(response.wireBytes == 7)
        #expect(response.headers["content-type"] == "application/json")
        #expect(response.headers["x-prefect-thing"] == "Mixed Case Value")

        let requests = server.requests
        try #require(requests.count == 1)
        #expect(requests[0].requestLine == "GET /api/version?x=1 HTTP/1.1")
        #expect(requests[0].header("Accept") == "application/json")
        #expect(requests[0].header("X-Test") == "yes")
        #expect(requests[0].header("User-Agent") == "prefect-exporter-tests/1")
        #expect(requests[0].header("Accept-Encoding")?.contains("gzip") == true)
        #expect(requests[0].body.isEmpty)
    }

    @Test(arguments: ["content-type", "Content-Type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
    func headerLookupIsCaseInsensitive(name: String) throws {
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(headers: ["CONTENT-type:   text/plain  "], body: Array("ok".utf8)))
        }
        defer { server.stop() }
        let response = try client().performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/")).get()
        #expect(response.header(name) == "text/plain")
        #expect(response.headers.keys.contains("content-type"))
        #expect(!response.headers.keys.contains("CONTENT-type"))
    }

    @Test func repeatedHeaderKeepsLastValue() throws {
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(headers: ["X-Twice: first", "x-twice: second"]))
        }
        defer { server.stop() }
        let response = try client().performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/")).get()
        #expect(response.header("X-Twice") == "second")
        #expect(response.body.isEmpty)
    }

    @Test func headersOfAnInterimResponseAreDiscarded() throws {
        let server = try RawSocketServer { _ in
            .bytes(Array("HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n".utf8)
                + RawSocketServer.response(headers: ["X-Final: 2"], body: Array("done".utf8)))
        }
        defer { server.stop() }
        let response = try client().performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/")).get()
        #expect(response.status == 200)
        #expect(response.header("x-interim") == nil)
        #expect(response.header("x-final") == "2")
        #expect(String(decoding: response.body, as: UTF8.self) == "done")
    }

    @Test(arguments: [(401, "Unauthorized"), (404, "Not Found"), (429, "Too Many Requests"), (503, "Service Unavailable")])
    func errorStatusesAreResponsesNotErrors(status: Int, reason: String) async throws {
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(status: status, reason: reason, headers: ["Retry-After: 7"], body: Array("{\"detail\":\"x\"}".utf8)))
        }
        defer { server.stop() }
        let response = try await client().perform(HTTPRequest(method: .get, url: server.baseURL + "/"))
        #expect(response.status == status)
        #expect(response.header("retry-after") == "7")
        #expect(String(decoding: response.body, as: UTF8.self) == "{\"detail\":\"x\"}")
    }

    @Test func redirectsAreNotFollowed() throws {
        let server = try RawSocketServer { request in
            if request.target == "/old" {
                return .bytes(RawSocketServer.response(status: 302, reason: "Found", headers: ["Location: /new"]))
            }
            return .bytes(RawSocketServer.response(body: Array("new".utf8)))
        }
        defer { server.stop() }
        let response = try client().performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/old")).get()
        #expect(response.status == 302)
        #expect(response.header("location") == "/new")
        #expect(server.requests.map(\.target) == ["/old"])
    }

    @Test func postDeliversBodyAndHeaders() async throws {
        let server = try RawSocketServer { request in
            .bytes(RawSocketServer.response(headers: ["Content-Type: application/json"], body: request.body))
        }
        defer { server.stop() }
        let body = Array(#"{"flow_runs":{"state":{"type":{"any_":["RUNNING"]}}},"limit":200,"offset":0,"name":"ü ✓"}"#.utf8)
        let response = try await client().perform(HTTPRequest(
            method: .post, url: server.baseURL + "/api/flow_runs/filter",
            headers: [("Content-Type", "application/json"), ("Authorization", "Bearer pnu_secret")], body: body))
        #expect(response.status == 200)
        #expect(response.body == body)

        let request = try #require(server.requests.first)
        #expect(request.requestLine == "POST /api/flow_runs/filter HTTP/1.1")
        #expect(request.body == body)
        #expect(request.header("Content-Length") == String(body.count))
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.header("Authorization") == "Bearer pnu_secret")
        #expect(request.header("Expect") == nil)
    }

    @Test(arguments: [nil, [UInt8]()] as [[UInt8]?])
    func postWithoutBodySendsZeroLength(body: [UInt8]?) throws {
        let server = try RawSocketServer { request in
            .bytes(RawSocketServer.response(body: Array("len=\(request.body.count)".utf8)))
        }
        defer { server.stop() }
        let response = try client().performBlocking(HTTPRequest(method: .post, url: server.baseURL + "/p", body: body)).get()
        #expect(String(decoding: response.body, as: UTF8.self) == "len=0")
        let request = try #require(server.requests.first)
        #expect(request.method == "POST")
        #expect(request.header("Content-Length") == "0")
    }

    @Test func largePostBodyIsDeliveredIntact() throws {
        let server = try RawSocketServer { request in
            .bytes(RawSocketServer.response(body: Array("\(request.body.count):\(request.body.reduce(0) { $0 &+ Int($1) })".utf8)))
        }
        defer { server.stop() }
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let response = try client().performBlocking(HTTPRequest(method: .post, url: server.baseURL + "/big", body: body)).get()
        #expect(String(decoding: response.body, as: UTF8.self) == "\(body.count):\(body.reduce(0) { $0 &+ Int($1) })")
    }

    @Test func gzipBodiesAreDecompressedAndWireBytesCountCompressedSize() throws {
        let plain = Array(String(repeating: "{\"state_type\":\"RUNNING\"},", count: 400).utf8)
        let compressed = try runGzip(["-c", "-n"], input: plain)
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(headers: ["Content-Encoding: gzip"], body: compressed))
        }
        defer { server.stop() }
        let response = try client().performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/")).get()
        #expect(response.body == plain)
        #expect(response.wireBytes == compressed.count)
        #expect(compressed.count < plain.count)
    }

    @Test func sequentialRequestsReuseTheClient() async throws {
        let server = try RawSocketServer { request in
            .bytes(RawSocketServer.response(body: Array(request.target.utf8)))
        }
        defer { server.stop() }
        let http = client()
        for index in 0..<5 {
            let response = try await http.perform(HTTPRequest(method: index % 2 == 0 ? .get : .post, url: server.baseURL + "/n/\(index)"))
            #expect(String(decoding: response.body, as: UTF8.self) == "/n/\(index)")
        }
        #expect(server.requests.map(\.method) == ["GET", "POST", "GET", "POST", "GET"])
    }

    @Test func concurrentRequestsAllComplete() async throws {
        let server = try RawSocketServer { request in
            .bytes(RawSocketServer.response(body: Array(request.target.utf8)))
        }
        defer { server.stop() }
        let http = client()
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let response = try await http.perform(HTTPRequest(method: .get, url: server.baseURL + "/c/\(index)"))
                    return String(decoding: response.body, as: UTF8.self)
                }
            }
            var all: [String] = []
            for try await body in group { all.append(body) }
            return all
        }
        #expect(bodies.sorted() == (0..<8).map { "/c/\($0)" }.sorted())
    }

    // MARK: Failures

    @Test func connectionRefusedIsConnectionError() async throws {
        // Bound but not listening: connecting is refused, and the port cannot be taken meanwhile.
        let closed = try RawSocketServer(listen: false)
        defer { closed.stop() }
        do {
            _ = try await client().perform(HTTPRequest(method: .get, url: closed.baseURL + "/api/version"))
            Issue.record("expected connection refused")
        } catch {
            #expect(error.kind == .connectionError)
            #expect(error.kind.rawValue == "connection_error")
            #expect(!error.message.isEmpty)
            #expect(error.description == error.message)
        }
    }

    @Test func silentServerTimesOutWithinRequestTimeout() throws {
        // Listening but never accepting: the kernel completes the handshake and nobody answers.
        let silent = try RawSocketServer(accept: false)
        defer { silent.stop() }
        let started = ContinuousClock.now
        let result = client(requestTimeout: .milliseconds(300)).performBlocking(HTTPRequest(method: .get, url: silent.baseURL + "/"))
        let elapsed = ContinuousClock.now - started
        let error = try #require(expectFailure(result))
        #expect(error.kind == .timeout)
        #expect(error.kind.rawValue == "timeout")
        #expect(elapsed >= .milliseconds(250))
        #expect(elapsed < .milliseconds(2500))
    }

    @Test func serverThatAcceptsButNeverAnswersTimesOut() async throws {
        let hanging = try RawSocketServer { _ in .hang }
        defer { hanging.stop() }
        let started = ContinuousClock.now
        do {
            _ = try await client(requestTimeout: .milliseconds(300)).perform(
                HTTPRequest(method: .post, url: hanging.baseURL + "/", body: Array("{}".utf8)))
            Issue.record("expected a timeout")
        } catch {
            #expect(error.kind == .timeout)
        }
        // The server would hang forever; any bound shows the timeout fired. Generous, because a
        // loaded 2-core machine delays threads by seconds (this bound is not a speed goal).
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(hanging.requests.count == 1)
    }

    @Test func bodyLargerThanLimitIsResponseTooLarge() throws {
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(body: [UInt8](repeating: 0x61, count: 5_000)))
        }
        defer { server.stop() }
        let result = client(maxResponseBytes: 1_000).performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/"))
        let error = try #require(expectFailure(result))
        #expect(error.kind == .responseTooLarge)
        #expect(error.kind.rawValue == "response_too_large")
        #expect(error.message == "response body exceeds 1000 bytes")
    }

    @Test func decompressedSizeCountsAgainstTheLimit() throws {
        let plain = [UInt8](repeating: 0x7B, count: 50_000)
        let compressed = try runGzip(["-c", "-n"], input: plain)
        #expect(compressed.count < 1_000)
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(headers: ["Content-Encoding: gzip"], body: compressed))
        }
        defer { server.stop() }
        let result = client(maxResponseBytes: 10_000).performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/"))
        #expect(expectFailure(result)?.kind == .responseTooLarge)
    }

    @Test func bodyExactlyAtLimitIsAccepted() throws {
        let server = try RawSocketServer { _ in
            .bytes(RawSocketServer.response(body: [UInt8](repeating: 0x62, count: 1_000)))
        }
        defer { server.stop() }
        let response = try client(maxResponseBytes: 1_000).performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/")).get()
        #expect(response.body.count == 1_000)
    }

    @Test(arguments: ["ftp://127.0.0.1/file", "file:///etc/passwd", "gopher://127.0.0.1/"])
    func onlyHTTPAndHTTPSAreAllowed(url: String) throws {
        let result = client().performBlocking(HTTPRequest(method: .get, url: url))
        #expect(expectFailure(result)?.kind == .invalidRequest)
    }

    @Test func clientIsUsableAfterAFailure() throws {
        let closed = try RawSocketServer(listen: false)
        defer { closed.stop() }
        let server = try RawSocketServer { _ in .bytes(RawSocketServer.response(body: Array("fine".utf8))) }
        defer { server.stop() }
        let http = client()
        #expect(expectFailure(http.performBlocking(HTTPRequest(method: .get, url: closed.baseURL + "/")))?.kind == .connectionError)
        let response = try http.performBlocking(HTTPRequest(method: .get, url: server.baseURL + "/")).get()
        #expect(String(decoding: response.body, as: UTF8.self) == "fine")
    }
}

@Suite("HTTP messages")
struct HTTPMessagesTests {
    @Test func responseDefaultsWireBytesToBodyCount() {
        #expect(HTTPResponse(status: 200, body: [1, 2, 3]).wireBytes == 3)
        #expect(HTTPResponse(status: 200, body: [1, 2, 3], wireBytes: 1).wireBytes == 1)
        #expect(HTTPResponse(status: 204).body.isEmpty)
    }

    @Test func responseHeaderLowercasesTheName() {
        let response = HTTPResponse(status: 200, headers: ["retry-after": "7"])
        #expect(response.header("Retry-After") == "7")
        #expect(response.header("RETRY-AFTER") == "7")
        #expect(response.header("retry-after") == "7")
        #expect(response.header("Retry") == nil)
    }

    @Test func requestKeepsHeaderOrder() {
        let request = HTTPRequest(method: .post, url: "http://x/", headers: [("B", "2"), ("A", "1")], body: [9])
        #expect(request.headers.map(\.name) == ["B", "A"])
        #expect(request.method.rawValue == "POST")
        #expect(HTTPRequest.Method.get.rawValue == "GET")
    }

    @Test(arguments: [
        (HTTPClientError.Kind.timeout, "timeout"), (.connectionError, "connection_error"), (.tlsError, "tls_error"),
        (.responseTooLarge, "response_too_large"), (.invalidRequest, "invalid_request"), (.other, "error"),
    ])
    func errorKindsHaveStableLabels(kind: HTTPClientError.Kind, label: String) {
        #expect(kind.rawValue == label)
    }

    @Test func configurationDefaults() {
        let configuration = HTTPClientConfiguration()
        #expect(configuration.connectTimeout == .seconds(5))
        #expect(configuration.requestTimeout == .seconds(10))
        #expect(configuration.maxResponseBytes == 32 * 1024 * 1024)
        #expect(configuration.userAgent == "prefect-exporter")
        #expect(configuration.caFile == nil)
        #expect(configuration.insecureSkipVerify == false)
    }

    @Test(arguments: [
        (Duration.milliseconds(300), 300), (.seconds(10), 10_000), (.seconds(1.5), 1_500), (.microseconds(2_500), 2),
        (.zero, 1), (.microseconds(10), 1), (.seconds(-5), 1), (.seconds(3_000_000), Int(Int32.max)),
        (.seconds(9_000_000_000_000), Int(Int32.max)),
    ])
    func clampedMilliseconds(duration: Duration, milliseconds: Int) {
        #expect(duration.clampedMilliseconds == milliseconds)
    }
}

@Suite("LockedValue")
struct LockedValueTests {
    @Test func withLockReturnsTheBodysResultAndMutates() {
        let value = LockedValue([1, 2])
        let count = value.withLock { array -> Int in
            array.append(3)
            return array.count
        }
        #expect(count == 3)
        #expect(value.withLock { $0 } == [1, 2, 3])
    }

    @Test func withLockRethrowsAndKeepsEarlierMutations() {
        struct Boom: Error {}
        let value = LockedValue(0)
        #expect(throws: Boom.self) {
            try value.withLock { number in
                number = 5
                throw Boom()
            }
        }
        #expect(value.withLock { $0 } == 5)
        // The lock was released despite the throw.
        #expect(value.withLock { $0 + 1 } == 6)
    }

    @Test func concurrentIncrementsAreNotLost() async {
        let counter = LockedValue(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    for _ in 0..<1_000 { counter.withLock { $0 += 1 } }
                }
            }
        }
        #expect(counter.withLock { $0 } == 16_000)
    }

    @Test func concurrentIncrementsFromThreadsAreNotLost() {
        let counter = LockedValue(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<2_000 { counter.withLock { $0 += 1 } }
        }
        #expect(counter.withLock { $0 } == 16_000)
    }
}
