#!/usr/bin/env python3
"""Generate alerts/prefect-exporter.rules.yml, the Prometheus alert rules of prefect-exporter.

Every threshold lives in THRESHOLDS below. To change one, edit it here and run

    python3 alerts/generate.py            # rewrites alerts/prefect-exporter.rules.yml

then run scripts/check-monitoring (the unit tests in alerts/tests/ assert the default values,
so a changed threshold may need its test adjusted). `--stdout` prints the rules instead of
writing them; `--check` exits 1 if the committed file differs from what this script writes.

Needs PyYAML.
"""

import argparse
import difflib
import pathlib
import sys

import yaml

# ---------------------------------------------------------------------------------------------
# Everything a user is expected to tune. Durations are Prometheus durations ("5m", "1h").
# ---------------------------------------------------------------------------------------------
THRESHOLDS = {
    # Which scrape jobs are prefect-exporter targets (regex on the `job` label of `up`).
    "exporter_job_regex": ".*prefect.*",
    # PrefectExporterDown: the target has failed scrapes for this long.
    "exporter_down_for": "5m",
    # PrefectDown: prefect_up has been 0 (every collector of the polls failing) for this long.
    "prefect_down_for": "5m",
    # PrefectExporterDataStale: the last successful poll is older than this many seconds while
    # polls do not report failure. Keep it above --prefect.poll-interval plus a poll's duration,
    # and at or below --prefect.max-staleness (after that the Prefect-derived metrics vanish and
    # every other Prefect alert goes silent).
    "data_stale_seconds": 180,
    "data_stale_for": "2m",
    # PrefectExporterCollectorFailing: one collector has not succeeded for this many seconds
    # (since its last success, or since the exporter started if it never succeeded) while the
    # exporter still reaches Prefect. Its families vanish --prefect.max-staleness after its last
    # success, so the alerts on them go quiet from then on.
    "collector_failing_seconds": 600,
    "collector_failing_for": "2m",
    # PrefectFlowRunsLate: the latest run of a work queue is more than this many seconds late.
    "late_seconds": 600,
    "late_for": "2m",
    # PrefectFlowRunsLateGrowing: the number of late runs of a queue grew by at least
    # `late_growth_min_increase` over `late_growth_window` and the oldest late run keeps
    # getting later.
    "late_growth_window": "30m",
    "late_growth_min_increase": 5,
    "late_growth_for": "10m",
    "late_growth_keep_firing_for": "10m",
    # PrefectWorkPoolNotReady: a pool is NOT_READY while runs are due in it.
    "pool_not_ready_for": "5m",
    # PrefectWorkPoolNoRecentHeartbeat: no worker heartbeat for this many seconds while work
    # is scheduled for the pool (Prefect's own default heartbeat interval is 30 s).
    "heartbeat_stale_seconds": 300,
    "heartbeat_stale_for": "5m",
    # PrefectWorkPoolPaused / PrefectWorkQueuePaused: paused while runs are scheduled for it.
    "paused_for": "15m",
    # PrefectFlowRunFailureRatioHigh: share of FAILED + CRASHED among the runs that finished in
    # `failure_ratio_window`, per work pool and deployment, once at least
    # `failure_ratio_min_finished` runs finished in that window.
    "failure_ratio": 0.25,
    "failure_ratio_window": "1h",
    "failure_ratio_min_finished": 5,
    "failure_ratio_for": "10m",
    "failure_ratio_keep_firing_for": "15m",
    # PrefectFlowRunRunningTooLong: a run of a queue has been RUNNING for more seconds than this.
    "running_too_long_seconds": 4 * 3600,
    "running_too_long_for": "5m",
    # PrefectDeploymentNoSuccessfulRuns: in `no_success_window`, at least
    # `no_success_min_failed` runs of a deployment failed or crashed and none completed.
    "no_success_window": "6h",
    "no_success_min_failed": 3,
    "no_success_for": "15m",
    # PrefectDeploymentScheduleStalled: a deployment with an active schedule, not paused, has had
    # no SCHEDULED run (prefect_deployment_has_scheduled_run == 0) for this long. Prefect's
    # scheduler service normally keeps several future runs of every such deployment; it runs
    # every minute, so keep this well above a minute.
    "schedule_stalled_for": "15m",
    # PrefectConcurrencyLimitSaturated: an enforced concurrency limit has all its slots taken
    # while flow runs wait in AwaitingConcurrencySlot, for this long.
    # PrefectWorkPoolConcurrencySaturated: a work pool's or queue's active slots are at or above
    # its concurrency limit while runs are due in it, for this long.
    "concurrency_saturated_for": "10m",
    # PrefectDeploymentNoRecentSuccess: the last COMPLETED run of a deployment with an active
    # schedule (not paused) finished more than `no_recent_success_interval_factor` times its
    # schedule interval ago (an interval schedule; at least `no_recent_success_min_seconds`),
    # or, for cron and rrule schedules, more than `no_recent_success_seconds` ago while its
    # last finished run failed or crashed.
    "no_recent_success_interval_factor": 3,
    "no_recent_success_min_seconds": 3600,
    "no_recent_success_seconds": 26 * 3600,
    "no_recent_success_for": "15m",
}

