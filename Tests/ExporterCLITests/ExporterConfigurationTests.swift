import Foundation
import HTTPClient
import Logging
@testable import ExporterCLI
import Poller
import PrefectAPI
import Testing

private func resolve(_ arguments: [String] = [], environment: [String: String] = [:]) throws -> ExporterConfiguration {
    let options = try ExporterOptions.parse(arguments)
    return try ExporterConfiguration.resolve(options, environment: environment)
}

/// The configuration error for these flags and environment, or nil (with an issue) if they resolve.
private func resolveError(
    _ arguments: [String], environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
) throws -> ConfigurationError? {
    let options = try ExporterOptions.parse(arguments)
    do {
        _ = try ExporterConfiguration.resolve(options, environment: environment)
        Issue.record("\(arguments) \(environment) resolved", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// A temporary file with these contents; removed at the end of the test by the returned closure.
private func temporaryFile(_ contents: String) throws -> (path: String, remove: () -> Void) {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("prefect-exporter-test-\(UUID().uuidString)").path
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return (path, { try? FileManager.default.removeItem(atPath: path) })
}

@Suite("ExporterConfiguration")
struct ExporterConfigurationTests {
    @Test func defaults() throws {
        let configuration = try resolve()
        #expect(configuration.prefect.baseURL == "http://127.0.0.1:4200/api")
        #expect(configuration.prefect.auth == PrefectAuth.none)
        #expect(configuration.prefect.retries == 2)
        #expect(configuration.prefect.maxConcurrentRequests == 4)
        #expect(configuration.prefect.pageSize == 200)
        #expect(configuration.http.connectTimeout == .seconds(5))
        #expect(configuration.http.requestTimeout == .seconds(10))
        #expect(configuration.http.caFile == nil)
        #expect(configuration.http.insecureSkipVerify == false)
        #expect(configuration.http.userAgent == "prefect-exporter/\(ExporterVersion.version)")
        #expect(configuration.poller.interval == .seconds(30))
        #expect(configuration.poller.maxStaleness == .seconds(300))
        #expect(configuration.poller.aggregation.lateAfter == 15)
        #expect(configuration.poller.aggregation.latenessBuckets == [15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400])
        #expect(configuration.poller.aggregation.includeDeploymentLabel == true)
        #expect(configuration.poller.aggregation.includesRunsWithoutPool == true)
        #expect(configuration.poller.workPoolSelection.isFiltering == false)
        #expect(configuration.web.listenAddress == ":14200")
        #expect(configuration.web.maxConnections == 512)
        #expect(configuration.telemetryPath == "/metrics")
        #expect(configuration.logLevel == .info)
        #expect(configuration.logFormat == .logfmt)
        #expect(configuration.once == false)
    }

    @Test func everyFlag() throws {
        let ca = try temporaryFile("-----BEGIN CERTIFICATE-----\n")
        defer { ca.remove() }
        let configuration = try resolve([
            "--prefect.api-url", "https://prefect.example.com/api/", "--prefect.ca-file", ca.path, "--prefect.insecure-skip-verify",
            "--prefect.poll-interval", "1m30s", "--prefect.timeout", "2500ms", "--prefect.connect-timeout", "1s",
            "--prefect.max-staleness", "0", "--prefect.late-after", "1m", "--prefect.max-concurrent-requests", "64",
            "--prefect.retries", "0", "--prefect.lateness-buckets", " 1, 2.5 ,10", "--no-metrics.deployment-label",
            "--prefect.work-pool-include", "prod-.*", "--prefect.work-pool-exclude", "prod-old",
            "--web.listen-address", "127.0.0.1:0", "--web.telemetry-path", "/prom", "--web.max-connections", "100000",
            "--log.level", "WARN", "--log.format", "JSON", "--once",
        ])
        #expect(configuration.prefect.baseURL == "https://prefect.example.com/api")
        #expect(configuration.http.caFile == ca.path)
        #expect(configuration.http.insecureSkipVerify)
        #expect(configuration.poller.interval == .seconds(90))
        #expect(configuration.http.requestTimeout == .milliseconds(2_500))
        #expect(configuration.http.connectTimeout == .seconds(1))
        #expect(configuration.poller.maxStaleness == .zero)
        #expect(configuration.poller.aggregation.lateAfter == 60)
        #expect(configuration.prefect.maxConcurrentRequests == 64)
        #expect(configuration.prefect.retries == 0)
        #expect(configuration.poller.aggregation.latenessBuckets == [1, 2.5, 10])
        #expect(configuration.poller.aggregation.includeDeploymentLabel == false)
        #expect(configuration.poller.workPoolSelection.isFiltering)
        #expect(configuration.poller.workPoolSelection.includes("prod-eu"))
        #expect(!configuration.poller.workPoolSelection.includes("prod-old"))
        #expect(!configuration.poller.workPoolSelection.includes(""))
        #expect(configuration.poller.aggregation.includesRunsWithoutPool == false)
        #expect(configuration.web.listenAddress == "127.0.0.1:0")
        #expect(configuration.web.maxConnections == 100_000)
        #expect(configuration.telemetryPath == "/prom")
        #expect(configuration.logLevel == .warning)
        #expect(configuration.logFormat == .json)
        #expect(configuration.once)
    }

    @Test(arguments: [(["--metrics.deployment-label"], true), (["--no-metrics.deployment-label"], false), ([], true)])
    func deploymentLabelFlag(arguments: [String], expected: Bool) throws {
        #expect(try resolve(arguments).poller.aggregation.includeDeploymentLabel == expected)
    }

    @Test(arguments: [(["--metrics.exemplars"], true), (["--no-metrics.exemplars"], false), ([], false)])
    func exemplarsFlag(arguments: [String], expected: Bool) throws {
        #expect(try resolve(arguments).poller.aggregation.exemplars == expected)
    }

    @Test func selectionIncludingTheEmptyNameKeepsRunsWithoutPool() throws {
        let configuration = try resolve(["--prefect.work-pool-include", "prod-.*|"])
        #expect(configuration.poller.workPoolSelection.includes(""))
        #expect(configuration.poller.aggregation.includesRunsWithoutPool)
    }

    // MARK: Environment

    @Test func environmentFallbacks() throws {
        let configuration = try resolve(environment: [
            "PREFECT_API_URL": "  https://api.prefect.cloud/api/accounts/a/workspaces/w  ", "PREFECT_API_KEY": " pnu_key\n",
            "PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "TRUE",
        ])
        #expect(configuration.prefect.baseURL == "https://api.prefect.cloud/api/accounts/a/workspaces/w")
        #expect(configuration.prefect.auth == .apiKey("pnu_key"))
        #expect(configuration.http.insecureSkipVerify)
    }

    @Test func authStringFromEnvironmentIsBasic() throws {
        let configuration = try resolve(environment: ["PREFECT_API_AUTH_STRING": "admin:s3cret:with:colons"])
        #expect(configuration.prefect.auth == .basic("admin:s3cret:with:colons"))
    }

    @Test func flagsWinOverEnvironment() throws {
        let key = try temporaryFile("pnu_from_file")
        defer { key.remove() }
        let configuration = try resolve(
            ["--prefect.api-url", "http://flag.example:4200/api", "--prefect.api-key-file", key.path],
            environment: ["PREFECT_API_URL": "http://env.example/api", "PREFECT_API_KEY": "pnu_from_env"])
        #expect(configuration.prefect.baseURL == "http://flag.example:4200/api")
        #expect(configuration.prefect.auth == .apiKey("pnu_from_file"))
    }

    @Test(arguments: ["", "   ", "\n"])
    func emptyEnvironmentValuesAreUnset(value: String) throws {
        let configuration = try resolve(environment: ["PREFECT_API_URL": value, "PREFECT_API_KEY": value, "PREFECT_API_AUTH_STRING": value])
        #expect(configuration.prefect.baseURL == "http://127.0.0.1:4200/api")
        #expect(configuration.prefect.auth == PrefectAuth.none)
    }

    @Test(arguments: ["false", "0", "no", "", "maybe"])
    func insecureOnlyForTruthyValues(value: String) throws {
        #expect(try resolve(environment: ["PREFECT_API_TLS_INSECURE_SKIP_VERIFY": value]).http.insecureSkipVerify == false)
    }

    @Test func bothKeyAndAuthStringIsAnError() throws {
        let error = try resolveError([], environment: ["PREFECT_API_KEY": "pnu_x", "PREFECT_API_AUTH_STRING": "u:p"])
        #expect(error?.setting == "PREFECT_API_KEY / PREFECT_API_AUTH_STRING")
        #expect(error?.problem.contains("set only one") == true)
        let file = try temporaryFile("u:p\n")
        defer { file.remove() }
        #expect(try resolveError(["--prefect.auth-string-file", file.path], environment: ["PREFECT_API_KEY": "pnu_x"])?.setting
            == "PREFECT_API_KEY / PREFECT_API_AUTH_STRING")
    }

    // MARK: Credential files

    @Test(arguments: ["pnu_abc", "pnu_abc\n", "  pnu_abc  \r\n", "\npnu_abc\n\n"])
    func keyFileIsReadAndTrimmed(contents: String) throws {
        let file = try temporaryFile(contents)
        defer { file.remove() }
        let configuration = try resolve(["--prefect.api-key-file", file.path])
        #expect(configuration.prefect.auth == .apiKey("pnu_abc"))
    }

    @Test func authStringFileIsBasic() throws {
        let file = try temporaryFile("robot:pa ss\n")
        defer { file.remove() }
        #expect(try resolve(["--prefect.auth-string-file", file.path]).prefect.auth == .basic("robot:pa ss"))
    }

    @Test(arguments: ["--prefect.api-key-file", "--prefect.auth-string-file"])
    func unreadableFileNamesTheFlag(flag: String) throws {
        let path = "/nonexistent/prefect-exporter/secret"
        let error = try resolveError([flag, path])
        #expect(error == ConfigurationError(setting: flag, problem: "cannot read \(path)"))
        #expect(error?.description == "\(flag): cannot read \(path)")
    }

    @Test(arguments: ["--prefect.api-key-file", "--prefect.auth-string-file"])
    func emptyOrMultiLineFilesAreErrors(flag: String) throws {
        let empty = try temporaryFile(" \n ")
        defer { empty.remove() }
        #expect(try resolveError([flag, empty.path]) == ConfigurationError(setting: flag, problem: "\(empty.path) is empty"))
        let twoLines = try temporaryFile("user:a\nuser:b\n")
        defer { twoLines.remove() }
        #expect(try resolveError([flag, twoLines.path]) == ConfigurationError(setting: flag, problem: "\(twoLines.path) must hold a single line"))
    }

    @Test func authStringWithoutColonIsAnError() throws {
        #expect(try resolveError([], environment: ["PREFECT_API_AUTH_STRING": "justapassword"])
            == ConfigurationError(setting: "PREFECT_API_AUTH_STRING", problem: "expected 'user:pass'"))
        let file = try temporaryFile("justapassword")
        defer { file.remove() }
        #expect(try resolveError(["--prefect.auth-string-file", file.path])?.setting == "--prefect.auth-string-file")
    }

    @Test func unreadableCAFile() throws {
        #expect(try resolveError(["--prefect.ca-file", "/nonexistent/ca.pem"])
            == ConfigurationError(setting: "--prefect.ca-file", problem: "cannot read /nonexistent/ca.pem"))
    }

    // MARK: URLs

    @Test(arguments: [
        "ftp://prefect.example.com/api", "http:///api", "http://", "prefect.example.com/api", "localhost:4200/api", "file:///tmp/x",
        "not a url", "http://prefect.example.com/api?x=1", "http://prefect.example.com/api#frag", "https://host:4200/api?",
    ])
    func badURLFlagNamesTheFlag(url: String) throws {
        let error = try resolveError(["--prefect.api-url", url])
        #expect(error?.setting == "--prefect.api-url")
        // The same URL from the environment names the variable.
        #expect(try resolveError([], environment: ["PREFECT_API_URL": url])?.setting == "PREFECT_API_URL")
    }

    @Test func badURLMessages() throws {
        #expect(try resolveError(["--prefect.api-url", "ftp://h/api"])?.problem
            == "'ftp://h/api' is not an http(s) URL; expected e.g. http://127.0.0.1:4200/api")
        #expect(try resolveError(["--prefect.api-url", "http://h/api?x=1"])?.problem == "the API URL must not have a query or fragment")
    }

    @Test(arguments: ["http://127.0.0.1:4200/api", "HTTPS://Prefect.Example.com/api", "http://[::1]:4200/api", "http://user:pass@h/api"])
    func goodURLs(url: String) throws {
        #expect(try resolve(["--prefect.api-url", url]).prefect.baseURL == url)
    }

    // MARK: Values

    @Test(arguments: [
        ("--prefect.poll-interval", "soon"), ("--prefect.poll-interval", "50ms"), ("--prefect.poll-interval", "0"),
        ("--prefect.timeout", "1.5s"), ("--prefect.timeout", "5ms"), ("--prefect.connect-timeout", "-1s"),
        ("--prefect.connect-timeout", "0"), ("--prefect.max-staleness", "5 m"), ("--prefect.late-after", "30s1m"),
        ("--prefect.max-concurrent-requests", "0"), ("--prefect.max-concurrent-requests", "65"),
        ("--prefect.retries", "-1"), ("--prefect.retries", "11"),
        ("--prefect.max-requests-per-minute", "-1"), ("--prefect.max-requests-per-minute", "1000001"),
        ("--prefect.lateness-buckets", ""), ("--prefect.lateness-buckets", "15,30,,60"), ("--prefect.lateness-buckets", "30,15"),
        ("--prefect.lateness-buckets", "15,15"), ("--prefect.lateness-buckets", "0,10"), ("--prefect.lateness-buckets", "-5"),
        ("--prefect.lateness-buckets", "inf"), ("--prefect.lateness-buckets", "nan"), ("--prefect.lateness-buckets", "1e400"),
        ("--prefect.lateness-buckets", "ten"),
        ("--prefect.work-pool-include", "(["), ("--prefect.work-pool-exclude", "*"),
        ("--web.listen-address", "14200"), ("--web.listen-address", "::1:14200"), ("--web.listen-address", ":99999"),
        ("--web.listen-address", "[::1]"), ("--web.listen-address", "host:"),
        ("--web.telemetry-path", "metrics"), ("--web.telemetry-path", "/"), ("--web.telemetry-path", "/-/metrics"),
        ("--web.telemetry-path", "/metrics?x"), ("--web.telemetry-path", "/met rics"), ("--web.telemetry-path", "/m#x"),
        ("--web.max-connections", "0"), ("--web.max-connections", "100001"),
        ("--log.level", "trace"), ("--log.level", "verbose"), ("--log.format", "text"), ("--log.format", ""),
    ])
    func badValuesNameTheirFlag(flag: String, value: String) throws {
        // `--flag=value` lets values start with '-'; ArgumentParser wants an empty value as its own argument.
        let error = try resolveError(value.isEmpty ? [flag, value] : ["\(flag)=\(value)"])
        #expect(error?.setting == flag)
        #expect(error?.description.hasPrefix("\(flag): ") == true)
    }

    @Test func valueMessagesSayWhatIsExpected() throws {
        #expect(try resolveError(["--prefect.poll-interval", "soon"])?.problem
            == "'soon' is not a duration; write e.g. 500ms, 15s, 1m, 1h30m")
        #expect(try resolveError(["--prefect.poll-interval", "50ms"])?.problem.hasPrefix("'50ms' is too short; the minimum is") == true)
        #expect(try resolveError(["--prefect.lateness-buckets", "30,15"])?.problem == "bounds must increase (15 after 30.0)")
        #expect(try resolveError(["--prefect.lateness-buckets", "1,x"])?.problem == "'x' is not a positive number of seconds")
        #expect(try resolveError(["--log.level", "trace"])?.problem == "must be debug, info, warn or error (got 'trace')")
        #expect(try resolveError(["--log.format", "text"])?.problem == "must be logfmt or json (got 'text')")
        #expect(try resolveError(["--prefect.work-pool-include", "(["])?.problem
            == "invalid regular expression '([': it does not compile; check brackets, parentheses and escapes")
        #expect(try resolveError(["--web.listen-address", "14200"])?.problem.contains("invalid listen address") == true)
    }

    @Test(arguments: [("debug", Logger.Level.debug), ("info", .info), ("warn", .warning), ("warning", .warning), ("error", .error), ("ERROR", .error)])
    func logLevels(text: String, level: Logger.Level) throws {
        #expect(try resolve(["--log.level", text]).logLevel == level)
    }

    @Test(arguments: [("100ms", Duration.milliseconds(100)), ("15s", .seconds(15)), ("2h", .seconds(7_200))])
    func pollIntervalMinimumIsInclusive(text: String, duration: Duration) throws {
        #expect(try resolve(["--prefect.poll-interval", text]).poller.interval == duration)
    }

    @Test func unknownFlagsFailToParse() {
        #expect(throws: (any Error).self) { try ExporterOptions.parse(["--prefect.no-such-flag", "1"]) }
        #expect(throws: (any Error).self) { try ExporterOptions.parse(["--prefect.retries", "two"]) }
    }
}

@Suite("ExporterMain")
struct ExporterMainTests {
    @Test(arguments: [["--no-such-flag"], ["--prefect.retries", "x"], ["--prefect.api-url", "ftp://h/api"], ["--prefect.poll-interval", "1x"]])
    func badArgumentsExitWithStatus2(arguments: [String]) async {
        #expect(await ExporterMain.main(arguments: arguments) == 2)
    }

    @Test func versionExitsWith0() async {
        #expect(await ExporterMain.main(arguments: ["--version"]) == 0)
    }
}
