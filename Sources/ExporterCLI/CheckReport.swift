import Exposition
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Poller
import PrefectAPI

/// What `prefect-exporter check` found for one Prefect target, read from one poll's families,
/// so that the counts are exactly what the exporter would serve.
struct CheckSummary: Equatable {
    var serverVersion: String?
    var apiVersion: String?
    var workPools = 0
    var workQueues = 0
    var deployments = 0
    /// Runs due or in flight: PENDING, RUNNING, PAUSED, CANCELLING, and SCHEDULED with a past start.
    var runsDueOrInFlight = 0
    /// SCHEDULED runs with a future start.
    var runsUpcoming = 0
    /// Things to act on now, one sentence each.
    var warnings: [String] = []

    /// Reads the Prefect-derived families of one target (``RenderedSnapshot/prefect``).
    init(families: [MetricFamily]) {
        func family(_ name: String) -> [Metric] { families.first { $0.name == name }?.metrics ?? [] }
        func number(_ metric: Metric) -> Double {
            if case .number(let value) = metric.value { return value }
            return 0
        }
        func label(_ metric: Metric, _ name: String) -> String { metric.labels.first { $0.name == name }?.value ?? "" }

        if let info = family("prefect_server_info").first {
            serverVersion = label(info, "version")
            apiVersion = label(info, "api_version")
        }
        workPools = family("prefect_work_pool_info").count
        workQueues = family("prefect_work_queue_priority").count
        deployments = family("prefect_deployment_info").count
        runsDueOrInFlight = Int(family("prefect_flow_runs").reduce(0) { $0 + number($1) })
        runsUpcoming = Int(family("prefect_flow_runs_upcoming").reduce(0) { $0 + number($1) })

        var latePerPool: [String: Double] = [:]
        for metric in family("prefect_flow_runs_late") { latePerPool[label(metric, "work_pool"), default: 0] += number(metric) }
        var maxLateness: [String: Double] = [:]
        for metric in family("prefect_flow_run_max_lateness_seconds") {
            maxLateness[label(metric, "work_pool")] = max(maxLateness[label(metric, "work_pool")] ?? 0, number(metric))
        }
        for pool in latePerPool.keys.sorted() where (latePerPool[pool] ?? 0) > 0 {
            let count = Int(latePerPool[pool] ?? 0)
            let poolName = pool.isEmpty ? "runs without a work pool" : "work pool '\(pool)'"
            warnings.append(
                "\(count) late run\(count == 1 ? "" : "s") in \(poolName); the latest is \(Self.duration(maxLateness[pool] ?? 0)) late")
        }
        for metric in family("prefect_work_pool_status") where label(metric, "status") == "NOT_READY" && number(metric) == 1 {
            warnings.append("work pool '\(label(metric, "work_pool"))' is NOT_READY: no worker has polled it recently")
        }
        var scheduled: [String: Double] = [:]
        func queueKey(_ metric: Metric) -> String { label(metric, "work_pool") + "/" + label(metric, "work_queue") }
        for metric in family("prefect_flow_runs") where label(metric, "state_type") == "SCHEDULED" {
            scheduled[queueKey(metric), default: 0] += number(metric)
        }
        for metric in family("prefect_flow_runs_upcoming") { scheduled[queueKey(metric), default: 0] += number(metric) }
        for metric in family("prefect_work_queue_status") where label(metric, "status") == "PAUSED" && number(metric) == 1 {
            let count = Int(scheduled[queueKey(metric)] ?? 0)
            if count > 0 {
                warnings.append(
                    "work queue '\(label(metric, "work_queue"))' of work pool '\(label(metric, "work_pool"))' is paused "
                        + "with \(count) scheduled run\(count == 1 ? "" : "s")")
            }
        }
    }

    /// `42s`, `5m 3s`, `2h 10m`.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m \(total % 60)s" }
        return "\(total / 3600)h \(total % 3600 / 60)m"
    }
}