# Where the runbook lives; each alert links to the section named like the alert.
RUNBOOK_BASE_URL = "https://github.com/prefect-exporter/prefect-exporter/blob/main/docs/runbook.md"

# Severity of each alert: "critical" pages, "warning" goes to a ticket or chat.
SEVERITY = {
    "PrefectExporterDown": "critical",
    "PrefectDown": "critical",
    "PrefectExporterDataStale": "critical",
    "PrefectExporterCollectorFailing": "warning",
    "PrefectFlowRunsLate": "warning",
    "PrefectFlowRunsLateGrowing": "warning",
    "PrefectWorkPoolNotReady": "critical",
    "PrefectWorkPoolNoRecentHeartbeat": "warning",
    "PrefectWorkPoolPaused": "warning",
    "PrefectWorkQueuePaused": "warning",
    "PrefectFlowRunFailureRatioHigh": "warning",
    "PrefectFlowRunRunningTooLong": "warning",
    "PrefectDeploymentNoSuccessfulRuns": "warning",
    "PrefectDeploymentScheduleStalled": "warning",
    "PrefectDeploymentNoRecentSuccess": "warning",
    "PrefectConcurrencyLimitSaturated": "warning",
    "PrefectWorkPoolConcurrencySaturated": "warning",
}

OUTPUT = pathlib.Path(__file__).resolve().parent / "prefect-exporter.rules.yml"

HEADER = """\
# Prometheus alert rules for prefect-exporter.
# GENERATED by alerts/generate.py: change THRESHOLDS there and rerun it; do not edit this file.
# Load it with `rule_files:` in prometheus.yml, or use everything below as the `spec` of a
# Prometheus Operator PrometheusRule. Runbook: docs/runbook.md.
"""


def human_seconds(seconds):
    """600 -> '10m', 14400 -> '4h', 90 -> '1m30s' (for static annotation text)."""
    seconds = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += "%d%s" % (seconds // size, unit)
            seconds %= size
    return out or "0s"


def cap(text):
    return text[:1].upper() + text[1:]


def alert(name, expr, for_, summary, description, keep_firing_for=None):
    rule = {"alert": name, "expr": expr.strip() + "\n" if "\n" in expr.strip() else expr.strip(),
            "for": for_}
    if keep_firing_for:
        rule["keep_firing_for"] = keep_firing_for
    rule["labels"] = {"severity": SEVERITY[name]}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": "%s#%s" % (RUNBOOK_BASE_URL, name.lower()),
    }
    return rule


