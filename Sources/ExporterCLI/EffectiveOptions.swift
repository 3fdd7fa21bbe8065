
/// The defaults of the options that a config file can also set, as the flags spell them.
public enum OptionDefaults {
    /// `--prefect.api-url`.
    public static let apiURL = "http://127.0.0.1:4200/api"
    /// `--prefect.poll-interval`.
    public static let pollInterval = "30s"
    /// `--prefect.timeout`.
    public static let requestTimeout = "10s"
    /// `--prefect.connect-timeout`.
    public static let connectTimeout = "5s"
    /// `--prefect.max-staleness`.
    public static let maxStaleness = "5m"
    /// `--prefect.late-after`.
    public static let lateAfter = "15s"
    /// `--prefect.max-concurrent-requests`.
    public static let maxConcurrentRequests = 4
    /// `--prefect.retries`.
    public static let retries = 2
    /// `--prefect.lateness-buckets`.
    public static let latenessBuckets = "15,30,60,120,300,600,1800,3600,7200,14400,43200,86400"
    /// `--metrics.deployment-label`.
    public static let deploymentLabel = true
    /// `--metrics.exemplars`.
    public static let exemplars = false
    /// `--metrics.max-series-per-family`.
    public static let maxSeriesPerFamily = 100_000
    /// `--web.listen-address`.
    public static let listenAddress = ":14200"
    /// `--web.telemetry-path`.
    public static let telemetryPath = "/metrics"
    /// `--web.max-connections`.
    public static let maxConnections = 512
    /// `--log.level`.
    public static let logLevel = "info"
    /// `--log.format`.
    public static let logFormat = "logfmt"
}

/// The options after applying the precedence rules: a flag wins over the environment, which wins
/// over the config file, which wins over ``OptionDefaults``.
///
/// The environment itself is still read by ``ExporterConfiguration``'s checks (`PREFECT_API_URL`,
/// `PREFECT_API_KEY`, `PREFECT_API_AUTH_STRING`, `PREFECT_API_TLS_INSECURE_SKIP_VERIFY`); here a file
/// value for one of those settings is only taken when neither the flag nor the variable is set.
/// Options that a config file cannot set (`--once`) are read through from the flags.
@dynamicMemberLookup
struct EffectiveOptions {
    private let flags: ExporterOptions

    var apiURL: String?
    var apiKeyFile: String?
    var authStringFile: String?
    var caFile: String?
    var insecureSkipVerify: Bool
    var pollInterval: String
    var requestTimeout: String
    var connectTimeout: String
    var maxStaleness: String
    var lateAfter: String
    var maxConcurrentRequests: Int
    /// `--prefect.max-requests-per-minute`; nil or 0 when unbounded.
    var maxRequestsPerMinute: Int?
    var retries: Int
    var latenessBuckets: String
    var workPoolInclude: String?
    var workPoolExclude: String?
    var deploymentLabel: Bool
    var exemplars: Bool
    var maxSeriesPerFamily: Int
    var listenAddress: String
    var telemetryPath: String
    var maxConnections: Int
    var webConfigFile: String?
    var logLevel: String
    var logFormat: String

    /// For each flag whose value came from the config file, how to name it in messages (`path:line: key`).
    private(set) var fileOrigins: [String: String] = [:]

    /// Flags not backed by a config file key are read from the flags.
    subscript<Value>(dynamicMember keyPath: KeyPath<ExporterOptions, Value>) -> Value {
        flags[keyPath: keyPath]
    }

