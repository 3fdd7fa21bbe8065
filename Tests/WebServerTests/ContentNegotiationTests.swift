import Locking
import Testing
import WebServer

/// The `Accept` header Prometheus 2.x sends by default (before scrape_protocols existed, and its default since).
private let prometheus2Accept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
/// The `Accept` header Prometheus 3.x sends with its default scrape_protocols.
private let prometheus3Accept =
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    + "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

@Suite("Accept negotiation: text format or OpenMetrics")
struct ContentNegotiationTests {
    @Test(arguments: [
        (prometheus2Accept, ExpositionNegotiation.Format.openMetrics),
        (prometheus3Accept, .openMetrics),
        // Prometheus with scrape_protocols: [PrometheusText0.0.4].
        ("text/plain;version=0.0.4;q=0.6,*/*;q=0.5", .text),
        ("application/openmetrics-text", .openMetrics),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", .openMetrics),
        ("Application/OpenMetrics-Text;Version=\"1.0.0\"", .openMetrics),
        // Only another OpenMetrics version: not ours.
        ("application/openmetrics-text;version=0.0.1", .text),
        ("application/openmetrics-text;version=2.0.0", .text),
        // Equal weights go to OpenMetrics; a lower one does not.
        ("text/plain;q=0.5,application/openmetrics-text;q=0.5", .openMetrics),
        ("text/plain,application/openmetrics-text;q=0.9", .text),
        // The most specific text range decides the text weight.
        ("text/plain;q=0,*/*;q=1,application/openmetrics-text;q=0.1", .openMetrics),
        ("text/*;q=0.8,application/openmetrics-text;q=0.7", .text),
        ("*/*;q=0.8,application/openmetrics-text;q=0.9", .openMetrics),
        // Refused or unreadable weights.
        ("application/openmetrics-text;q=0", .text),
        ("application/openmetrics-text;q=abc", .text),
        // Wildcards alone, browsers and curl get the text format.
        ("*/*", .text),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", .text),
        ("", .text),
        ("application/json", .text),
    ])
    func format(accept: String, expected: ExpositionNegotiation.Format) {
        #expect(ExpositionNegotiation.format(forAccept: accept) == expected, "\(accept)")
    }

    @Test func noHeaderGetsTheTextFormat() {
        #expect(ExpositionNegotiation.format(forAccept: nil) == .text)
    }
}

@Suite("Metrics routes with OpenMetrics")
struct OpenMetricsRoutesTests {
    private static let store: MetricsPageStore = {
        let store = MetricsPageStore()
        store.update(
            plain: Array("text\n".utf8), gzip: Array("text-gzip".utf8), openMetrics: Array("om\n# EOF\n".utf8),
            openMetricsGzip: Array("om-gzip".utf8))
        return store
    }()

    private func routes(store: MetricsPageStore = Self.store) throws -> ExporterRoutes {
        try ExporterRoutes(
            version: "1", prefectURL: "http://prefect", isReady: { true }, metricsPage: { store.current },
            openMetricsPage: { store.currentOpenMetrics })
    }

    private func get(_ headers: [HTTPHeader], store: MetricsPageStore = Self.store) throws -> Response {
        try routes(store: store).respond(to: Request(method: "GET", path: "/metrics", headers: headers))
    }

    @Test func prometheusGetsOpenMetrics() throws {
        for accept in [prometheus2Accept, prometheus3Accept] {
            let response = try get([HTTPHeader("Accept", accept)])
            #expect(response.status == 200)
            #expect(response.contentType == "application/openmetrics-text; version=1.0.0; charset=utf-8")
            #expect(response.body.bytes == Array("om\n# EOF\n".utf8))
            #expect(response.headers == [HTTPHeader("Vary", "Accept, Accept-Encoding")])
        }
    }