/// The text of `prefect-exporter check`.
enum CheckReport {
    /// The block for one target.
    static func render(target: PrefectTarget, report: PollReport, summary: CheckSummary) -> String {
        var lines: [String] = []
        let title = target.name.map { "Prefect target '\($0)': \(target.prefect.redactedBaseURL)" }
            ?? "Prefect: \(target.prefect.redactedBaseURL)"
        lines.append(title)
        func row(_ name: String, _ value: String) { lines.append("  " + padded(name + ":", to: 14) + value) }
        let partial = !Self.passes(report) && report.outcomes.contains(where: \.success)
        if Self.passes(report) || partial {
            let version = summary.serverVersion.flatMap { $0.isEmpty ? nil : $0 } ?? "unknown (Prefect Cloud reports none)"
            row("version", "\(version) (API \(summary.apiVersion ?? "unknown"))")
            row("auth", authAccepted(target.prefect.auth))
            row("work pools", "\(summary.workPools)")
            row("work queues", "\(summary.workQueues)")
            row("deployments", "\(summary.deployments)")
            row(
                "flow runs",
                "\(summary.runsDueOrInFlight + summary.runsUpcoming) not finished (\(summary.runsDueOrInFlight) due or in flight, "
                    + "\(summary.runsUpcoming) scheduled later)")
            row("requests", requestRate(report: report, target: target))
            var warnings = summary.warnings
            if let version = SupportedPrefectVersions.warning(for: summary.serverVersion) { warnings.insert(version, at: 0) }
            if let budget = target.prefect.maxRequestsPerMinute, report.requests > budget {
                warnings.append("one poll sends \(report.requests) requests, more than the budget of \(budget) a minute: each "
                    + "poll takes over a minute; raise --prefect.max-requests-per-minute or narrow the work pools")
            }
            if let listing = report.failures.first(where: { if case .listingDueRuns = $0.error { true } else { false } }) {
                warnings.append("more due runs than one poll lists (\(listing.error.message)); the exporter reports them "
                    + "once the listing is complete, a few polls after it starts")
            }
            if warnings.isEmpty {
                row("warnings", "none")
            } else {
                row("warnings", "\(warnings.count)")
                for warning in warnings { lines.append("    - " + warning) }
            }
            if partial {
                let failures = report.failures
                row("collectors", "\(failures.count) of \(report.outcomes.count) failed")
                for failure in failures { lines.append("    - \(failure.collector): \(failure.error.message)") }
                row("result", "PARTIAL: " + Self.failure(report, target: target))
            } else {
                row("result", "OK (one poll: \(fixed(report.duration, decimals: 2))s, \(report.requests) requests)")
            }
        } else {
            if let error = report.error, error.kind == .unauthorized {
                row("auth", "REJECTED (HTTP \(error.status.map(String.init) ?? "401"))")
            }
            row("result", "FAILED: " + failure(report, target: target))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Whether a target passes the check: every collector succeeded, or the only one that did not
    /// is still listing a large pile of due runs for the first time (not a fault).
    static func passes(_ report: PollReport) -> Bool {
        report.success || (!report.skipped && !report.failures.isEmpty && report.failures.allSatisfy {
            if case .listingDueRuns = $0.error { return true }
            return false
        })
    }

    /// `310 a poll; about 620 a minute at the poll interval of 30s (no budget set)`, and what the
    /// budget does to that.
    static func requestRate(report: PollReport, target: PrefectTarget) -> String {
        let interval = target.poller.interval.seconds
        let perMinute = Double(report.requests) * 60 / interval
        var text = "\(report.requests) in one poll; about \(Int(perMinute.rounded())) a minute at the poll interval of "
            + Poller.seconds(interval)
        if let budget = target.prefect.maxRequestsPerMinute {
            if perMinute <= Double(budget) {
                text += " (within the budget of \(budget) a minute)"
            } else {
                let stretched = Double(report.requests) * 60 / Double(budget)
                text += " (over the budget of \(budget) a minute: polls will run every \(Poller.seconds(stretched)))"
            }
        } else {
            text += " (no budget set: --prefect.max-requests-per-minute)"
        }
        return text
    }

    static func authAccepted(_ auth: PrefectAuth) -> String {
        switch auth {
        case .none: return "none configured, none required"
        case .apiKey: return "accepted (API key)"
        case .basic: return "accepted (basic auth)"
        }
    }

    /// The one-line reason a target failed, with a hint where the client's message may not say enough.
    static func failure(_ report: PollReport, target: PrefectTarget) -> String {
        if report.outcomes.contains(where: \.success) {
            if passes(report) { return "" }
            // Prefect answered; some collectors did not get what they need (a permission, a slow query).
            let names = report.failures.map(\.collector).joined(separator: ", ")
            return "Prefect answered, but these collectors failed: \(names); their metrics stay absent until they succeed"
        }
        guard let error = report.error else { return "the poll did not complete" }
        return error.message + hint(for: error, url: target.prefect.baseURL)
    }

    /// `text` cut or padded with spaces to `width` characters.
    static func padded(_ text: String, to width: Int) -> String {
        let cut = String(text.prefix(width))
        return cut + String(repeating: " ", count: max(0, width - cut.count))
    }

    /// `value` with `decimals` digits after the point, rounded as printf's `%.<decimals>f` rounds.
    static func fixed(_ value: Double, decimals: Int) -> String {
        let capacity = 384  // the longest %f of a Double (1.8e308) and its decimals
        return withVaList([value]) { arguments in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer -> String in
                guard let base = buffer.baseAddress, vsnprintf(base, capacity, "%.\(decimals)f", arguments) >= 0 else {
                    return "\(value)"
                }
                return String(cString: base)
            }
        }
    }

    static func hint(for error: PrefectAPIError, url: String) -> String {
        let path = URLComponents(string: url)?.path ?? ""
        let looksLikeAPIRoot = path.hasSuffix("/api") || path.contains("/api/accounts/")
        switch error.kind {
        case .notFound, .invalidResponse, .httpStatus:
            guard !looksLikeAPIRoot else { return "" }
            let suggestion = url.hasSuffix("/") ? url + "api" : url + "/api"
            if error.kind == .notFound { return " (try \(suggestion))" }
            return " (hint: the URL path is '\(path.isEmpty ? "/" : path)'; a self-hosted Prefect serves its API under /api, e.g. \(suggestion))"
        case .transport(.tlsError):
            return " (hint: check --prefect.ca-file or ca_file, and that the URL's host name matches the server's certificate)"
        default:
            return ""
        }
    }
}
