import Aggregation
import FoundationEssentials
public import HTTPClient
public import Logging
public import Poller
import Collectors
public import PrefectAPI
public import WebServer

/// Everything the exporter needs to run, validated.
public struct ExporterConfiguration: Sendable {
    public var prefect: PrefectClientConfiguration
    public var http: HTTPClientConfiguration
    public var poller: PollerConfiguration
    public var web: WebServerConfiguration
    public var telemetryPath: String
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var once: Bool
    /// Every Prefect to poll: the one of the flags (``PrefectTarget/name`` nil), or the config file's `targets:`.
    /// ``prefect``, ``http`` and ``poller`` are those of the first.
    public var targets: [PrefectTarget] = []
    /// `--metrics.max-series-per-family`; 0 means unlimited.
    public var maxSeriesPerFamily: Int = OptionDefaults.maxSeriesPerFamily
    /// `--config.file`, if given.
    public var configFile: String?

    /// Checks every option of one Prefect target and reads its credential files; the public entry
    /// point is ``resolve(_:environment:)``, which applies the config file and handles several targets.
    /// - Throws: ``ConfigurationError`` naming the flag or variable at fault.
    static func resolveTarget(
        _ options: EffectiveOptions, environment: [String: String]
    ) throws(ConfigurationError) -> ExporterConfiguration {
        let apiURL = try validateURL(
            options.apiURL ?? nonEmpty(environment["PREFECT_API_URL"]) ?? "http://127.0.0.1:4200/api",
            setting: options.apiURL != nil ? "--prefect.api-url" : "PREFECT_API_URL")

        let apiKey = try options.apiKeyFile.map { path throws(ConfigurationError) in
            try readSecret(path, setting: "--prefect.api-key-file")
        } ?? nonEmpty(environment["PREFECT_API_KEY"])
        let authString = try options.authStringFile.map { path throws(ConfigurationError) in
            try readSecret(path, setting: "--prefect.auth-string-file")
        } ?? nonEmpty(environment["PREFECT_API_AUTH_STRING"])
        let auth: PrefectAuth
        switch (apiKey, authString) {
        case (.some, .some):
            throw ConfigurationError(
                setting: "PREFECT_API_KEY / PREFECT_API_AUTH_STRING",
                problem: "both an API key and a basic-auth string are set; set only one (an API key for Prefect Cloud, "
                    + "user:pass for a self-hosted server)")
        case (.some(let key), nil): auth = .apiKey(key)
        case (nil, .some(let userPass)):
            guard userPass.contains(":") else {
                throw ConfigurationError(
                    setting: options.authStringFile != nil ? "--prefect.auth-string-file" : "PREFECT_API_AUTH_STRING",
                    problem: "expected 'user:pass'")
            }
            auth = .basic(userPass)
        case (nil, nil): auth = .none
        }
        let credentialSource: String? = switch auth {
        case .none: nil
        case .apiKey: options.apiKeyFile.map { "--prefect.api-key-file \($0)" } ?? "PREFECT_API_KEY"
        case .basic: options.authStringFile.map { "--prefect.auth-string-file \($0)" } ?? "PREFECT_API_AUTH_STRING"
        }

        if let caFile = options.caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ConfigurationError(setting: "--prefect.ca-file", problem: "cannot read \(caFile)")
        }
        let insecure = options.insecureSkipVerify
            || ["true", "1", "yes"].contains(environment["PREFECT_API_TLS_INSECURE_SKIP_VERIFY"]?.lowercased() ?? "")

        let pollInterval = try duration(options.pollInterval, setting: "--prefect.poll-interval", minimum: .milliseconds(100))
        let requestTimeout = try duration(options.requestTimeout, setting: "--prefect.timeout", minimum: .milliseconds(10))
        let connectTimeout = try duration(options.connectTimeout, setting: "--prefect.connect-timeout", minimum: .milliseconds(10))
        let maxStaleness = try duration(options.maxStaleness, setting: "--prefect.max-staleness", minimum: .zero)
        let lateAfter = try duration(options.lateAfter, setting: "--prefect.late-after", minimum: .zero)
        guard (1...64).contains(options.maxConcurrentRequests) else {
            throw ConfigurationError(setting: "--prefect.max-concurrent-requests", problem: "must be between 1 and 64")
        }
        if let budget = options.maxRequestsPerMinute, !(0...1_000_000).contains(budget) {
            throw ConfigurationError(
                setting: "--prefect.max-requests-per-minute", problem: "must be between 1 and 1000000, or 0 for unbounded (got \(budget))")
        }
        guard (0...10).contains(options.retries) else {
            throw ConfigurationError(setting: "--prefect.retries", problem: "must be between 0 and 10")
        }
        let buckets = try parseBuckets(options.latenessBuckets, setting: "--prefect.lateness-buckets")