    init(_ flags: ExporterOptions, environment: [String: String], file: ConfigFile?) {
        self.flags = flags
        var origins: [String: String] = [:]
        func pick<Value>(_ flag: Value?, _ flagName: String, _ key: String, _ read: (ConfigFile.Value) -> Value?) -> Value? {
            if let flag { return flag }
            guard let file, let stored = file[key], let value = read(stored) else { return nil }
            origins[flagName] = file.origin(key)
            return value
        }
        func string(_ flag: String?, _ flagName: String, _ key: String) -> String? { pick(flag, flagName, key) { $0.string } }
        func integer(_ flag: Int?, _ flagName: String, _ key: String) -> Int? { pick(flag, flagName, key) { $0.integer } }
        func boolean(_ flag: Bool?, _ flagName: String, _ key: String) -> Bool? { pick(flag, flagName, key) { $0.boolean } }
        func isSet(_ variable: String) -> Bool {
            !(environment[variable]?.trimmingWhitespaceAndNewlines().isEmpty ?? true)
        }

        apiURL = isSet("PREFECT_API_URL") && flags.apiURL == nil ? nil : string(flags.apiURL, "--prefect.api-url", "prefect.api_url")
        // Credentials are one setting: flags, else the environment, else the file.
        if flags.apiKeyFile != nil || flags.authStringFile != nil || isSet("PREFECT_API_KEY") || isSet("PREFECT_API_AUTH_STRING") {
            apiKeyFile = flags.apiKeyFile
            authStringFile = flags.authStringFile
        } else {
            apiKeyFile = string(nil, "--prefect.api-key-file", "prefect.api_key_file")
            authStringFile = string(nil, "--prefect.auth-string-file", "prefect.auth_string_file")
        }
        caFile = string(flags.caFile, "--prefect.ca-file", "prefect.ca_file")
        insecureSkipVerify = flags.insecureSkipVerify
            || (boolean(nil, "--prefect.insecure-skip-verify", "prefect.insecure_skip_verify") ?? false)
        pollInterval = string(flags.pollInterval, "--prefect.poll-interval", "prefect.poll_interval") ?? OptionDefaults.pollInterval
        requestTimeout = string(flags.requestTimeout, "--prefect.timeout", "prefect.timeout") ?? OptionDefaults.requestTimeout
        connectTimeout = string(flags.connectTimeout, "--prefect.connect-timeout", "prefect.connect_timeout")
            ?? OptionDefaults.connectTimeout
        maxStaleness = string(flags.maxStaleness, "--prefect.max-staleness", "prefect.max_staleness") ?? OptionDefaults.maxStaleness
        lateAfter = string(flags.lateAfter, "--prefect.late-after", "prefect.late_after") ?? OptionDefaults.lateAfter
        maxConcurrentRequests = integer(flags.maxConcurrentRequests, "--prefect.max-concurrent-requests", "prefect.max_concurrent_requests")
            ?? OptionDefaults.maxConcurrentRequests
        maxRequestsPerMinute = integer(
            flags.maxRequestsPerMinute, "--prefect.max-requests-per-minute", "prefect.max_requests_per_minute")
        retries = integer(flags.retries, "--prefect.retries", "prefect.retries") ?? OptionDefaults.retries
        latenessBuckets = string(flags.latenessBuckets, "--prefect.lateness-buckets", "prefect.lateness_buckets")
            ?? OptionDefaults.latenessBuckets
        workPoolInclude = string(flags.workPoolInclude, "--prefect.work-pool-include", "prefect.work_pool_include")
        workPoolExclude = string(flags.workPoolExclude, "--prefect.work-pool-exclude", "prefect.work_pool_exclude")
        deploymentLabel = boolean(flags.deploymentLabel, "--metrics.deployment-label", "metrics.deployment_label")
            ?? OptionDefaults.deploymentLabel
        exemplars = boolean(flags.exemplars, "--metrics.exemplars", "metrics.exemplars") ?? OptionDefaults.exemplars
        maxSeriesPerFamily = integer(flags.maxSeriesPerFamily, "--metrics.max-series-per-family", "metrics.max_series_per_family")
            ?? OptionDefaults.maxSeriesPerFamily
        listenAddress = string(flags.listenAddress, "--web.listen-address", "web.listen_address") ?? OptionDefaults.listenAddress
        telemetryPath = string(flags.telemetryPath, "--web.telemetry-path", "web.telemetry_path") ?? OptionDefaults.telemetryPath
        maxConnections = integer(flags.maxConnections, "--web.max-connections", "web.max_connections") ?? OptionDefaults.maxConnections
        webConfigFile = string(flags.webConfigFile, "--web.config.file", "web.config_file")
        logLevel = string(flags.logLevel, "--log.level", "log.level") ?? OptionDefaults.logLevel
        logFormat = string(flags.logFormat, "--log.format", "log.format") ?? OptionDefaults.logFormat
        fileOrigins = origins
    }

    /// The options of one target of the config file: its URL, credentials, TLS settings and pool
    /// selection replace the global ones (the global `ca_file` and `insecure_skip_verify` are its defaults).
    func specialized(for target: ConfigFile.Target, in file: ConfigFile) -> EffectiveOptions {
        var options = self
        func take(_ key: String, flag: String) -> ConfigFile.Value? {
            guard let value = target.values[key] else { return nil }
            options.fileOrigins[flag] = file.origin(target: target, key: key)
            return value
        }
        options.apiURL = take("api_url", flag: "--prefect.api-url")?.string
        options.apiKeyFile = take("api_key_file", flag: "--prefect.api-key-file")?.string
        options.authStringFile = take("auth_string_file", flag: "--prefect.auth-string-file")?.string
        if let caFile = take("ca_file", flag: "--prefect.ca-file")?.string { options.caFile = caFile }
        if let insecure = take("insecure_skip_verify", flag: "--prefect.insecure-skip-verify")?.boolean {
            options.insecureSkipVerify = insecure
        }
        options.workPoolInclude = take("work_pool_include", flag: "--prefect.work-pool-include")?.string
        options.workPoolExclude = take("work_pool_exclude", flag: "--prefect.work-pool-exclude")?.string
        if let budget = take("max_requests_per_minute", flag: "--prefect.max-requests-per-minute")?.integer {
            options.maxRequestsPerMinute = budget
        }
        return options
    }

    /// Names the config file key instead of the flag when the value at fault came from the file.
    func attributing(_ error: ConfigurationError) -> ConfigurationError {
        guard let origin = fileOrigins[error.setting] else { return error }
        return ConfigurationError(setting: origin, problem: error.problem)
    }
}
