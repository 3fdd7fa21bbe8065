import Testing
import WebServer

@Suite("Accept-Encoding negotiation and small types")
struct ContentCodingTests {
    @Test(arguments: [
        ("gzip", true),
        ("GZIP", true),
        ("x-gzip", true),
        ("deflate, gzip", true),
        ("gzip;q=1.0", true),
        ("gzip;q=0.001", true),
        ("gzip ; q=0.5", true),
        ("*", true),
        ("*;q=0.2", true),
        ("br;q=1, *;q=0.1", true),
        ("gzip;q=0, x-gzip;q=0.5", true),
        ("gzip;q=0", false),
        ("gzip;q=0.0", false),
        ("gzip;q=0.000", false),
        ("gzip;Q=0", false),
        ("gzip;q=0, *", false),
        ("*;q=0", false),
        ("*;q=0, gzip", true),
        ("identity", false),
        ("deflate, br", false),
        ("gzipx", false),
        ("", false),
        (",,,", false),
        ("gzip;q=2", false),
        ("gzip;q=abc", false),
        ("gzip;q=0.5000", false),
    ])
    func acceptsGzip(header: String, expected: Bool) {
        #expect(ContentCoding.acceptsGzip(header) == expected)
    }

    @Test func missingHeaderGetsPlain() {
        #expect(ContentCoding.acceptsGzip(nil) == false)
    }

    @Test func headerLookupIsCaseInsensitiveAndJoinsRepeats() {
        let request = Request(
            method: "GET", path: "/",
            headers: [HTTPHeader("Accept-Encoding", "gzip"), HTTPHeader("accept", "text/plain"), HTTPHeader("ACCEPT", "*/*")])
        #expect(request.header("accept-encoding") == "gzip")
        #expect(request.header("Accept") == "text/plain, */*")
        #expect(request.header("Accept-Language") == nil)
    }

    @Test func responseBodyCopiesOnce() {
        var source: [UInt8] = [1, 2, 3]
        let body = ResponseBody(source)
        source[0] = 9
        #expect(body.bytes == [1, 2, 3])
        #expect(body.count == 3)
        #expect(ResponseBody([]).count == 0)
        #expect(ResponseBody("é").bytes == [0xC3, 0xA9])
        #expect(body.withUnsafeBytes { Array($0) } == [1, 2, 3])
    }

    @Test func metricsPageStoreReplacesThePage() {
        let store = MetricsPageStore()
        #expect(store.current.plain.count == 0)
        #expect(store.current.gzip == nil)
        store.update(plain: [65], gzip: [1, 2])
        #expect(store.current.plain.bytes == [65])
        #expect(store.current.gzip?.bytes == [1, 2])
    }

    @Test func listenAddressParsing() throws {
        let any = try ListenAddress(parsing: ":14200")
        #expect(any.host == "")
        #expect(any.port == 14200)
        let v6 = try ListenAddress(parsing: "[::1]:0")
        #expect(v6.host == "::1")
        #expect(v6.port == 0)
        let v4 = try ListenAddress(parsing: "0.0.0.0:65535")
        #expect(v4.host == "0.0.0.0")
        #expect(v4.port == 65535)
        #expect(v4.description == "0.0.0.0:65535")
    }
}