        do {
            _ = try ListenAddress(parsing: options.listenAddress)
        } catch {
            throw ConfigurationError(setting: "--web.listen-address", problem: "\(error)")
        }
        guard options.telemetryPath.hasPrefix("/"), options.telemetryPath != "/", !options.telemetryPath.hasPrefix("/-/"),
              !options.telemetryPath.contains(where: { $0 == "?" || $0 == "#" || $0 == " " })
        else {
            throw ConfigurationError(
                setting: "--web.telemetry-path",
                problem: "must be a path starting with '/', other than '/' and '/-/…' (got '\(options.telemetryPath)')")
        }
        guard (2...100_000).contains(options.maxConnections) else {
            throw ConfigurationError(setting: "--web.max-connections", problem: "must be between 2 and 100000")
        }
        let levels: [String: Logger.Level] = ["debug": .debug, "info": .info, "warn": .warning, "warning": .warning, "error": .error]
        guard let level = levels[options.logLevel.lowercased()] else {
            throw ConfigurationError(setting: "--log.level", problem: "must be debug, info, warn or error (got '\(options.logLevel)')")
        }
        guard let format = LogFormat(rawValue: options.logFormat.lowercased()) else {
            throw ConfigurationError(setting: "--log.format", problem: "must be logfmt or json (got '\(options.logFormat)')")
        }

        let selection: WorkPoolSelection
        do {
            selection = try WorkPoolSelection(includePattern: options.workPoolInclude, excludePattern: options.workPoolExclude)
        } catch {
            let setting = error.pattern == options.workPoolInclude ? "--prefect.work-pool-include" : "--prefect.work-pool-exclude"
            throw ConfigurationError(setting: setting, problem: "\(error)")
        }
        let aggregation = AggregationSettings(
            lateAfter: lateAfter.seconds, latenessBuckets: buckets, includeDeploymentLabel: options.deploymentLabel,
            includesRunsWithoutPool: selection.includes(""), exemplars: options.exemplars)
        var web = WebServerConfiguration(listenAddress: options.listenAddress)
        web.maxConnections = options.maxConnections
        if let webConfigFile = options.webConfigFile, !webConfigFile.isEmpty {  // empty = none, as in exporter-toolkit
            do {
                web.security = try WebSecurity.load(configFile: webConfigFile)
            } catch {
                throw ConfigurationError(setting: "--web.config.file", problem: "\(error)")
            }
        }
        do {
            try web.validate()
        } catch {
            throw ConfigurationError(setting: "--web.listen-address", problem: "\(error)")
        }
        return ExporterConfiguration(
            prefect: PrefectClientConfiguration(
                baseURL: apiURL, auth: auth, retries: options.retries, maxConcurrentRequests: options.maxConcurrentRequests,
                maxRequestsPerMinute: options.maxRequestsPerMinute.flatMap { $0 > 0 ? $0 : nil },
                credentialSource: credentialSource),
            http: HTTPClientConfiguration(
                connectTimeout: connectTimeout, requestTimeout: requestTimeout, caFile: options.caFile,
                insecureSkipVerify: insecure, userAgent: "prefect-exporter/\(ExporterVersion.version)"),
            poller: PollerConfiguration(
                interval: pollInterval, maxStaleness: maxStaleness, aggregation: aggregation,
                workPoolSelection: selection),
            web: web, telemetryPath: options.telemetryPath, logLevel: level, logFormat: format, once: options.once)
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value = value?.trimmingWhitespaceAndNewlines(), !value.isEmpty else { return nil }
        return value
    }

    static func validateURL(_ text: String, setting: String) throws(ConfigurationError) -> String {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            // Never echo a password: anything up to the last '@' may be `user:pass`.
            var shown = text
            if let at = text.lastIndex(of: "@") {
                let scheme = text.firstRange(of: "://").flatMap { $0.upperBound <= at ? String(text[..<$0.upperBound]) : nil }
                shown = (scheme ?? "") + "***@" + text[text.index(after: at)...]
            }
            throw ConfigurationError(
                setting: setting, problem: "'\(shown)' is not an http(s) URL; expected e.g. http://127.0.0.1:4200/api")
        }
        guard components.query == nil, components.fragment == nil else {
            throw ConfigurationError(setting: setting, problem: "the API URL must not have a query or fragment")
        }
        return text
    }

    static func readSecret(_ path: String, setting: String) throws(ConfigurationError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(setting: setting, problem: "cannot read \(path)")
        }
        let value = String(decoding: data, as: UTF8.self).trimmingWhitespaceAndNewlines()
        guard !value.isEmpty else { throw ConfigurationError(setting: setting, problem: "\(path) is empty") }
        guard !value.contains(where: { $0 == "\n" || $0 == "\r" }) else {
            throw ConfigurationError(setting: setting, problem: "\(path) must hold a single line")
        }
        return value
    }

    static func duration(_ text: String, setting: String, minimum: Duration) throws(ConfigurationError) -> Duration {
        guard let value = PrometheusDuration.parse(text) else {
            throw ConfigurationError(setting: setting, problem: "'\(text)' is not a duration; write e.g. 500ms, 15s, 1m, 1h30m")
        }
        guard value >= minimum else {
            throw ConfigurationError(setting: setting, problem: "'\(text)' is too short; the minimum is \(minimum)")
        }
        return value
    }

    static func parseBuckets(_ text: String, setting: String) throws(ConfigurationError) -> [Double] {
        var bounds: [Double] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingWhitespace()
            guard let value = Double(trimmed), value.isFinite, value > 0 else {
                throw ConfigurationError(setting: setting, problem: "'\(trimmed)' is not a positive number of seconds")
            }
            if let last = bounds.last, value <= last {
                throw ConfigurationError(setting: setting, problem: "bounds must increase (\(trimmed) after \(last))")
            }
            bounds.append(value)
        }
        return bounds
    }
}

/// The exporter's version, shown by `--version` and in `prefect_exporter_build_info`.
public enum ExporterVersion {
    public static let version = "0.1.0"
    /// Set by release builds; `unknown` in development builds.
    public static let revision = "unknown"
}
