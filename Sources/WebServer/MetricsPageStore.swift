import Locking

/// The `/metrics` page as rendered after a poll: the plain text, and the same text gzip-compressed
/// when compression succeeded.
public typealias MetricsPage = (plain: ResponseBody, gzip: ResponseBody?)

/// Holds the current metrics page so that scrapes only hand out bytes that were copied once, after a poll.
///
/// The exporter calls ``update(plain:gzip:openMetrics:)`` after each poll (OpenMetrics is then
/// rendered only if a scrape asks for it); ``ExporterRoutes`` reads ``current`` and
/// ``currentOpenMetrics`` on each scrape.
public final class MetricsPageStore: Sendable {
    /// The text-format page and the OpenMetrics page, if any; ResponseBody is immutable.
    private let pages: LockedValue<(text: MetricsPage, openMetrics: LazyPage?)>

    /// A page made on its first request: the bytes come from `make` (which renders at most once,
    /// see `RenderedOnce`) and are copied once into response bodies, outside the store's lock.
    /// Once the page is made, `make` is let go, and with it whatever it holds (the families it
    /// rendered, and the rendered bytes): the page is then held once, as response bodies.
    private final class LazyPage: Sendable {
        private enum Phase {
            case pending(@Sendable () -> (plain: [UInt8], gzip: [UInt8]?))
            case made(MetricsPage)
        }

        private let phase: LockedValue<Phase>

        init(_ make: @escaping @Sendable () -> (plain: [UInt8], gzip: [UInt8]?)) {
            phase = LockedValue(.pending(make))
        }

        init(_ page: MetricsPage) {
            phase = LockedValue(.made(page))
        }

        var page: MetricsPage {
            let make: @Sendable () -> (plain: [UInt8], gzip: [UInt8]?)
            switch phase.withLock({ $0 }) {
            case .made(let page): return page
            case .pending(let pending): make = pending
            }
            let bytes = make()
            let page: MetricsPage = (ResponseBody(bytes.plain), bytes.gzip.map { ResponseBody($0) })
            return phase.withLock { phase in
                if case .made(let earlier) = phase { return earlier }
                phase = .made(page)
                return page
            }
        }
    }

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
        let newOpenMetricsPage = LazyPage((ResponseBody(openMetrics), openMetricsGzip.map { ResponseBody($0) }))
        pages.withLock { $0 = (newPage, newOpenMetricsPage) }
    }

    /// Replaces the text-format page, copying its bytes once, and offers an OpenMetrics page that
    /// `openMetrics` makes when the first scrape asks for it (then kept until the next update).
    public func update(
        plain: [UInt8], gzip: [UInt8]?, openMetrics: @escaping @Sendable () -> (plain: [UInt8], gzip: [UInt8]?)
    ) {
        let newPage: MetricsPage = (ResponseBody(plain), gzip.map { ResponseBody($0) })
        let lazy = LazyPage(openMetrics)
        pages.withLock { $0 = (newPage, lazy) }
    }

    /// The page to serve now.
    public var current: MetricsPage {
        pages.withLock { $0.text }
    }

    /// The OpenMetrics page to serve now, if one was stored; made now if this is its first request.
    public var currentOpenMetrics: MetricsPage? {
        pages.withLock { $0.openMetrics }?.page
    }
}
