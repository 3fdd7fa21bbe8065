import Foundation
import HTTPClient
@testable import ExporterCLI
import PrefectAPI
import Testing

/// A temporary file with these contents, removed by the returned closure.
private func writeFile(_ contents: String, suffix: String = ".yml") throws -> (path: String, remove: () -> Void) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("prefect-exporter-config-\(UUID().uuidString)\(suffix)").path
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return (path, { try? FileManager.default.removeItem(atPath: path) })
}

private func resolve(_ yaml: String, _ arguments: [String] = [], environment: [String: String] = [:]) throws -> ExporterConfiguration {
    let file = try writeFile(yaml)
    defer { file.remove() }
    return try ExporterConfiguration.resolve(try ExporterOptions.parse(["--config.file", file.path] + arguments), environment: environment)
}

/// The error for a config file, with `PATH` standing for the file's path in its description.
private func resolveError(
    _ yaml: String, _ arguments: [String] = [], environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
) throws -> String? {
    let file = try writeFile(yaml)
    defer { file.remove() }
    do {
        _ = try ExporterConfiguration.resolve(try ExporterOptions.parse(["--config.file", file.path] + arguments), environment: environment)
        Issue.record("resolved", sourceLocation: sourceLocation)
        return nil
    } catch {
        return "\(error)".replacingOccurrences(of: file.path, with: "PATH")
    }
}

private let fullExample = """
    # Every key, with a value other than its default.
    prefect:
      api_url: https://prefect.example.com/api
      ca_file: CA_FILE
      insecure_skip_verify: true
      poll_interval: 1m30s
      timeout: 2500ms
      connect_timeout: 1s
      max_staleness: 10m
      late_after: 1m
      max_concurrent_requests: 8
      retries: 0
      lateness_buckets: [1, 2.5, 10]
      work_pool_include: prod-.*
      work_pool_exclude: prod-old
    metrics:
      deployment_label: false
      max_series_per_family: 5000
    web:
      listen_address: 127.0.0.1:0
      telemetry_path: /prom
      max_connections: 64
    log:
      level: warn
      format: json
    """

@Suite("Config file")
struct ConfigFileTests {
    @Test func everyKeyIsRead() throws {
        let ca = try writeFile("-----BEGIN CERTIFICATE-----\n", suffix: ".pem")
        defer { ca.remove() }
        let configuration = try resolve(fullExample.replacingOccurrences(of: "CA_FILE", with: ca.path))
        #expect(configuration.prefect.baseURL == "https://prefect.example.com/api")
        #expect(configuration.http.caFile == ca.path)
        #expect(configuration.http.insecureSkipVerify)
        #expect(configuration.poller.interval == .seconds(90))
        #expect(configuration.http.requestTimeout == .milliseconds(2_500))
        #expect(configuration.http.connectTimeout == .seconds(1))
        #expect(configuration.poller.maxStaleness == .seconds(600))
        #expect(configuration.poller.aggregation.lateAfter == 60)
        #expect(configuration.prefect.maxConcurrentRequests == 8)
        #expect(configuration.prefect.retries == 0)
        #expect(configuration.poller.aggregation.latenessBuckets == [1, 2.5, 10])
        #expect(configuration.poller.workPoolSelection.includes("prod-eu"))
        #expect(!configuration.poller.workPoolSelection.includes("prod-old"))
        #expect(configuration.poller.aggregation.includeDeploymentLabel == false)
        #expect(configuration.maxSeriesPerFamily == 5000)
        #expect(configuration.web.listenAddress == "127.0.0.1:0")
        #expect(configuration.telemetryPath == "/prom")
        #expect(configuration.web.maxConnections == 64)
        #expect(configuration.logLevel == .warning)
        #expect(configuration.logFormat == .json)
        #expect(configuration.targets.count == 1)
        #expect(configuration.targets[0].name == nil)
        #expect(configuration.labelsTargets == false)
    }

