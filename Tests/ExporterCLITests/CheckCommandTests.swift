import ArgumentParser
import Exposition
import Foundation
import HTTPClient
@testable import ExporterCLI
import Poller
import PrefectAPI
import Testing

private func gauge(_ name: String, _ series: [([String: String], Double)]) -> MetricFamily {
    MetricFamily(
        name: name, help: "", type: .gauge,
        metrics: series.map { labels, value in
            Metric(labels: labels.keys.sorted().map { Label($0, labels[$0] ?? "") }, value: value)
        })
}

/// What a poll of a small Prefect yields: two pools (one NOT_READY), three queues (one paused
/// with runs waiting), two deployments, late runs.
private let families: [MetricFamily] = [
    gauge("prefect_server_info", [(["version": "3.8.8", "api_version": "0.8.4"], 1)]),
    gauge("prefect_work_pool_info", [(["work_pool": "k8s", "type": "kubernetes"], 1), (["work_pool": "local", "type": "process"], 1)]),
    gauge("prefect_work_pool_status", [
        (["work_pool": "k8s", "status": "READY"], 0), (["work_pool": "k8s", "status": "NOT_READY"], 1),
        (["work_pool": "local", "status": "READY"], 1), (["work_pool": "local", "status": "NOT_READY"], 0),
    ]),
    gauge("prefect_work_queue_priority", [
        (["work_pool": "k8s", "work_queue": "default"], 1), (["work_pool": "k8s", "work_queue": "low"], 2),
        (["work_pool": "local", "work_queue": "default"], 1),
    ]),
    gauge("prefect_work_queue_status", [
        (["work_pool": "k8s", "work_queue": "low", "status": "PAUSED"], 1),
        (["work_pool": "k8s", "work_queue": "default", "status": "PAUSED"], 0),
        (["work_pool": "local", "work_queue": "default", "status": "PAUSED"], 1),
    ]),
    gauge("prefect_deployment_info", [(["deployment": "f/a"], 1), (["deployment": "f/b"], 1)]),
    gauge("prefect_flow_runs", [
        (["work_pool": "k8s", "work_queue": "default", "state_type": "SCHEDULED", "state_name": "Late"], 3),
        (["work_pool": "k8s", "work_queue": "low", "state_type": "SCHEDULED", "state_name": "Scheduled"], 1),
        (["work_pool": "local", "work_queue": "default", "state_type": "RUNNING", "state_name": "Running"], 2),
    ]),
    gauge("prefect_flow_runs_upcoming", [
        (["work_pool": "k8s", "work_queue": "low"], 4), (["work_pool": "local", "work_queue": "default"], 0),
    ]),
    gauge("prefect_flow_runs_late", [(["work_pool": "k8s", "work_queue": "default", "deployment": "f/a"], 3)]),
    gauge("prefect_flow_run_max_lateness_seconds", [
        (["work_pool": "k8s", "work_queue": "default"], 330), (["work_pool": "k8s", "work_queue": "low"], 0),
    ]),
]

