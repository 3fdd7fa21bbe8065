public import ArgumentParser

/// The command line, in the style of Prometheus exporters (`--web.*`, `--prefect.*`, `--log.*`).
/// Values are checked in ``ExporterConfiguration/resolve(_:environment:)``.
public struct ExporterOptions: ParsableArguments {
    @Option(
        name: .customLong("prefect.api-url"),
        help: ArgumentHelp(
            "Prefect API base URL, including /api for a self-hosted server, or a Prefect Cloud workspace URL "
                + "(https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>). Env: PREFECT_API_URL. "
                + "Default: http://127.0.0.1:4200/api.",
            valueName: "url"))
    var apiURL: String?

    @Option(
        name: .customLong("prefect.api-key-file"),
        help: ArgumentHelp(
            "File holding a Prefect Cloud API key, sent as 'Authorization: Bearer'. Env: PREFECT_API_KEY (the key itself).",
            valueName: "path"))
    var apiKeyFile: String?

    @Option(
        name: .customLong("prefect.auth-string-file"),
        help: ArgumentHelp(
            "File holding 'user:pass' for a self-hosted server with basic auth (PREFECT_SERVER_API_AUTH_STRING). "
                + "Env: PREFECT_API_AUTH_STRING (the string itself).",
            valueName: "path"))
    var authStringFile: String?

    @Option(
        name: .customLong("prefect.ca-file"),
        help: ArgumentHelp("PEM file of CA certificates to verify Prefect's TLS certificate. Default: the system's CAs.", valueName: "path"))
    var caFile: String?

    @Flag(
        name: .customLong("prefect.insecure-skip-verify"),
        help: "Do not verify Prefect's TLS certificate. For testing only. Env: PREFECT_API_TLS_INSECURE_SKIP_VERIFY=true.")
    var insecureSkipVerify = false

    @Option(
        name: .customLong("prefect.poll-interval"),
        help: ArgumentHelp("How often to poll Prefect, e.g. 15s, 1m. Scrapes are served from the last poll.", valueName: "duration"))
    var pollInterval = "30s"

    @Option(name: .customLong("prefect.timeout"), help: ArgumentHelp("Timeout of one API request.", valueName: "duration"))
    var requestTimeout = "10s"

    @Option(name: .customLong("prefect.connect-timeout"), help: ArgumentHelp("Timeout to connect to Prefect.", valueName: "duration"))
    var connectTimeout = "5s"

    @Option(
        name: .customLong("prefect.max-staleness"),
        help: ArgumentHelp(
            "Stop serving Prefect-derived metrics when the last successful poll is older than this.", valueName: "duration"))
    var maxStaleness = "5m"

    @Option(
        name: .customLong("prefect.late-after"),
        help: ArgumentHelp(
            "A SCHEDULED run counts as late once its scheduled start is this far in the past (Prefect's default is 15s).",
            valueName: "duration"))
    var lateAfter = "15s"

    @Option(
        name: .customLong("prefect.max-concurrent-requests"),
        help: ArgumentHelp("Requests one poll may have in flight at once.", valueName: "n"))
    var maxConcurrentRequests = 4

    @Option(
        name: .customLong("prefect.retries"),
        help: ArgumentHelp(
            "Retries of a failed request within a poll, with backoff. 429/503 with Retry-After skip polls instead.",
            valueName: "n"))
    var retries = 2

    @Option(
        name: .customLong("prefect.lateness-buckets"),
        help: ArgumentHelp("Comma-separated bucket bounds, in seconds, of prefect_flow_run_lateness_seconds.", valueName: "list"))
    var latenessBuckets = "15,30,60,120,300,600,1800,3600,7200,14400,43200,86400"

    @Option(
        name: .customLong("prefect.work-pool-include"),
        help: ArgumentHelp(
            "Only report work pools whose name fully matches this regular expression. Runs with no pool have the name ''. "
                + "Use with --prefect.work-pool-exclude to split a large Prefect between exporters.",
            valueName: "regex"))
    var workPoolInclude: String?

    @Option(
        name: .customLong("prefect.work-pool-exclude"),
        help: ArgumentHelp("Do not report work pools whose name fully matches this regular expression.", valueName: "regex"))
    var workPoolExclude: String?

    @Flag(
        name: .customLong("metrics.deployment-label"), inversion: .prefixedNo,
        help: "Whether flow-run metrics carry the deployment label. Turn it off (--no-metrics.deployment-label) for very large installs.")
    var deploymentLabel = true

    @Option(
        name: .customLong("web.listen-address"),
        help: ArgumentHelp("Address to listen on for scrapes: ':14200', '127.0.0.1:14200' or '[::1]:14200'.", valueName: "address"))
    var listenAddress = ":14200"

    @Option(name: .customLong("web.telemetry-path"), help: ArgumentHelp("Path under which to expose metrics.", valueName: "path"))
    var telemetryPath = "/metrics"

    @Option(
        name: .customLong("web.max-connections"),
        help: ArgumentHelp("Concurrent HTTP connections accepted; more are refused.", valueName: "n"))
    var maxConnections = 512

    @Option(name: .customLong("log.level"), help: ArgumentHelp("Log level: debug, info, warn or error.", valueName: "level"))
    var logLevel = "info"

    @Option(name: .customLong("log.format"), help: ArgumentHelp("Log format: logfmt or json.", valueName: "format"))
    var logFormat = "logfmt"

    @Flag(name: .customLong("once"), help: "Poll once, print the metrics to standard output and exit (1 if the poll failed).")
    var once = false

    public init() {}
}
