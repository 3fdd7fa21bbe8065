import FoundationEssentials

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
