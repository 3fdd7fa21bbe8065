import FoundationEssentials

/// The `/metrics` page as rendered after a poll: the plain text, and the same text gzip-compressed
/// when compression succeeded.
public typealias MetricsPage = (plain: ResponseBody, gzip: ResponseBody?)

/// The exporter's HTTP routes:
///
/// - `GET|HEAD <telemetry path>`: the current metrics page, gzip-compressed when the client accepts it,
///   in OpenMetrics 1.0.0 when an OpenMetrics page is available and `Accept` prefers it
///   (see ``ExpositionNegotiation``), else in the text format 0.0.4;
/// - `GET|HEAD /`: a small HTML landing page;
/// - `GET|HEAD /-/healthy`: always `200 Healthy.`;
/// - `GET|HEAD /-/ready`: `200 Ready.` once `isReady` says so, `503` before;
/// - any other path: `404`; any other method on these paths: `405` with `Allow: GET, HEAD`.
///
/// Every fixed body is built once, here; the metrics page is handed out as the caller built it.
public struct ExporterRoutes: RequestHandler {
    /// The `Content-Type` of the metrics page (Prometheus text format 0.0.4).
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"
    /// The `Content-Type` of the OpenMetrics page.
    public static let openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    static let textContentType = "text/plain; charset=utf-8"
    static let htmlContentType = "text/html; charset=utf-8"

    /// The path that serves metrics.
    public let telemetryPath: String

    private let metricsPage: @Sendable () -> MetricsPage
    private let openMetricsPage: (@Sendable () -> MetricsPage?)?
    private let isReady: @Sendable () -> Bool
    private let landingPage: ResponseBody
    private let healthy = ResponseBody("Healthy.\n")
    private let ready = ResponseBody("Ready.\n")
    private let notReady = ResponseBody("Not ready: first poll not yet attempted.\n")
    private let notFound = ResponseBody("404 page not found\n")
    private let methodNotAllowed = ResponseBody("405 method not allowed\n")

