import Foundation
import Testing
import WebServer

private let metricsText = """
    # HELP prefect_up 1 if the last poll fully succeeded.
    # TYPE prefect_up gauge
    prefect_up 1

    """

/// A server on an ephemeral loopback port with the exporter's routes.
private func startServer(
    telemetryPath: String = "/metrics",
    gzip: Bool = true,
    ready: TestFlag = TestFlag(),
    configuration: WebServerConfiguration = WebServerConfiguration(listenAddress: "127.0.0.1:0")
) throws -> WebServer {
    let plain = Array(metricsText.utf8)
    let store = MetricsPageStore(plain: plain, gzip: gzip ? try runGzip(["-c", "-n"], input: plain) : nil)
    let routes = try ExporterRoutes(
        telemetryPath: telemetryPath,
        version: "1.2.3",
        prefectURL: "https://robot:s3cret@prefect.example.com/api",
        isReady: { ready.isSet },
        metricsPage: { store.current })
    return try WebServer(configuration: configuration, handler: routes)
}

@Suite("WebServer")
struct WebServerTests {
    @Test func metricsArePlainTextWithExactContentType() throws {
        let server = try startServer()
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, path: "/metrics")
        #expect(reply.status == 200)
        #expect(reply.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(reply.header("Content-Encoding") == nil)
        #expect(reply.header("Content-Length") == String(metricsText.utf8.count))
        #expect(reply.text == metricsText)
    }

    @Test func queryStringIsIgnored() throws {
        let server = try startServer()
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, path: "/metrics?name[]=prefect_up")
        #expect(reply.status == 200)
        #expect(reply.text == metricsText)
    }

    @Test func gzipIsServedWhenAccepted() throws {
        let server = try startServer()
        defer { server.stop() }
        for acceptEncoding in ["gzip", "gzip, deflate, br", "deflate;q=1.0, GZIP;q=0.5", "x-gzip", "*", "identity, *;q=0.1"] {
            let reply = try TestHTTP.request(port: server.port, path: "/metrics", headers: ["Accept-Encoding: \(acceptEncoding)"])
            #expect(reply.status == 200, "\(acceptEncoding)")
            #expect(reply.header("Content-Encoding") == "gzip", "\(acceptEncoding)")
            #expect(reply.header("Vary") == "Accept-Encoding", "\(acceptEncoding)")
            #expect(reply.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            #expect(Array(reply.body.prefix(2)) == [0x1F, 0x8B], "gzip magic for \(acceptEncoding)")
            #expect(try runGzip(["-d", "-c"], input: reply.body) == Array(metricsText.utf8), "\(acceptEncoding)")
        }
    }

    @Test func gzipIsNotServedWhenRefused() throws {
        let server = try startServer()
        defer { server.stop() }
        for acceptEncoding in ["gzip;q=0", "gzip; q=0.000, deflate", "identity", "deflate, br", "*;q=0", "gzip;q=0, *", ""] {
            let reply = try TestHTTP.request(port: server.port, path: "/metrics", headers: ["Accept-Encoding: \(acceptEncoding)"])
            #expect(reply.status == 200, "\(acceptEncoding)")
            #expect(reply.header("Content-Encoding") == nil, "\(acceptEncoding)")
            #expect(reply.header("Vary") == "Accept-Encoding", "\(acceptEncoding)")
            #expect(reply.text == metricsText, "\(acceptEncoding)")
        }
        let noHeader = try TestHTTP.request(port: server.port, path: "/metrics")
        #expect(noHeader.header("Content-Encoding") == nil)
        #expect(noHeader.text == metricsText)
    }

    @Test func plainPageIsServedWhenThereIsNoGzipPage() throws {
        let server = try startServer(gzip: false)
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, path: "/metrics", headers: ["Accept-Encoding: gzip"])
        #expect(reply.status == 200)
        #expect(reply.header("Content-Encoding") == nil)
        #expect(reply.header("Vary") == nil)
        #expect(reply.text == metricsText)
    }

    @Test func headSendsHeadersOnly() throws {
        let server = try startServer()
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, method: "HEAD", path: "/metrics")
        #expect(reply.status == 200)
        #expect(reply.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(reply.header("Content-Length") == String(metricsText.utf8.count))
        #expect(reply.body.isEmpty)

        // Nothing follows the head on the wire either.
        let descriptor = try TestHTTP.connect(port: server.port)
        defer { close(descriptor) }
        try TestHTTP.send(TestHTTP.requestBytes(method: "HEAD", path: "/-/healthy"), on: descriptor)
        let raw = String(decoding: try TestHTTP.readToEnd(descriptor), as: UTF8.self)
        #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(raw.hasSuffix("\r\n\r\n"))
        #expect(raw.contains("Content-Length: 9\r\n"))
    }

    @Test func unknownPathIs404() throws {
        let server = try startServer()
        defer { server.stop() }
        for path in ["/nope", "/metrics/", "/metricsx", "/-/", "//metrics"] {
            let reply = try TestHTTP.request(port: server.port, path: path)
            #expect(reply.status == 404, "\(path)")
            #expect(reply.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(reply.text == "404 page not found\n")
        }
        let post = try TestHTTP.request(port: server.port, method: "POST", path: "/nope", body: Array("x=1".utf8))
        #expect(post.status == 404)
    }

    @Test func otherMethodsAre405WithAllow() throws {
        let server = try startServer()
        defer { server.stop() }
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"] {
            for path in ["/metrics", "/", "/-/healthy", "/-/ready"] {
                let reply = try TestHTTP.request(port: server.port, method: method, path: path)
                #expect(reply.status == 405, "\(method) \(path)")
                #expect(reply.header("Allow") == "GET, HEAD", "\(method) \(path)")
                #expect(reply.text == "405 method not allowed\n")
            }
        }
    }

    @Test func requestBodiesAreDiscardedAndTheConnectionKeptAlive() throws {
        let server = try startServer()
        defer { server.stop() }
        let descriptor = try TestHTTP.connect(port: server.port)
        defer { close(descriptor) }
        let body = [UInt8](repeating: UInt8(ascii: "a"), count: 60_000)
        let requests = TestHTTP.requestBytes(method: "POST", path: "/metrics", body: body, close: false)
            + TestHTTP.requestBytes(method: "GET", path: "/metrics", body: Array("ignored".utf8), close: false)
            + TestHTTP.requestBytes(method: "GET", path: "/-/healthy", close: true)
        try TestHTTP.send(requests, on: descriptor)
        let replies = try TestHTTP.parse(TestHTTP.readToEnd(descriptor))
        #expect(replies.map(\.status) == [405, 200, 200])
        #expect(replies.first?.header("Allow") == "GET, HEAD")
        #expect(replies.map(\.text) == ["405 method not allowed\n", metricsText, "Healthy.\n"])
    }

    @Test func largeOrChunkedBodiesAreAnsweredWithoutReadingThem() throws {
        let server = try startServer()
        defer { server.stop() }
        let chunkedDescriptor = try TestHTTP.connect(port: server.port)
        defer { close(chunkedDescriptor) }
        let chunked = "PUT /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        try TestHTTP.send(Array(chunked.utf8), on: chunkedDescriptor)
        let replies = try TestHTTP.parse(TestHTTP.readToEnd(chunkedDescriptor))
        #expect(replies.map(\.status) == [405])
        #expect(replies.first?.header("Connection") == "close")

        // 10 MB announced: the server answers and closes without reading it. The client may see
        // its send fail or the connection reset, but never a wrong answer.
        let largeDescriptor = try TestHTTP.connect(port: server.port)
        defer { close(largeDescriptor) }
        let head = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
        try TestHTTP.send(Array(head.utf8) + [UInt8](repeating: 0, count: 100_000), on: largeDescriptor)
        if let data = try? TestHTTP.readToEnd(largeDescriptor), !data.isEmpty {
            #expect(try TestHTTP.parse(data).map(\.status) == [405])
        }

        // The server still answers afterwards.
        #expect(try TestHTTP.request(port: server.port, path: "/-/healthy").status == 200)
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let server = try startServer()
        defer { server.stop() }
        let descriptor = try TestHTTP.connect(port: server.port)
        defer { close(descriptor) }
        let requests = TestHTTP.requestBytes(method: "GET", path: "/metrics", close: false)
            + TestHTTP.requestBytes(method: "HEAD", path: "/metrics", close: false)
            + TestHTTP.requestBytes(method: "GET", path: "/-/healthy", close: true)
        try TestHTTP.send(requests, on: descriptor)
        let replies = try TestHTTP.parse(TestHTTP.readToEnd(descriptor), headRequests: [1])
        #expect(replies.map(\.status) == [200, 200, 200])
        #expect(replies.map(\.text) == [metricsText, "", "Healthy.\n"])
    }

    @Test func healthyIsAlways200() throws {
        let server = try startServer()
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, path: "/-/healthy")
        #expect(reply.status == 200)
        #expect(reply.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(reply.text == "Healthy.\n")
    }

    @Test func readyIs503UntilReadyThen200() throws {
        let ready = TestFlag()
        let server = try startServer(ready: ready)
        defer { server.stop() }
        let before = try TestHTTP.request(port: server.port, path: "/-/ready")
        #expect(before.status == 503)
        #expect(before.text == "Not ready: first poll not yet attempted.\n")
        ready.set()
        let after = try TestHTTP.request(port: server.port, path: "/-/ready")
        #expect(after.status == 200)
        #expect(after.text == "Ready.\n")
    }

    @Test func landingPageLinksEverywhereAndHidesCredentials() throws {
        let server = try startServer()
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, path: "/")
        #expect(reply.status == 200)
        #expect(reply.header("Content-Type") == "text/html; charset=utf-8")
        let page = reply.text
        #expect(page.contains("<title>Prefect Exporter</title>"))
        #expect(page.contains("<a href=\"/metrics\">"))
        #expect(page.contains("<a href=\"/-/healthy\">"))
        #expect(page.contains("<a href=\"/-/ready\">"))
        #expect(page.contains("<code>1.2.3</code>"))
        #expect(page.contains("https://prefect.example.com/api"))
        #expect(!page.contains("s3cret"))
        #expect(!page.contains("robot"))
    }

    @Test func customTelemetryPath() throws {
        let server = try startServer(telemetryPath: "/prefect/metrics")
        defer { server.stop() }
        let metrics = try TestHTTP.request(port: server.port, path: "/prefect/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text == metricsText)
        #expect(try TestHTTP.request(port: server.port, path: "/metrics").status == 404)
        let landing = try TestHTTP.request(port: server.port, path: "/")
        #expect(landing.text.contains("<a href=\"/prefect/metrics\">"))
        #expect(!landing.text.contains("href=\"/metrics\""))
    }

    @Test func invalidTelemetryPathIsRejected() {
        for path in ["metrics", "", "/a b", "/metrics?x", "/a\nb"] {
            #expect(throws: WebServerError.self, "\(path)") {
                try ExporterRoutes(telemetryPath: path, version: "", prefectURL: "", isReady: { true }, metricsPage: { (ResponseBody([]), nil) })
            }
        }
    }

    @Test func portInUseIsATypedError() throws {
        let first = try startServer()
        defer { first.stop() }
        let address = "127.0.0.1:\(first.port)"
        #expect(
            throws: WebServerError(kind: .addressInUse, description: "cannot listen on \(address): address already in use")
        ) {
            try startServer(configuration: WebServerConfiguration(listenAddress: address))
        }
    }

    @Test func stopReleasesThePort() throws {
        let first = try startServer()
        let port = first.port
        first.stop()
        first.stop()  // a second stop does nothing
        let second = try startServer(configuration: WebServerConfiguration(listenAddress: "127.0.0.1:\(port)"))
        defer { second.stop() }
        #expect(second.port == port)
        #expect(try TestHTTP.request(port: port, path: "/-/healthy").status == 200)
    }

    @Test(arguments: [
        ("localhost", "invalid listen address \"localhost\": missing port, expected host:port"),
        ("127.0.0.1:65536", "invalid listen address \"127.0.0.1:65536\": port must be a number from 0 to 65535"),
        ("127.0.0.1:http", "invalid listen address \"127.0.0.1:http\": port must be a number from 0 to 65535"),
        (":", "invalid listen address \":\": port must be a number from 0 to 65535"),
        ("::1:14200", "invalid listen address \"::1:14200\": IPv6 addresses must be written in brackets, like [::1]:14200"),
        ("[::1:14200", "invalid listen address \"[::1:14200\": missing ']' after IPv6 address"),
        ("[::1]14200", "invalid listen address \"[::1]14200\": missing port after ']'"),
    ])
    func badAddressesAreTypedErrors(address: String, message: String) {
        #expect(throws: WebServerError(kind: .invalidAddress, description: message)) {
            try startServer(configuration: WebServerConfiguration(listenAddress: address))
        }
    }

    @Test func unresolvableHostIsATypedError() {
        #expect {
            try startServer(configuration: WebServerConfiguration(listenAddress: "no-such-host.invalid:0"))
        } throws: { error in
            guard let error = error as? WebServerError else { return false }
            return error.kind == .invalidAddress
                && error.description.hasPrefix("cannot listen on no-such-host.invalid:0: cannot resolve host \"no-such-host.invalid\": ")
        }
    }

    @Test func unassignableAddressIsATypedError() {
        #expect(
            throws: WebServerError(kind: .listenFailed, description: "cannot listen on 192.0.2.1:0: cannot assign requested address")
        ) {
            try startServer(configuration: WebServerConfiguration(listenAddress: "192.0.2.1:0"))
        }
    }

    @Test func outOfRangeConfigurationIsATypedError() {
        let cases: [(WebServerConfiguration, String)] = [
            (WebServerConfiguration(listenAddress: "127.0.0.1:0", maxConnections: 0),
             "--web.max-connections must be between 2 and 1000000, got 0"),
            (WebServerConfiguration(listenAddress: "127.0.0.1:0", threadPoolSize: 0),
             "web server thread pool size must be between 1 and 256, got 0"),
            (WebServerConfiguration(listenAddress: "127.0.0.1:0", connectionTimeout: .zero),
             "web connection timeout must be between 1s and 24h, got 0.0 seconds"),
        ]
        for (configuration, message) in cases {
            #expect(throws: WebServerError(kind: .invalidConfiguration, description: message)) {
                try startServer(configuration: configuration)
            }
        }
    }

    @Test func ipv6Loopback() throws {
        let server = try startServer(configuration: WebServerConfiguration(listenAddress: "[::1]:0"))
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, path: "/metrics", host: "::1")
        #expect(reply.status == 200)
        #expect(reply.text == metricsText)
        #expect(throws: TestClientError.self) { try TestHTTP.request(port: server.port, path: "/metrics", host: "127.0.0.1") }
    }

    @Test func emptyHostIsDualStack() throws {
        let server = try startServer(configuration: WebServerConfiguration(listenAddress: ":0"))
        defer { server.stop() }
        #expect(server.port > 0)
        #expect(try TestHTTP.request(port: server.port, path: "/-/healthy", host: "::1").status == 200)
        #expect(try TestHTTP.request(port: server.port, path: "/-/healthy", host: "127.0.0.1").status == 200)
    }

    @Test func idleConnectionsAreClosedAfterTheTimeout() throws {
        let server = try startServer(
            configuration: WebServerConfiguration(listenAddress: "127.0.0.1:0", connectionTimeout: .seconds(1)))
        defer { server.stop() }
        let descriptor = try TestHTTP.connect(port: server.port)
        defer { close(descriptor) }
        // Half a request, then silence: a slowloris client.
        try TestHTTP.send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8), on: descriptor)
        let started = ContinuousClock.now
        let received = try TestHTTP.readToEnd(descriptor)
        let elapsed = ContinuousClock.now - started
        #expect(received.isEmpty)
        #expect(elapsed < .seconds(5))
    }

    @Test func manyConcurrentRequestsAllSucceed() throws {
        let server = try startServer()
        defer { server.stop() }
        // 200 connections open at once, each with a request in flight, then read back.
        var descriptors: [Int32] = []
        defer { descriptors.forEach { close($0) } }
        for index in 0..<200 {
            let descriptor = try TestHTTP.connect(port: server.port)
            descriptors.append(descriptor)
            let headers = index % 2 == 0 ? ["Accept-Encoding: gzip"] : []
            try TestHTTP.send(TestHTTP.requestBytes(method: "GET", path: "/metrics", headers: headers), on: descriptor)
        }
        for (index, descriptor) in descriptors.enumerated() {
            let replies = try TestHTTP.parse(TestHTTP.readToEnd(descriptor))
            #expect(replies.count == 1)
            #expect(replies.first?.status == 200)
            #expect(replies.first?.header("Content-Encoding") == (index % 2 == 0 ? "gzip" : nil))
        }

        // And from several threads at once.
        let failures = TestCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<50 {
                let reply = try? TestHTTP.request(port: server.port, path: "/metrics")
                if reply?.status != 200 || reply?.text != metricsText { failures.increment() }
            }
        }
        #expect(failures.value == 0)
    }

    @Test func connectionLimitIsEnforced() throws {
        let server = try startServer(
            configuration: WebServerConfiguration(listenAddress: "127.0.0.1:0", threadPoolSize: 1, maxConnections: 2))
        defer { server.stop() }
        let first = try TestHTTP.connect(port: server.port)
        defer { close(first) }
        let second = try TestHTTP.connect(port: server.port)
        defer { close(second) }
        // Let the server accept both before the third arrives.
        try TestHTTP.send(Array("GET /-/healthy HTTP/1.1\r\nHost: x\r\n".utf8), on: first)
        try TestHTTP.send(Array("GET /-/healthy HTTP/1.1\r\nHost: x\r\n".utf8), on: second)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(server.currentConnections == 2)
        let third = try TestHTTP.connect(port: server.port)
        defer { close(third) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(third, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try? TestHTTP.send(TestHTTP.requestBytes(method: "GET", path: "/-/healthy"), on: third)
        // The third is either closed at once or left waiting in the backlog; it is never served.
        let served = (try? TestHTTP.readToEnd(third)).map { !$0.isEmpty } ?? false
        #expect(!served)
        #expect(server.currentConnections == 2)
    }

    @Test func closureHandlerAndResponseHeaders() throws {
        let server = try WebServer(configuration: WebServerConfiguration(listenAddress: "127.0.0.1:0")) { request in
            let body = ResponseBody("\(request.method) \(request.path) \(request.header("x-test") ?? "-")")
            return Response(status: 418, contentType: "text/plain", headers: [HTTPHeader("X-Extra", "yes")], body: body)
        }
        defer { server.stop() }
        let reply = try TestHTTP.request(port: server.port, path: "/a%20b?c=d", headers: ["X-Test: one", "X-TEST: two"])
        #expect(reply.status == 418)
        #expect(reply.header("X-Extra") == "yes")
        #expect(reply.text == "GET /a b one, two")
    }
}

final class TestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }
}