    @Test func everyFlagHasAKey() {
        // Flags that are actions or name the file itself have no key; --format is the `metrics`
        // subcommand's (its usage line is on the root help), not the exporter's.
        let keys = Set(ConfigFile.sections.flatMap { section in section.keys.map { "\(section.name).\($0.0)" } })
        let flagsWithoutKeys: Set<String> = ["--config.file", "--once", "--version", "--help", "--format"]
        let help = ExporterCommand.helpMessage(columns: 1000)
        let flags = help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "/" })
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ".,;:()'[]")) }
            .filter { $0.hasPrefix("--") }
        #expect(flags.count > 20)
        for flag in Set(flags).subtracting(flagsWithoutKeys) {
            // --no-metrics.deployment-label is the inverse of metrics.deployment_label.
            let name = flag.hasPrefix("--no-") ? String(flag.dropFirst(5)) : String(flag.dropFirst(2))
            let parts = name.split(separator: ".", maxSplits: 1)
            let key = parts.count == 2 ? "\(parts[0]).\(parts[1].replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_"))" : name
            #expect(keys.contains(key), "\(flag) has no config file key \(key)")
        }
    }

    @Test func emptyFilesAndNullValuesSetNothing() throws {
        for yaml in ["", "# nothing\n", "prefect:\n", "prefect:\n  poll_interval:\n  retries: ~\n"] {
            let configuration = try resolve(yaml)
            #expect(configuration.poller.interval == .seconds(30), "\(yaml)")
            #expect(configuration.prefect.retries == 2, "\(yaml)")
        }
    }

    @Test func bucketsMayBeAString() throws {
        #expect(try resolve("prefect:\n  lateness_buckets: \"5, 50\"\n").poller.aggregation.latenessBuckets == [5, 50])
    }

    // MARK: Precedence

    @Test func flagsWinOverTheFile() throws {
        let configuration = try resolve(
            "prefect:\n  poll_interval: 1m\n  api_url: http://file.example/api\nlog:\n  level: error\nmetrics:\n  deployment_label: false\n",
            ["--prefect.poll-interval", "5s", "--prefect.api-url", "http://flag.example/api", "--metrics.deployment-label"])
        #expect(configuration.poller.interval == .seconds(5))
        #expect(configuration.prefect.baseURL == "http://flag.example/api")
        #expect(configuration.logLevel == .error)
        #expect(configuration.poller.aggregation.includeDeploymentLabel)
    }

    @Test func environmentWinsOverTheFile() throws {
        let key = try writeFile("pnu_from_file")
        defer { key.remove() }
        let yaml = "prefect:\n  api_url: http://file.example/api\n  api_key_file: \(key.path)\n"
        let fromEnvironment = try resolve(yaml, environment: ["PREFECT_API_URL": "http://env.example/api", "PREFECT_API_AUTH_STRING": "u:p"])
        #expect(fromEnvironment.prefect.baseURL == "http://env.example/api")
        // The credential is one setting: the environment's, not a mix with the file's.
        #expect(fromEnvironment.prefect.auth == .basic("u:p"))
        let fromFile = try resolve(yaml)
        #expect(fromFile.prefect.baseURL == "http://file.example/api")
        #expect(fromFile.prefect.auth == .apiKey("pnu_from_file"))
    }

    @Test func theFileWinsOverDefaults() throws {
        let configuration = try resolve("web:\n  listen_address: \"[::1]:9999\"\n")
        #expect(configuration.web.listenAddress == "[::1]:9999")
        #expect(configuration.telemetryPath == "/metrics")
    }

    // MARK: Errors

    @Test func unknownKeysNameTheirPathAndLine() throws {
        #expect(try resolveError("prefect:\n  pol_interval: 30s\n")
            == "PATH:2: prefect.pol_interval: unknown key; did you mean prefect.poll_interval?")
        #expect(try resolveError("prefect:\n  poll_interval: 30s\nweb:\n  listen: x\n")?.hasPrefix("PATH:4: web.listen: unknown key; known keys here: ") == true)
        #expect(try resolveError("prefects:\n  retries: 1\n") == "PATH:1: prefects: unknown key; did you mean prefect?")
        #expect(try resolveError("targets:\n  - name: a\n    api_url: http://a/api\n    api_ky_file: /k\n")
            == "PATH:4: targets[0].api_ky_file: unknown key; did you mean targets[0].api_key_file?")
    }

    @Test func wrongTypesNameTheirPath() throws {
        #expect(try resolveError("prefect:\n  retries: two\n") == "PATH:2: prefect.retries: expected an integer, got 'two'")
        #expect(try resolveError("prefect:\n  retries: [1]\n") == "PATH:2: prefect.retries: expected an integer, got a list")
        #expect(try resolveError("prefect:\n  insecure_skip_verify: maybe\n")
            == "PATH:2: prefect.insecure_skip_verify: expected true or false, got 'maybe'")
        #expect(try resolveError("prefect:\n  api_url: {host: x}\n") == "PATH:2: prefect.api_url: expected a string, got a mapping")
        #expect(try resolveError("prefect:\n  lateness_buckets: [1, two]\n")
            == "PATH:2: prefect.lateness_buckets: expected a list of numbers such as [15, 30, 60], got a list")
        #expect(try resolveError("prefect: 30s\n") == "PATH:1: prefect: expected a mapping of keys, got '30s'")
        #expect(try resolveError("- a\n- b\n")?.hasPrefix("PATH:1: (top level): expected a mapping of sections") == true)
        #expect(try resolveError("targets: {name: a}\n")?.hasPrefix("PATH:1: targets: expected a list of targets") == true)
    }

    @Test func badValuesNameTheKeyNotTheFlag() throws {
        #expect(try resolveError("prefect:\n  poll_interval: soon\n")
            == "PATH:2: prefect.poll_interval: 'soon' is not a duration; write e.g. 500ms, 15s, 1m, 1h30m")
        #expect(try resolveError("prefect:\n  api_url: ftp://x/api\n")
            == "PATH:2: prefect.api_url: 'ftp://x/api' is not an http(s) URL; expected e.g. http://127.0.0.1:4200/api")
        #expect(try resolveError("log:\n  level: chatty\n") == "PATH:2: log.level: must be debug, info, warn or error (got 'chatty')")
        #expect(try resolveError("prefect:\n  api_key_file: /nonexistent/key\n") == "PATH:2: prefect.api_key_file: cannot read /nonexistent/key")
        #expect(try resolveError("metrics:\n  max_series_per_family: -1\n")
            == "PATH:2: metrics.max_series_per_family: must be 0 (unlimited) or more (got -1)")
        #expect(try resolveError("web:\n  listen_address: nope\n")?.hasPrefix("PATH:2: web.listen_address: ") == true)
        // The same value from a flag still names the flag.
        #expect(try resolveError("prefect:\n  retries: 1\n", ["--prefect.poll-interval", "soon"])?.hasPrefix("--prefect.poll-interval: ") == true)
    }

    @Test func invalidYAMLIsOneLine() throws {
        let message = try #require(try resolveError("prefect:\n  poll_interval: [1, 2\n"))
        #expect(message.hasPrefix("PATH: invalid YAML at line "))
        #expect(!message.contains("\n"))
        #expect(try resolveError("prefect:\n  retries: 1\n  retries: 2\n")?.contains("retries appears more than once") == true)
    }

    @Test func anUnreadableFileNamesTheFlag() throws {
        let options = try ExporterOptions.parse(["--config.file", "/nonexistent/prefect-exporter.yml"])
        #expect(throws: ConfigurationError(setting: "--config.file", problem: "cannot read /nonexistent/prefect-exporter.yml")) {
            try ExporterConfiguration.resolve(options, environment: [:])
        }
    }

    @Test func bothCredentialsInTheFileIsAnError() throws {
        #expect(try resolveError("prefect:\n  api_key_file: /a\n  auth_string_file: /b\n")?
            .hasPrefix("PATH:3: prefect.auth_string_file: both api_key_file and auth_string_file are set") == true)
    }

    // MARK: Targets

    @Test func targetsHaveTheirOwnURLCredentialsAndSelection() throws {
        let key = try writeFile("pnu_prod\n")
        let auth = try writeFile("user:pass\n")
        defer { key.remove(); auth.remove() }
        let configuration = try resolve(
            """
            prefect:
              poll_interval: 15s
              insecure_skip_verify: true
            targets:
              - name: prod
                api_url: https://prod.example/api
                api_key_file: \(key.path)
                work_pool_include: k8s-.*
              - name: staging
                api_url: http://staging.example:4200/api
                auth_string_file: \(auth.path)
                insecure_skip_verify: false
            """,
            environment: ["PREFECT_API_URL": "http://ignored/api", "PREFECT_API_KEY": "pnu_ignored"])
        #expect(configuration.labelsTargets)
        #expect(configuration.targets.map(\.name) == ["prod", "staging"])
        let prod = configuration.targets[0]
        let staging = configuration.targets[1]
        #expect(prod.prefect.baseURL == "https://prod.example/api")
        #expect(prod.prefect.auth == .apiKey("pnu_prod"))
        #expect(prod.poller.workPoolSelection.includes("k8s-eu"))
        #expect(!prod.poller.workPoolSelection.includes("local"))
        #expect(prod.poller.aggregation.includesRunsWithoutPool == false)
        #expect(prod.http.insecureSkipVerify)
        #expect(staging.prefect.baseURL == "http://staging.example:4200/api")
        #expect(staging.prefect.auth == .basic("user:pass"))
        #expect(staging.poller.workPoolSelection.isFiltering == false)
        #expect(staging.http.insecureSkipVerify == false)
        #expect(staging.poller.interval == .seconds(15))
        #expect(configuration.prefect.baseURL == prod.prefect.baseURL)
    }

    @Test func targetErrors() throws {
        #expect(try resolveError("targets: []\n")?.hasPrefix("PATH:1: targets: lists no target") == true)
        #expect(try resolveError("targets:\n  - name: a\n") == "PATH:2: targets[0].api_url: missing; every target needs a name and an api_url")
        #expect(try resolveError("targets:\n  - api_url: http://a/api\n") == "PATH:2: targets[0].name: missing; every target needs a name and an api_url")
        #expect(try resolveError("targets:\n  - {name: a, api_url: http://a/api}\n  - {name: a, api_url: http://b/api}\n")?
            .hasPrefix("PATH:3: targets[1].name: 'a' is already the name of targets[0]") == true)
        #expect(try resolveError("targets:\n  - {name: a, api_url: 'ftp://a'}\n")
            == "PATH:2: targets[0].api_url: 'ftp://a' is not an http(s) URL; expected e.g. http://127.0.0.1:4200/api")
        #expect(try resolveError("targets:\n  - name: a\n    api_url: http://a/api\n    api_key_file: /nonexistent/k\n")
            == "PATH:4: targets[0].api_key_file: cannot read /nonexistent/k")
        #expect(try resolveError("targets:\n  - {name: a, api_url: http://a/api, work_pool_include: '(['}\n")?
            .hasPrefix("PATH:2: targets[0].work_pool_include: invalid regular expression") == true)
        #expect(try resolveError("prefect:\n  api_url: http://x/api\ntargets:\n  - {name: a, api_url: http://a/api}\n")?
            .hasPrefix("PATH:2: prefect.api_url: cannot be combined with targets") == true)
        #expect(try resolveError("targets:\n  - {name: a, api_url: http://a/api}\n", ["--prefect.api-url", "http://x/api"])?
            .hasPrefix("--prefect.api-url: cannot be combined with the targets of PATH") == true)
        #expect(try resolveError("targets:\n  - {name: '', api_url: http://a/api}\n")?.hasPrefix("PATH:2: targets[0].name: must be a non-empty name") == true)
    }

    @Test func editDistance() {
        #expect(ConfigFile.editDistance("pol_interval", "poll_interval") == 1)
        #expect(ConfigFile.editDistance("", "abc") == 3)
        #expect(ConfigFile.editDistance("same", "same") == 0)
    }
}