    /// Creates the routes.
    ///
    /// - Parameters:
    ///   - telemetryPath: where metrics are served (`--web.telemetry-path`); must start with `/`.
    ///   - version: the exporter's version, shown on the landing page.
    ///   - prefectURL: the Prefect API URL, shown on the landing page; any user name or password in it is removed.
    ///   - isReady: whether `/-/ready` answers 200; called on every request to it, so it must be cheap.
    ///   - metricsPage: the current page; called on every scrape, so it must be cheap and must not
    ///     build a new ``ResponseBody`` each time (see ``MetricsPageStore``).
    ///   - openMetricsPage: the current page in OpenMetrics, or nil when there is none yet; called on
    ///     scrapes whose `Accept` header prefers OpenMetrics, under the same rules as `metricsPage`.
    ///     Without it, the text format is served whatever the client asks.
    /// - Throws: ``WebServerError`` of kind `invalidConfiguration` when the telemetry path is not a usable path.
    public init(
        telemetryPath: String = "/metrics",
        version: String,
        prefectURL: String,
        isReady: @escaping @Sendable () -> Bool,
        metricsPage: @escaping @Sendable () -> MetricsPage,
        openMetricsPage: (@Sendable () -> MetricsPage?)? = nil
    ) throws(WebServerError) {
        guard telemetryPath.hasPrefix("/"),
            !telemetryPath.unicodeScalars.contains(where: { $0 == "?" || $0 == "#" || $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw WebServerError(
                kind: .invalidConfiguration,
                description: "invalid --web.telemetry-path \"\(telemetryPath)\": must start with '/' and contain no '?', '#', spaces or control characters")
        }
        self.telemetryPath = telemetryPath
        self.isReady = isReady
        self.metricsPage = metricsPage
        self.openMetricsPage = openMetricsPage
        self.landingPage = ResponseBody(
            Self.renderLandingPage(telemetryPath: telemetryPath, version: version, prefectURL: Self.removingCredentials(from: prefectURL)))
    }

    /// Routes one request.
    public func respond(to request: Request) -> Response {
        let path = request.path
        let isMetrics = path == telemetryPath
        guard isMetrics || path == "/" || path == "/-/healthy" || path == "/-/ready" else {
            return Response(status: 404, contentType: Self.textContentType, body: notFound)
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            return Response(
                status: 405, contentType: Self.textContentType, headers: [HTTPHeader("Allow", "GET, HEAD")], body: methodNotAllowed)
        }
        if isMetrics {
            return respondWithMetrics(to: request)
        }
        switch path {
        case "/-/healthy":
            return Response(status: 200, contentType: Self.textContentType, body: healthy)
        case "/-/ready":
            if isReady() { return Response(status: 200, contentType: Self.textContentType, body: ready) }
            return Response(status: 503, contentType: Self.textContentType, body: notReady)
        default:
            return Response(status: 200, contentType: Self.htmlContentType, body: landingPage)
        }
    }

    /// The metrics page in the negotiated format and content coding.
    private func respondWithMetrics(to request: Request) -> Response {
        var page = metricsPage()
        var contentType = Self.metricsContentType
        // Which format is served depends on Accept only when there is a choice.
        var varies: [String] = []
        if let openMetricsPage {
            varies.append("Accept")
            if ExpositionNegotiation.format(forAccept: request.header("Accept")) == .openMetrics, let openMetrics = openMetricsPage() {
                page = openMetrics
                contentType = Self.openMetricsContentType
            }
        }
        // Vary also on the plain page, so that a cache never hands it to a client that wanted gzip or vice versa.
        if page.gzip != nil { varies.append("Accept-Encoding") }
        let vary = varies.isEmpty ? [] : [HTTPHeader("Vary", varies.joined(separator: ", "))]
        if let gzip = page.gzip, ContentCoding.acceptsGzip(request.header("Accept-Encoding")) {
            return Response(
                status: 200, contentType: contentType, headers: [HTTPHeader("Content-Encoding", "gzip")] + vary, body: gzip)
        }
        return Response(status: 200, contentType: contentType, headers: vary, body: page.plain)
    }

    /// The URL without user name and password, so that credentials never reach the landing page.
    static func removingCredentials(from url: String) -> String {
        guard var components = URLComponents(string: url), components.user != nil || components.password != nil else {
            return url
        }
        components.user = nil
        components.password = nil
        return components.string ?? ""
    }

    static func renderLandingPage(telemetryPath: String, version: String, prefectURL: String) -> String {
        let path = escapeHTML(telemetryPath)
        let prefect = escapeHTML(prefectURL)
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>Prefect Exporter</title>
            <style>body { font-family: sans-serif; margin: 2em; } code { background: #eee; padding: 0 .2em; }</style>
            </head>
            <body>
            <h1>Prefect Exporter</h1>
            <p>A Prometheus exporter for Prefect. Version <code>\(escapeHTML(version))</code>.</p>
            <p>Prefect API: <a href="\(prefect)"><code>\(prefect)</code></a></p>
            <ul>
            <li><a href="\(path)">Metrics</a> (<code>\(path)</code>)</li>
            <li><a href="/-/healthy">Health</a> (<code>/-/healthy</code>)</li>
            <li><a href="/-/ready">Readiness</a> (<code>/-/ready</code>)</li>
            </ul>
            </body>
            </html>

            """
    }

    static func escapeHTML(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}

/// Content-coding negotiation (RFC 9110, section 12.5.3).
public enum ContentCoding {
    /// Whether an `Accept-Encoding` value accepts gzip: `gzip` or `x-gzip` with a nonzero weight,
    /// or, when neither is named, `*` with a nonzero weight. `gzip;q=0` refuses it. A missing
    /// header gets the uncompressed page.
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzipWeight: Int?
        var wildcardWeight: Int?
        for element in acceptEncoding.split(separator: ",") {
            let parts = element.split(separator: ";", omittingEmptySubsequences: false)
            guard let first = parts.first else { continue }
            let coding = first.trimmingOptionalWhitespace().lowercased()
            guard !coding.isEmpty else { continue }
            var weight = 1000
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2, pair[0].trimmingOptionalWhitespace().lowercased() == "q" else { continue }
                // An unreadable weight refuses the coding rather than guessing.
                weight = parseQValue(pair[1].trimmingOptionalWhitespace()) ?? 0
            }
            switch coding {
            case "gzip", "x-gzip": gzipWeight = max(gzipWeight ?? 0, weight)
            case "*": wildcardWeight = max(wildcardWeight ?? 0, weight)
            default: break
            }
        }
        if let gzipWeight { return gzipWeight > 0 }
        if let wildcardWeight { return wildcardWeight > 0 }
        return false
    }

    /// Parses a qvalue (`0`, `0.5`, `1`, `1.000`) into thousandths; nil when it is not one.
    static func parseQValue(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return nil }
        var thousandths = first == UInt8(ascii: "1") ? 1000 : 0
        guard bytes.count > 1 else { return thousandths }
        guard bytes[1] == UInt8(ascii: "."), bytes.count <= 5 else { return nil }
        var scale = 100
        for byte in bytes.dropFirst(2) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            thousandths += Int(byte - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        return thousandths <= 1000 ? thousandths : nil
    }
}

/// Holds the current metrics page so that scrapes only hand out bytes that were copied once, after a poll.
///
/// The poller (through the CLI) calls ``update(plain:gzip:)`` or
/// ``update(plain:gzip:openMetrics:openMetricsGzip:)`` after each poll; ``ExporterRoutes``
/// reads ``current`` and ``currentOpenMetrics`` on each scrape.
public final class MetricsPageStore: @unchecked Sendable {
    // Safety: `page` and `openMetricsPage` are only read and written under `lock`; ResponseBody is immutable.
    private let lock = MutexLock()
    private var page: MetricsPage
    private var openMetricsPage: MetricsPage?

    /// Creates a store holding an initial page (empty by default).
    public init(plain: [UInt8] = [], gzip: [UInt8]? = nil) {
        page = (ResponseBody(plain), gzip.map { ResponseBody($0) })
    }

    /// Replaces the page, copying the bytes once. Any OpenMetrics page is dropped.
    public func update(plain: [UInt8], gzip: [UInt8]?) {
        let newPage: MetricsPage = (ResponseBody(plain), gzip.map { ResponseBody($0) })
        lock.lock()
        page = newPage
        openMetricsPage = nil
        lock.unlock()
    }

    /// Replaces both pages at once, the text format and OpenMetrics, copying the bytes once.
    public func update(plain: [UInt8], gzip: [UInt8]?, openMetrics: [UInt8], openMetricsGzip: [UInt8]?) {
        let newPage: MetricsPage = (ResponseBody(plain), gzip.map { ResponseBody($0) })
        let newOpenMetricsPage: MetricsPage = (ResponseBody(openMetrics), openMetricsGzip.map { ResponseBody($0) })
        lock.lock()
        page = newPage
        openMetricsPage = newOpenMetricsPage
        lock.unlock()
    }

    /// The page to serve now.
    public var current: MetricsPage {
        lock.lock()
        defer { lock.unlock() }
        return page
    }

    /// The OpenMetrics page to serve now, if one was stored.
    public var currentOpenMetrics: MetricsPage? {
        lock.lock()
        defer { lock.unlock() }
        return openMetricsPage
    }
}

/// Chooses between the text format 0.0.4 and OpenMetrics 1.0.0 from an `Accept` header (RFC 9110, section 12.5.1).
///
/// OpenMetrics is chosen when `application/openmetrics-text` is named with `version=1.0.0` or no
/// version, with a nonzero weight at least that of the text format. The text format's weight is
/// that of the most specific range naming it: `text/plain` (any version), else `text/*`, else `*/*`.
/// Wildcards never select OpenMetrics, and anything unreadable, or no header, gets the text format.
/// Prometheus 2.x and 3.x both ask for OpenMetrics 1.0.0 first by default.
public enum ExpositionNegotiation {
    /// An exposition format.
    public enum Format: Sendable, Equatable {
        /// `text/plain; version=0.0.4`.
        case text
        /// `application/openmetrics-text; version=1.0.0`.
        case openMetrics
    }

    /// The format to serve for an `Accept` header value.
    public static func format(forAccept accept: String?) -> Format {
        guard let accept else { return .text }
        var openMetricsWeight = 0
        var plainWeight: Int?
        var textWildcardWeight: Int?
        var anyWeight: Int?
        for element in accept.split(separator: ",") {
            let parts = element.split(separator: ";", omittingEmptySubsequences: false)
            guard let first = parts.first else { continue }
            let range = first.trimmingOptionalWhitespace().lowercased()
            var weight = 1000
            var version: String?
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2 else { continue }
                let name = pair[0].trimmingOptionalWhitespace().lowercased()
                var value = pair[1].trimmingOptionalWhitespace()
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
                switch name {
                case "q": weight = ContentCoding.parseQValue(value) ?? 0
                case "version": version = String(value)
                default: break
                }
            }
            switch range {
            case "application/openmetrics-text":
                if version == nil || version == "1.0.0" { openMetricsWeight = max(openMetricsWeight, weight) }
            case "text/plain": plainWeight = max(plainWeight ?? 0, weight)
            case "text/*": textWildcardWeight = max(textWildcardWeight ?? 0, weight)
            case "*/*": anyWeight = max(anyWeight ?? 0, weight)
            default: break
            }
        }
        let textWeight = plainWeight ?? textWildcardWeight ?? anyWeight ?? 0
        return openMetricsWeight > 0 && openMetricsWeight >= textWeight ? .openMetrics : .text
    }
}

extension Substring {
    /// Trims spaces and horizontal tabs (HTTP's optional whitespace).
    fileprivate func trimmingOptionalWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