@Suite("check")
struct CheckCommandTests {
    @Test func countsAndWarningsComeFromThePollsFamilies() {
        let summary = CheckSummary(families: families)
        #expect(summary.serverVersion == "3.8.8")
        #expect(summary.apiVersion == "0.8.4")
        #expect(summary.workPools == 2)
        #expect(summary.workQueues == 3)
        #expect(summary.deployments == 2)
        #expect(summary.runsDueOrInFlight == 6)
        #expect(summary.runsUpcoming == 4)
        #expect(summary.warnings == [
            "3 late runs in work pool 'k8s'; the latest is 5m 30s late",
            "work pool 'k8s' is NOT_READY: no worker has polled it recently",
            "work queue 'low' of work pool 'k8s' is paused with 5 scheduled runs",
        ])
    }

    @Test func nothingToSay() {
        let summary = CheckSummary(families: [])
        #expect(summary.workPools == 0)
        #expect(summary.warnings.isEmpty)
        #expect(summary.serverVersion == nil)
    }

    @Test(arguments: ["3.4.0", "3.4.25", "3.8.8", "3.9.1", "3.9.12.dev4", "3.9.0rc1", "", nil] as [String?])
    func testedVersionsRaiseNoWarning(version: String?) {
        #expect(SupportedPrefectVersions.warning(for: version) == nil)
    }

    @Test(arguments: ["3.3.9", "3.10.0", "2.20.3", "4.0.0", "3.10.0rc1"])
    func versionsOutsideTheTestedLinesAreNamed(version: String) throws {
        let warning = try #require(SupportedPrefectVersions.warning(for: version))
        #expect(warning.hasPrefix("Prefect \(version) is outside the versions this exporter is tested with (3.4 to 3.9; "))
        #expect(warning.contains("CI runs \(SupportedPrefectVersions.oldest) and \(SupportedPrefectVersions.newest)"))
    }

    @Test func anUncomparableVersionIsSaidSo() {
        #expect(SupportedPrefectVersions.warning(for: "nightly")?.contains("cannot compare") == true)
    }

    @Test func durations() {
        #expect(CheckSummary.duration(42.4) == "42s")
        #expect(CheckSummary.duration(330) == "5m 30s")
        #expect(CheckSummary.duration(7800) == "2h 10m")
    }

    @Test func hints() {
        let notFound = PrefectAPIError(kind: .notFound, endpoint: "/version", status: 404, message: "404")
        #expect(CheckReport.hint(for: notFound, url: "http://h:4200") == " (try http://h:4200/api)")
        #expect(CheckReport.hint(for: notFound, url: "http://h:4200/api") == "")
        #expect(CheckReport.hint(for: notFound, url: "https://api.prefect.cloud/api/accounts/a/workspaces/w") == "")
        let html = PrefectAPIError(kind: .invalidResponse, endpoint: "/version", status: 200, message: "unexpected")
        #expect(CheckReport.hint(for: html, url: "http://h/prefect").contains("serves its API under /api, e.g. http://h/prefect/api"))
        let tls = PrefectAPIError(kind: .transport(.tlsError), endpoint: "/version", message: "tls")
        #expect(CheckReport.hint(for: tls, url: "https://h/api").contains("--prefect.ca-file"))
        let refused = PrefectAPIError(kind: .transport(.connectionError), endpoint: "/version", message: "refused")
        #expect(CheckReport.hint(for: refused, url: "http://h/api") == "")
    }

    @Test func subcommandsParseTheSameFlags() throws {
        let check = try #require(try ExporterCommand.parseAsRoot(["check", "--prefect.poll-interval", "5s"]) as? CheckCommand)
        #expect(check.options.pollInterval == "5s")
        let once = try #require(try ExporterCommand.parseAsRoot(["once", "--log.level", "debug"]) as? OnceCommand)
        #expect(once.options.logLevel == "debug")
        let root = try #require(try ExporterCommand.parseAsRoot(["--prefect.retries", "3"]) as? ExporterCommand)
        #expect(root.options.retries == 3)
    }

    @Test(arguments: [
        ["check", "--no-such-flag"], ["check", "--prefect.retries", "x"], ["check", "--prefect.api-url", "ftp://h/api"],
        ["once", "--prefect.poll-interval", "1x"], ["check", "--once"], ["check", "--config.file", "/nonexistent/x.yml"],
        ["no-such-command"],
    ])
    func badSubcommandArgumentsExitWithStatus2(arguments: [String]) async {
        #expect(await ExporterMain.main(arguments: arguments) == 2)
    }

    @Test(arguments: [["check", "--help"], ["help", "check"], ["--generate-completion-script", "bash"]])
    func helpAndCompletionsExitWith0(arguments: [String]) async {
        #expect(await ExporterMain.main(arguments: arguments) == 0)
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsKnowTheSubcommandsAndFlags(shell: String) throws {
        let script = ExporterCommand.completionScript(for: try #require(CompletionShell(rawValue: shell)))
        #expect(script.contains("check"))
        #expect(script.contains("once"))
        #expect(script.contains("prefect.poll-interval"))
        #expect(script.contains("config.file"))
    }
}