    @Test func prometheusWithGzipGetsCompressedOpenMetrics() throws {
        let response = try get([HTTPHeader("Accept", prometheus3Accept), HTTPHeader("Accept-Encoding", "gzip")])
        #expect(response.contentType == ExporterRoutes.openMetricsContentType)
        #expect(response.body.bytes == Array("om-gzip".utf8))
        #expect(response.headers == [HTTPHeader("Content-Encoding", "gzip"), HTTPHeader("Vary", "Accept, Accept-Encoding")])
    }

    @Test func othersGetTheTextFormat() throws {
        let plain = try get([])
        #expect(plain.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(plain.body.bytes == Array("text\n".utf8))
        #expect(plain.headers == [HTTPHeader("Vary", "Accept, Accept-Encoding")])
        let compressed = try get([HTTPHeader("Accept", "text/plain;version=0.0.4"), HTTPHeader("Accept-Encoding", "gzip")])
        #expect(compressed.contentType == ExporterRoutes.metricsContentType)
        #expect(compressed.body.bytes == Array("text-gzip".utf8))
    }

    @Test func beforeAnyOpenMetricsPageTheTextFormatIsServed() throws {
        let store = MetricsPageStore(plain: Array("early\n".utf8))
        let response = try get([HTTPHeader("Accept", prometheus2Accept)], store: store)
        #expect(response.contentType == ExporterRoutes.metricsContentType)
        #expect(response.body.bytes == Array("early\n".utf8))
        #expect(response.headers == [HTTPHeader("Vary", "Accept")])
    }

    @Test func withoutAnOpenMetricsSourceAcceptIsIgnored() throws {
        let store = Self.store
        let routes = try ExporterRoutes(version: "1", prefectURL: "http://prefect", isReady: { true }, metricsPage: { store.current })
        let response = routes.respond(to: Request(method: "GET", path: "/metrics", headers: [HTTPHeader("Accept", prometheus2Accept)]))
        #expect(response.contentType == ExporterRoutes.metricsContentType)
        #expect(response.headers == [HTTPHeader("Vary", "Accept-Encoding")])
    }

    @Test func updatingWithTextOnlyDropsTheOpenMetricsPage() {
        let store = MetricsPageStore()
        store.update(plain: [1], gzip: nil, openMetrics: [2], openMetricsGzip: nil)
        #expect(store.currentOpenMetrics?.plain.bytes == [2])
        store.update(plain: [3], gzip: nil)
        #expect(store.currentOpenMetrics == nil)
        #expect(store.current.plain.bytes == [3])
    }

    /// OpenMetrics offered lazily is made on the first request only, once per update.
    @Test func aLazyOpenMetricsPageIsMadeOnItsFirstRequestOnly() {
        let store = MetricsPageStore()
        let made = LockedValue(0)
        store.update(plain: [1], gzip: nil) {
            made.withLock { $0 += 1 }
            return ([2], [3])
        }
        #expect(made.withLock { $0 } == 0)
        #expect(store.current.plain.bytes == [1])
        #expect(store.currentOpenMetrics?.plain.bytes == [2])
        #expect(store.currentOpenMetrics?.gzip?.bytes == [3])
        #expect(made.withLock { $0 } == 1)
        store.update(plain: [4], gzip: nil) {
            made.withLock { $0 += 1 }
            return ([5], nil)
        }
        #expect(store.currentOpenMetrics?.plain.bytes == [5])
        #expect(made.withLock { $0 } == 2)
    }

    /// Once the lazy page is made, what made it (the families and the rendered bytes, in the
    /// exporter) is let go: the page is held once, as response bodies.
    @Test func aLazyOpenMetricsPageLetsGoOfItsSourceOnceMade() {
        final class Source: Sendable {
            let bytes: [UInt8] = [7]
        }
        let store = MetricsPageStore()
        var source: Source? = Source()
        weak let watched = source
        store.update(plain: [1], gzip: nil) { [source] in (source?.bytes ?? [], nil) }
        source = nil
        #expect(watched != nil)  // needed until the first OpenMetrics request
        #expect(store.currentOpenMetrics?.plain.bytes == [7])
        #expect(watched == nil)
        #expect(store.currentOpenMetrics?.plain.bytes == [7])
    }
}
