public import ArgumentParser

/// The command line, in the style of Prometheus exporters (`--web.*`, `--prefect.*`, `--log.*`).
/// Values are checked in ``ExporterConfiguration/resolve(_:environment:)``.
///
/// Options that a config file can also set are optional here: nil means "not given on the command
/// line", so that the environment, then `--config.file`, then the defaults in ``OptionDefaults`` apply.
public struct ExporterOptions: ParsableArguments {
    @Option(
        name: .customLong("config.file"),
        help: ArgumentHelp(
            "YAML file with settings for any of these flags (e.g. prefect: {poll_interval: 30s}) and several Prefect "
                + "targets (targets: [{name: prod, api_url: ...}]). Flags win over the environment, which wins over the file.",
            valueName: "path"))
    var configFile: String?

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
        help: ArgumentHelp(
            "How often to poll Prefect, e.g. 15s, 1m. Scrapes are served from the last poll. Default: 30s.", valueName: "duration"))
    var pollInterval: String?

    @Option(name: .customLong("prefect.timeout"), help: ArgumentHelp("Timeout of one API request. Default: 10s.", valueName: "duration"))
    var requestTimeout: String?

    @Option(
        name: .customLong("prefect.connect-timeout"), help: ArgumentHelp("Timeout to connect to Prefect. Default: 5s.", valueName: "duration"))
    var connectTimeout: String?

    @Option(
        name: .customLong("prefect.max-staleness"),
        help: ArgumentHelp(
            "Stop serving Prefect-derived metrics when the last successful poll is older than this. Default: 5m.",
            valueName: "duration"))
    var maxStaleness: String?

    @Option(
        name: .customLong("prefect.late-after"),
        help: ArgumentHelp(
            "A SCHEDULED run counts as late once its scheduled start is this far in the past. Default: 15s (Prefect's own).",
            valueName: "duration"))
    var lateAfter: String?

    @Option(
        name: .customLong("prefect.max-concurrent-requests"),
        help: ArgumentHelp("Requests one poll may have in flight at once. Default: 4.", valueName: "n"))
    var maxConcurrentRequests: Int?

    @Option(
        name: .customLong("prefect.max-requests-per-minute"),
        help: ArgumentHelp(
            "At most this many API requests in any minute, per Prefect target (Prefect Cloud rate-limits its flow_runs "
                + "routes per minute). Requests wait for the budget, and polls that would exceed it run less often "
                + "(prefect_exporter_poll_interval_seconds). `check` prints what a poll costs. Default: unbounded, "
                + "except that a 429 from Prefect lowers the rate of the route it names.",
            valueName: "n"))
    var maxRequestsPerMinute: Int?

    @Option(
        name: .customLong("prefect.retries"),
        help: ArgumentHelp(
            "Retries of a failed request within a poll, with backoff. 429/503 with Retry-After skip polls instead. Default: 2.",
            valueName: "n"))
    var retries: Int?

    @Option(
        name: .customLong("prefect.lateness-buckets"),
        help: ArgumentHelp(
            "Comma-separated bucket bounds, in seconds, of prefect_flow_run_lateness_seconds. "
                + "Default: 15,30,60,120,300,600,1800,3600,7200,14400,43200,86400.",
            valueName: "list"))
    var latenessBuckets: String?

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
        help: "Whether flow-run metrics carry the deployment label. Turn it off (--no-metrics.deployment-label) for very large installs. Default: on.")
    var deploymentLabel: Bool?

    @Flag(
        name: .customLong("metrics.exemplars"), inversion: .prefixedNo,
        help: "Whether OpenMetrics histogram buckets carry a flow run as an exemplar (flow_run_id and flow_run_name) on the lateness, running-time, start-delay and duration histograms. Prometheus stores them when started with its exemplar-storage feature. Default: off.")
    var exemplars: Bool?

    @Option(
        name: .customLong("metrics.max-series-per-family"),
        help: ArgumentHelp(
            "Most series kept per Prefect-derived metric family (and Prefect target); the rest are dropped and counted in "
                + "prefect_exporter_series_dropped_total. 0 means unlimited. Default: 100000.",
            valueName: "n"))
    var maxSeriesPerFamily: Int?

    @Option(
        name: .customLong("web.listen-address"),
        help: ArgumentHelp(
            "Address to listen on for scrapes: ':14200', '127.0.0.1:14200' or '[::1]:14200'. Default: :14200.", valueName: "address"))
    var listenAddress: String?

    @Option(
        name: .customLong("web.telemetry-path"), help: ArgumentHelp("Path under which to expose metrics. Default: /metrics.", valueName: "path"))
    var telemetryPath: String?

    @Option(
        name: .customLong("web.max-connections"),
        help: ArgumentHelp("Concurrent HTTP connections accepted; more are refused. Default: 512.", valueName: "n"))
    var maxConnections: Int?

    @Option(
        name: .customLong("web.config.file"),
        help: ArgumentHelp(
            "Prometheus exporter-toolkit web configuration file: TLS, client certificates, basic auth, "
                + "response headers. Read at start-up; changes need a restart.",
            valueName: "path"))
    var webConfigFile: String?

    @Option(name: .customLong("log.level"), help: ArgumentHelp("Log level: debug, info, warn or error. Default: info.", valueName: "level"))
    var logLevel: String?

    @Option(name: .customLong("log.format"), help: ArgumentHelp("Log format: logfmt or json. Default: logfmt.", valueName: "format"))
    var logFormat: String?

    @Flag(name: .customLong("once"), help: "Poll once, print the metrics to standard output and exit (1 if the poll failed).")
    var once = false

    public init() {}
}