# Labels an alert is grouped by. job/instance come from the scrape; `prefect` names the Prefect
# target when one exporter polls several (--config.file targets) and is absent otherwise.
EXPORTER = "job, instance, prefect"
POOL = "job, instance, prefect, work_pool"
QUEUE = "job, instance, prefect, work_pool, work_queue"
DEPLOYMENT = "job, instance, prefect, work_pool, deployment"
# Labels of the deployment-level families (no work_pool: see with_pool in build()).
DEP = "job, instance, prefect, deployment"

# Go-template snippets used in descriptions.
WHERE_QUEUE = 'work pool "{{ $labels.work_pool }}", queue "{{ $labels.work_queue }}"'
WHERE_POOL = 'work pool "{{ $labels.work_pool }}"'
WHERE_DEPLOYMENT = 'deployment "{{ $labels.deployment }}" (work pool "{{ $labels.work_pool }}")'
ON = "{{ $labels.instance }}"
COUNT = '{{ $value | printf "%.0f" }}'


def no_successful_runs(t):
    """The condition of PrefectDeploymentNoSuccessfulRuns (also what PrefectDeploymentNoRecentSuccess
    stands down for)."""
    return (
        "sum by ({g}) (\n"
        "  (prefect_flow_runs_finished_total{{state_type=~\"FAILED|CRASHED\"}}\n"
        "    unless prefect_flow_runs_finished_total{{state_type=~\"FAILED|CRASHED\"}} offset {w})\n"
        "  or increase(prefect_flow_runs_finished_total{{state_type=~\"FAILED|CRASHED\"}}[{w}])\n"
        ") >= {n}\n"
        "unless on ({g})\n"
        "sum by ({g}) (\n"
        "  (prefect_flow_runs_finished_total{{state_type=\"COMPLETED\"}}\n"
        "    unless prefect_flow_runs_finished_total{{state_type=\"COMPLETED\"}} offset {w})\n"
        "  or increase(prefect_flow_runs_finished_total{{state_type=\"COMPLETED\"}}[{w}])\n"
        ") > 0".format(g=DEPLOYMENT, w=t["no_success_window"], n=t["no_success_min_failed"]))


def indent(text, spaces=2):
    return "\n".join(" " * spaces + line for line in text.splitlines())


