public import HTTPClient
public import Poller
public import PrefectAPI

/// One Prefect the exporter polls, with its own client, transport and poller settings.
public struct PrefectTarget: Sendable {
    /// The `prefect` label value; nil for the single target of a configuration without `targets:`,
    /// whose series carry no `prefect` label.
    public var name: String?
    /// The client: URL, credentials, retries, concurrency.
    public var prefect: PrefectClientConfiguration
    /// The transport: timeouts and TLS.
    public var http: HTTPClientConfiguration
    /// The poll loop: interval, staleness, aggregation and work-pool selection.
    public var poller: PollerConfiguration

    /// Creates a target.
    public init(name: String?, prefect: PrefectClientConfiguration, http: HTTPClientConfiguration, poller: PollerConfiguration) {
        self.name = name
        self.prefect = prefect
        self.http = http
        self.poller = poller
    }
}

extension ExporterConfiguration {
    /// Checks every option and reads the credential files and the config file.
    ///
    /// Precedence: flags, then the environment (`PREFECT_API_URL`, `PREFECT_API_KEY`,
    /// `PREFECT_API_AUTH_STRING`, `PREFECT_API_TLS_INSECURE_SKIP_VERIFY`), then `--config.file`, then
    /// the defaults. With `targets:` in the config file, each target brings its own URL, credentials
    /// and pool selection; the flags and file keys for those are then errors, and the `PREFECT_API_*`
    /// variables are ignored.
    /// - Throws: ``ConfigurationError`` naming the flag, variable, or file and key at fault.
    public static func resolve(
        _ options: ExporterOptions, environment: [String: String]
    ) throws(ConfigurationError) -> ExporterConfiguration {
        let file = try options.configFile.map { path throws(ConfigurationError) in try ConfigFile.load(path: path) }
        let effective = EffectiveOptions(options, environment: environment, file: file)
        guard effective.maxSeriesPerFamily >= 0 else {
            throw effective.attributing(ConfigurationError(
                setting: "--metrics.max-series-per-family", problem: "must be 0 (unlimited) or more (got \(effective.maxSeriesPerFamily))"))
        }
        guard let file, let targets = file.targets else {
            var configuration: ExporterConfiguration
            do {
                configuration = try resolveTarget(effective, environment: environment)
            } catch {
                throw effective.attributing(error)
            }
            configuration.targets = [
                PrefectTarget(name: nil, prefect: configuration.prefect, http: configuration.http, poller: configuration.poller),
            ]
            configuration.maxSeriesPerFamily = effective.maxSeriesPerFamily
            configuration.configFile = options.configFile
            return configuration
        }

        let perTargetFlags: [(String, Bool)] = [
            ("--prefect.api-url", options.apiURL != nil), ("--prefect.api-key-file", options.apiKeyFile != nil),
            ("--prefect.auth-string-file", options.authStringFile != nil),
            ("--prefect.work-pool-include", options.workPoolInclude != nil),
            ("--prefect.work-pool-exclude", options.workPoolExclude != nil),
        ]
        if let flag = perTargetFlags.first(where: { $0.1 })?.0 {
            throw ConfigurationError(
                setting: flag,
                problem: "cannot be combined with the targets of \(file.path); set it on each target instead")
        }
        var resolved: [PrefectTarget] = []
        var first: ExporterConfiguration?
        for target in targets {
            let specialized = effective.specialized(for: target, in: file)
            let configuration: ExporterConfiguration
            do {
                // The PREFECT_API_* variables describe one Prefect; targets bring their own settings.
                configuration = try resolveTarget(specialized, environment: [:])
            } catch {
                throw specialized.attributing(error)
            }
            resolved.append(
                PrefectTarget(name: target.name, prefect: configuration.prefect, http: configuration.http, poller: configuration.poller))
            if first == nil { first = configuration }
        }
        guard var configuration = first else {
            throw ConfigurationError(setting: file.origin("targets"), problem: "lists no target")
        }
        configuration.targets = resolved
        configuration.maxSeriesPerFamily = effective.maxSeriesPerFamily
        configuration.configFile = options.configFile
        return configuration
    }

    /// Whether the series carry a `prefect` label: with `targets:` in the config file.
    public var labelsTargets: Bool {
        targets.contains { $0.name != nil }
    }
}
