import Locking

/// The `/metrics` page as rendered after a poll: the plain text, and the same text gzip-compressed
/// when compression succeeded.
public typealias MetricsPage = (plain: ResponseBody, gzip: ResponseBody?)

/// Holds the current metrics page so that scrapes only hand out bytes that were copied once, after a poll.
///
/// The poller (through the CLI) calls ``update(plain:gzip:)`` or
/// ``update(plain:gzip:openMetrics:openMetricsGzip:)`` after each poll; ``ExporterRoutes``
/// reads ``current`` and ``currentOpenMetrics`` on each scrape.
public final class MetricsPageStore: Sendable {
    /// The text-format page and the OpenMetrics page, if any; ResponseBody is immutable.
    private let pages: LockedValue<(text: MetricsPage, openMetrics: MetricsPage?)>

    /// Creates a store holding an initial page (empty by default).
    public init(plain: [UInt8] = [], gzip: [UInt8]? = nil) {
        pages = LockedValue(((ResponseBody(plain), gzip.map { ResponseBody($0) }), nil))
    }

    /// Replaces the page, copying the bytes once. Any OpenMetrics page is dropped.
    public func update(plain: [UInt8], gzip: [UInt8]?) {
        let newPage: MetricsPage = (ResponseBody(plain), gzip.map { ResponseBody($0) })
        pages.withLock { $0 = (newPage, nil) }
    }

    /// Replaces both pages at once, the text format and OpenMetrics, copying the bytes once.
    public func update(plain: [UInt8], gzip: [UInt8]?, openMetrics: [UInt8], openMetricsGzip: [UInt8]?) {
        let newPage: MetricsPage = (ResponseBody(plain), gzip.map { ResponseBody($0) })
        let newOpenMetricsPage: MetricsPage = (ResponseBody(openMetrics), openMetricsGzip.map { ResponseBody($0) })
        pages.withLock { $0 = (newPage, newOpenMetricsPage) }
    }

    /// The page to serve now.
    public var current: MetricsPage {
        pages.withLock { $0.text }
    }

    /// The OpenMetrics page to serve now, if one was stored.
    public var currentOpenMetrics: MetricsPage? {
        pages.withLock { $0.openMetrics }
    }
}