def build(t):
    job_sel = 'job=~"%s"' % t["exporter_job_regex"]
    exporter = [
        alert(
            "PrefectExporterDown",
            "up{%s} == 0" % job_sel,
            t["exporter_down_for"],
            "Prometheus cannot scrape the Prefect exporter.",
            "Scrapes of the prefect-exporter target %s (job {{ $labels.job }}) have failed for "
            "more than %s (up = {{ $value }}). Every other Prefect alert for it is blind."
            % (ON, t["exporter_down_for"]),
        ),
        alert(
            "PrefectDown",
            "prefect_up == 0",
            t["prefect_down_for"],
            "The Prefect exporter cannot poll the Prefect API.",
            "The exporter %s has not reached the Prefect API for more than %s: every collector "
            "failed, or Prefect asked it to wait (prefect_up = {{ $value }}). Its Prefect data is "
            "getting old and disappears after --prefect.max-staleness." % (ON, t["prefect_down_for"]),
        ),
        alert(
            "PrefectExporterDataStale",
            "(time() - prefect_exporter_last_poll_success_timestamp_seconds) > %d\n"
            "unless on (job, instance, prefect)\n"
            "prefect_up == 0" % t["data_stale_seconds"],
            t["data_stale_for"],
            "The Prefect exporter's data is stale although no poll failed.",
            "The last successful poll of the exporter %s finished {{ $value | humanizeDuration }} "
            "ago (threshold %s) and no poll has failed since: the poll loop is stuck or very slow."
            % (ON, human_seconds(t["data_stale_seconds"])),
        ),
        alert(
            "PrefectExporterCollectorFailing",
            # Seconds since the collector's last success; a collector that never succeeded has no
            # timestamp, so it counts from the exporter's start (process_start_time_seconds) while
            # its last poll failed. Quiet while prefect_up is 0 (PrefectDown covers that) and while
            # no poll completes (PrefectExporterDataStale covers that).
            "(\n"
            "  time() - prefect_exporter_collector_last_success_timestamp_seconds\n"
            "  or\n"
            "  (\n"
            "    prefect_exporter_collector_success == 0\n"
            "    unless on ({g}, collector)\n"
            "    prefect_exporter_collector_last_success_timestamp_seconds\n"
            "  )\n"
            "  + on (job, instance) group_left ()\n"
            "  (time() - process_start_time_seconds)\n"
            ") > {s}\n"
            "unless on ({g})\n"
            "prefect_up == 0\n"
            "unless on ({g})\n"
            "(time() - prefect_exporter_last_poll_success_timestamp_seconds) > {d}".format(
                g=EXPORTER, s=t["collector_failing_seconds"], d=t["data_stale_seconds"]),
            t["collector_failing_for"],
            "A collector of the Prefect exporter keeps failing.",
            'The collector "{{ $labels.collector }}" of the exporter %s has not succeeded for '
            "{{ $value | humanizeDuration }} (threshold %s) while the exporter still reaches Prefect. The "
            "metric families it feeds keep their last values until --prefect.max-staleness, then "
            "vanish, and the alerts on them go quiet; its log line `collector {{ $labels.collector }} "
            "failed: ...` names the cause." % (ON, human_seconds(t["collector_failing_seconds"])),
        ),
    ]

    flow_runs = [
        alert(
            "PrefectFlowRunsLate",
            "prefect_flow_run_max_lateness_seconds > %d" % t["late_seconds"],
            t["late_for"],
            "Flow runs are late.",
            "The latest run in %s has been waiting {{ $value | humanizeDuration }} past its "
            "scheduled start (threshold %s)." % (WHERE_QUEUE, human_seconds(t["late_seconds"])),
        ),
        alert(
            "PrefectFlowRunsLateGrowing",
            "(\n"
            "  sum by ({g}) (prefect_flow_runs_late)\n"
            "  - sum by ({g}) (prefect_flow_runs_late offset {w})\n"
            ") >= {n}\n"
            "and on ({g})\n"
            "deriv(prefect_flow_run_max_lateness_seconds[{w}]) > 0".format(
                g=QUEUE, w=t["late_growth_window"], n=t["late_growth_min_increase"]),
            t["late_growth_for"],
            "The backlog of late flow runs is growing.",
            "%s has %s more late runs than %s ago and its latest run keeps getting later: the "
            "queue is falling further behind." % (cap(WHERE_QUEUE), COUNT, t["late_growth_window"]),
            keep_firing_for=t["late_growth_keep_firing_for"],
        ),
        alert(
            "PrefectFlowRunFailureRatioHigh",
            "(\n"
            "  sum by ({g}) (increase(prefect_flow_runs_finished_total{{state_type=~\"FAILED|CRASHED\"}}[{w}]))\n"
            "  /\n"
            "  sum by ({g}) (increase(prefect_flow_runs_finished_total[{w}]))\n"
            ") > {r}\n"
            "and on ({g})\n"
            "sum by ({g}) (increase(prefect_flow_runs_finished_total[{w}])) >= {n}".format(
                g=DEPLOYMENT, w=t["failure_ratio_window"], r=t["failure_ratio"],
                n=t["failure_ratio_min_finished"]),
            t["failure_ratio_for"],
            "Many flow runs fail or crash.",
            "{{ $value | humanizePercentage }} of the runs of %s that finished in the last %s "
            "failed or crashed (threshold %s, counted once at least %d runs finished)."
            % (WHERE_DEPLOYMENT, t["failure_ratio_window"],
               "{:.0%}".format(t["failure_ratio"]), t["failure_ratio_min_finished"]),
            keep_firing_for=t["failure_ratio_keep_firing_for"],
        ),
        alert(
            "PrefectFlowRunRunningTooLong",
            "prefect_flow_run_max_running_seconds > %d" % t["running_too_long_seconds"],
            t["running_too_long_for"],
            "A flow run has been running far longer than usual.",
            "A run in %s has been RUNNING for {{ $value | humanizeDuration }} (threshold %s)."
            % (WHERE_QUEUE, human_seconds(t["running_too_long_seconds"])),
        ),
        alert(
            "PrefectDeploymentNoSuccessfulRuns",
            # `c unless c offset W` keeps counters that appeared within the window, whose whole
            # value lies in it (increase() cannot see a series' first increment); increase()
            # covers the others, across exporter restarts.
            no_successful_runs(t),
            t["no_success_for"],
            "A deployment keeps failing and has no successful run.",
            "%s: %s runs failed or crashed in the last %s (or since the exporter started) and "
            "none completed." % (cap(WHERE_DEPLOYMENT), COUNT, t["no_success_window"]),
        ),
    ]

    waiting = 'prefect_flow_runs{state_type="SCHEDULED"} or prefect_flow_runs_upcoming'
    pools = [
        alert(
            "PrefectWorkPoolNotReady",
            "sum by ({g}) (prefect_flow_runs{{state_type=\"SCHEDULED\", work_pool!=\"\"}}) > 0\n"
            "and on ({g})\n"
            "prefect_work_pool_status{{status=\"NOT_READY\"}} == 1".format(g=POOL),
            t["pool_not_ready_for"],
            "A work pool with runs waiting is NOT_READY.",
            "%s is NOT_READY (no online worker) while %s runs are due in it." % (cap(WHERE_POOL), COUNT),
        ),
        alert(
            "PrefectWorkPoolNoRecentHeartbeat",
            "(time() - prefect_work_pool_last_worker_heartbeat_timestamp_seconds) > {s}\n"
            "and on ({g})\n"
            "sum by ({g}) ({w}) > 0\n"
            "unless on ({g})\n"
            "prefect_work_pool_status{{status=\"PAUSED\"}} == 1".format(
                g=POOL, w=waiting, s=t["heartbeat_stale_seconds"]),
            t["heartbeat_stale_for"],
            "No worker of a work pool has sent a heartbeat recently.",
            "The last worker heartbeat in %s was {{ $value | humanizeDuration }} ago (threshold "
            "%s) and runs are scheduled for the pool." % (WHERE_POOL, human_seconds(t["heartbeat_stale_seconds"])),
        ),
        alert(
            "PrefectWorkPoolPaused",
            "sum by ({g}) ({w}) > 0\n"
            "and on ({g})\n"
            "prefect_work_pool_status{{status=\"PAUSED\"}} == 1".format(g=POOL, w=waiting),
            t["paused_for"],
            "A work pool is paused while runs are scheduled for it.",
            "%s has been PAUSED for more than %s while %s runs are scheduled for it; none of them "
            "will start until it is resumed." % (cap(WHERE_POOL), t["paused_for"], COUNT),
        ),
        alert(
            "PrefectWorkQueuePaused",
            "sum by ({g}) ({w}) > 0\n"
            "and on ({g})\n"
            "prefect_work_queue_status{{status=\"PAUSED\"}} == 1\n"
            "unless on ({p})\n"
            "prefect_work_pool_status{{status=\"PAUSED\"}} == 1".format(g=QUEUE, p=POOL, w=waiting),
            t["paused_for"],
            "A work queue is paused while runs are scheduled for it.",
            "%s has been PAUSED for more than %s while %s runs are scheduled for it; none of them "
            "will start until it is resumed." % (cap(WHERE_QUEUE), t["paused_for"], COUNT),
        ),
    ]

    # Deployment-level families carry only `deployment`; the alerts take `work_pool` from
    # prefect_deployment_info (fed by the same collector as the schedule families).
    with_pool = ("* on ({d}) group_left (work_pool)\n"
                 "prefect_deployment_info").format(d=DEP)
    completed = 'prefect_deployment_last_run_finished_timestamp_seconds{state_type="COMPLETED"}'
    since_success = "time() - max by ({d}) ({c})".format(d=DEP, c=completed)
    schedules = [
        alert(
            "PrefectDeploymentScheduleStalled",
            # has_scheduled_run is absent until the exporter has looked the deployment up: no
            # alert from missing data.
            "(\n"
            "  prefect_deployment_active_schedules > 0\n"
            "  and on ({d})\n"
            "  prefect_deployment_has_scheduled_run == 0\n"
            "  unless on ({d})\n"
            "  prefect_deployment_paused == 1\n"
            ")\n"
            "{p}".format(d=DEP, p=with_pool),
            t["schedule_stalled_for"],
            "A scheduled deployment has no scheduled run.",
            "%s has %s active schedule(s) and is not paused, but has had no SCHEDULED run for "
            "more than %s: Prefect's scheduler is not creating its runs."
            % (cap(WHERE_DEPLOYMENT), COUNT, t["schedule_stalled_for"]),
        ),
        alert(
            "PrefectDeploymentNoRecentSuccess",
            # Interval schedules: the last success is older than factor x the shortest interval
            # (at least min_seconds). Cron and rrule schedules (no interval series): older than
            # no_recent_success_seconds, and the last finished run failed or crashed after it.
            # Quiet for deployments without a COMPLETED run (absent: never completed, or not yet
            # looked up), while the schedule is stalled (PrefectDeploymentScheduleStalled) and
            # while PrefectDeploymentNoSuccessfulRuns' condition holds.
            "(\n"
            "  (\n"
            "    {s}\n"
            "    > on ({d})\n"
            "    clamp_min({f} * prefect_deployment_schedule_interval_seconds, {m})\n"
            "    or\n"
            "    ({s}) > {x}\n"
            "    unless on ({d})\n"
            "    prefect_deployment_schedule_interval_seconds\n"
            "    and on ({d})\n"
            "    max by ({d}) (prefect_deployment_last_run_finished_timestamp_seconds{{state_type=~\"FAILED|CRASHED\"}})\n"
            "    > on ({d})\n"
            "    max by ({d}) ({c})\n"
            "  )\n"
            "  and on ({d})\n"
            "  prefect_deployment_active_schedules > 0\n"
            "  unless on ({d})\n"
            "  prefect_deployment_paused == 1\n"
            "  unless on ({d})\n"
            "  prefect_deployment_has_scheduled_run == 0\n"
            "  unless on ({d})\n"
            "  (\n"
            "{n}\n"
            "  )\n"
            ")\n"
            "{p}".format(d=DEP, s=since_success, c=completed, f=t["no_recent_success_interval_factor"],
                         m=t["no_recent_success_min_seconds"], x=t["no_recent_success_seconds"],
                         n=indent(no_successful_runs(t), 4), p=with_pool),
            t["no_recent_success_for"],
            "A scheduled deployment has not succeeded for longer than its schedule suggests.",
            "The last successful run of %s finished {{ $value | humanizeDuration }} ago: more than "
            "%s times its schedule interval (at least %s), or, for a cron or rrule schedule, more "
            "than %s with its last finished run failed or crashed."
            % (WHERE_DEPLOYMENT, t["no_recent_success_interval_factor"],
               human_seconds(t["no_recent_success_min_seconds"]), human_seconds(t["no_recent_success_seconds"])),
        ),
    ]

    awaiting = 'prefect_flow_runs{state_name="AwaitingConcurrencySlot"}'
    pool_full = ("prefect_work_pool_active_slots\n"
                 ">= on ({g})\n"
                 "prefect_work_pool_concurrency_limit").format(g=POOL)
    concurrency = [
        alert(
            "PrefectConcurrencyLimitSaturated",
            # Prefect puts flow runs in AwaitingConcurrencySlot for deployment limits: a
            # deployment limit is matched to the waiting runs of its deployment (its `name` is the
            # runs' `deployment`). Global and tag limits are not tied to runs: they count when
            # any run of the same exporter and Prefect target waits for a slot.
            "(\n"
            "  prefect_concurrency_limit_active_slots\n"
            "  >= on ({l})\n"
            "  prefect_concurrency_limit\n"
            ")\n"
            "and on ({l})\n"
            "prefect_concurrency_limit_active == 1\n"
            "and on ({l})\n"
            "(\n"
            "  label_replace(\n"
            "    label_replace(\n"
            "      sum by ({e}, deployment) ({a}) > 0,\n"
            "      \"name\", \"$1\", \"deployment\", \"(.+)\"\n"
            "    ),\n"
            "    \"kind\", \"deployment\", \"\", \"\"\n"
            "  )\n"
            "  or\n"
            "  prefect_concurrency_limit{{kind!=\"deployment\"}}\n"
            "  and on ({e})\n"
            "  sum by ({e}) ({a}) > 0\n"
            ")".format(l=EXPORTER + ", kind, name", e=EXPORTER, a=awaiting),
            t["concurrency_saturated_for"],
            "A concurrency limit is saturated while flow runs wait for a slot.",
            'The %s concurrency limit "{{ $labels.name }}" on %s has %s slots taken, all it allows, '
            "while flow runs wait in AwaitingConcurrencySlot "
            '{{ if eq $labels.kind "deployment" }}(runs of this deployment).'
            "{{ else }}(on the same Prefect: global and tag limits are not tied to flow runs, so the "
            "waiting runs may be held by another limit).{{ end }}"
            % ("{{ $labels.kind }}", ON, COUNT),
        ),
        alert(
            "PrefectWorkPoolConcurrencySaturated",
            # Prefect does not hand out runs of a pool or queue at its limit: they stay
            # SCHEDULED (and turn Late). A queue is not reported while its pool is saturated.
            "(\n"
            "{pf}\n"
            ")\n"
            "and on ({g})\n"
            "sum by ({g}) (prefect_flow_runs{{state_type=\"SCHEDULED\"}}) > 0\n"
            "or\n"
            "(\n"
            "  prefect_work_queue_active_slots\n"
            "  >= on ({q})\n"
            "  prefect_work_queue_concurrency_limit\n"
            ")\n"
            "and on ({q})\n"
            "sum by ({q}) (prefect_flow_runs{{state_type=\"SCHEDULED\"}}) > 0\n"
            "unless on ({g})\n"
            "(\n"
            "{pf}\n"
            ")".format(g=POOL, q=QUEUE, pf=indent(pool_full)),
            t["concurrency_saturated_for"],
            "A work pool or queue is at its concurrency limit while runs are due.",
            '{{ if $labels.work_queue }}Work queue "{{ $labels.work_queue }}" of work pool '
            '"{{ $labels.work_pool }}"{{ else }}Work pool "{{ $labels.work_pool }}"{{ end }} has %s '
            "concurrency slots taken (PENDING and RUNNING runs), at or above its concurrency limit, "
            "for more than %s while runs are due in it: they stay Scheduled, and turn Late, until a "
            "slot frees up." % (COUNT, t["concurrency_saturated_for"]),
        ),
    ]

    return {
        "groups": [
            {"name": "prefect-exporter", "rules": exporter},
            {"name": "prefect-flow-runs", "rules": flow_runs},
            {"name": "prefect-work-pools", "rules": pools},
            {"name": "prefect-schedules", "rules": schedules},
            {"name": "prefect-concurrency", "rules": concurrency},
        ]
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(thresholds=None):
    data = build(dict(THRESHOLDS, **(thresholds or {})))
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, default_flow_style=False,
                     allow_unicode=True, indent=2)
    return HEADER + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stdout", action="store_true", help="print the rules instead of writing them")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if %s differs from the generated rules" % OUTPUT.name)
    args = ap.parse_args()
    text = render()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current == text:
            return 0
        sys.stderr.write("%s is not what alerts/generate.py writes; run `python3 alerts/generate.py`:\n"
                         % OUTPUT.relative_to(OUTPUT.parent.parent))
        sys.stderr.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                   "committed", "generated"))
        return 1
    OUTPUT.write_text(text)
    print("wrote %s" % OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
