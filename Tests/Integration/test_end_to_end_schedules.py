"""End to end for schedules, concurrency and exemplars: a real Prefect, the exporter and a real
Prometheus (the helper of test_end_to_end.py).

The shared Prefect server runs without its scheduler service (harness.DEFAULT_SERVER_ENV), so a
deployment created with an active schedule gets no SCHEDULED run unless the test creates one.
Prometheus loads the rules of alerts/generate.py with short `for`s (render(thresholds)) and
stores exemplars (--enable-feature=exemplar-storage); the exporter runs with
--metrics.exemplars. Through Prometheus' HTTP API the test asserts that:
  - PrefectDeploymentScheduleStalled fires for a scheduled, unpaused deployment without a
    SCHEDULED run, with its labels and annotations, and not for a healthy deployment (one
    SCHEDULED run, created through the API) nor for a paused one;
  - /api/v1/query_exemplars returns, on the lateness histogram, an exemplar whose flow_run_id
    is the late run the test created;
  - every dashboard query on the schedule and concurrency families returns data, including
    the ones that may legitimately be empty elsewhere (the seed gives them data).

About 20-25 s once the shared Prefect server is up (starting it takes 10-30 s more).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import time
from pathlib import Path

import pytest

from harness import utcnow, wait_for
from test_end_to_end import JOB, ROOT, Prometheus, create_scheduled_deployment, dashboard_queries

_spec = importlib.util.spec_from_file_location("alerts_generate", ROOT / "alerts" / "generate.py")
alert_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(alert_rules)

# Dashboard queries on these families are the ones this module answers for.
NEW_FAMILIES = re.compile(
    r"prefect_deployment_(active_schedules|schedule_interval_seconds|has_scheduled_run|paused"
    r"|next_scheduled_run_timestamp_seconds|last_run_finished_timestamp_seconds)"
    r"|prefect_concurrency_limit|prefect_work_(pool|queue)_active_slots|AwaitingConcurrencySlot")

SHORT = {
    "schedule_stalled_for": "5s",
    "concurrency_saturated_for": "5s",
    "no_recent_success_for": "5s",
}


def scheduled_runs(prefect, deployment: dict) -> list[dict]:
    return prefect.runs({"state": {"type": {"any_": ["SCHEDULED"]}}},
                        deployments={"id": {"any_": [deployment["id"]]}})


def test_schedule_stalled_exemplars_and_dashboards(prefect, start_exporter, unique_name, tmp_path: Path):
    started = time.monotonic()
    pool = unique_name("e2e-sched")
    prefect.create_pool(pool, concurrency_limit=4)
    prefect.create_queue(pool, "limited", concurrency_limit=2)
    flow = unique_name("e2e-sched-flow")
    stalled = create_scheduled_deployment(prefect, flow, "stalled", pool, "limited")
    healthy = create_scheduled_deployment(prefect, flow, "healthy", pool, "limited")
    paused = create_scheduled_deployment(prefect, flow, "paused", pool, "limited", paused=True)
    prefect.post("/v2/concurrency_limits/", {"name": unique_name("e2e-sched-limit"), "limit": 2})

    # The healthy deployment: a completed run (a last success) and a SCHEDULED run 10 minutes
    # overdue (it has a scheduled run, and the run is late: a lateness exemplar).
    prefect.run_in_state(healthy, "COMPLETED")
    # The paused one: a failed run (a last failure).
    prefect.run_in_state(paused, "FAILED")
    late = prefect.create_run(healthy, scheduled_time=utcnow() - dt.timedelta(minutes=10))
    # Prefect really did not schedule runs for the scheduled deployments (no scheduler service).
    assert scheduled_runs(prefect, stalled) == [] and scheduled_runs(prefect, paused) == []
    assert [r["id"] for r in scheduled_runs(prefect, healthy)] == [late["id"]]

    rules = tmp_path / "short.rules.yml"
    rules.write_text(alert_rules.render(SHORT))
    exporter = start_exporter(["--metrics.exemplars"])
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{exporter.port}", [rules],
                            extra_args=("--enable-feature=exemplar-storage",))
    try:
        wait_for(lambda: len(prometheus.rule_health()) > 0, timeout=30, message="rules not loaded")
        for name, health, error in prometheus.rule_health():
            assert health in ("ok", "unknown"), f"rule {name}: {health} {error}"
        wait_for(lambda: any(r["value"][1] == "1" for r in prometheus.query(f'up{{job="{JOB}"}}')),
                 timeout=30, message="the exporter target never became up")

        # The stalled deployment fires, with its labels and annotations.
        def stalled_alerts(deployment: dict) -> list[dict]:
            return [a for a in prometheus.alerts()
                    if a["labels"].get("alertname") == "PrefectDeploymentScheduleStalled"
                    and a["labels"].get("deployment") == deployment["full_name"]]

        wait_for(lambda: any(a["state"] == "firing" for a in stalled_alerts(stalled)), timeout=90, interval=1,
                 message=lambda: f"PrefectDeploymentScheduleStalled never fired for {stalled['full_name']}: "
                                 f"{prometheus.alerts()}")
        alert = stalled_alerts(stalled)[0]
        assert alert["labels"] == {"alertname": "PrefectDeploymentScheduleStalled", "severity": "warning",
                                   "job": JOB, "instance": f"127.0.0.1:{exporter.port}",
                                   "deployment": stalled["full_name"], "work_pool": pool}
        assert alert["annotations"]["description"] == (
            f'Deployment "{stalled["full_name"]}" (work pool "{pool}") has 1 active schedule(s) and is not '
            "paused, but has had no SCHEDULED run for more than 5s: Prefect's scheduler is not creating its runs.")
        assert alert["annotations"]["runbook_url"].endswith("#prefectdeploymentschedulestalled")
        # ... and neither the healthy nor the paused deployment does (both are known to the
        # exporter: the healthy one has a scheduled run, the paused one has none).
        assert prometheus.query(f'prefect_deployment_has_scheduled_run{{deployment="{healthy["full_name"]}"}}')[0][
            "value"][1] == "1"
        assert prometheus.query(f'prefect_deployment_has_scheduled_run{{deployment="{paused["full_name"]}"}}')[0][
            "value"][1] == "0"
        assert stalled_alerts(healthy) == [] and stalled_alerts(paused) == []

        # Exemplars: the lateness bucket of the queue carries the late run's id.
        def late_exemplars() -> list[dict]:
            response = prometheus.client.get("/api/v1/query_exemplars", params={
                "query": f'prefect_flow_run_lateness_seconds_bucket{{work_pool="{pool}"}}',
                "start": time.time() - 600, "end": time.time() + 60})
            body = response.json()
            assert body.get("status") == "success", body
            return [e for series in body["data"] for e in series["exemplars"]
                    if e["labels"].get("flow_run_id") == late["id"]]

        exemplars = wait_for(late_exemplars, timeout=30, interval=1,
                             message="no exemplar of the late run on prefect_flow_run_lateness_seconds_bucket")
        assert float(exemplars[0]["value"]) >= 600
        assert prefect.get_run(exemplars[0]["labels"]["flow_run_id"])["state_type"] == "SCHEDULED"

        # Every dashboard query on the new families returns data.
        queries = [q for q in dashboard_queries() if NEW_FAMILIES.search(q["expr"])]
        assert len(queries) >= 15, "fewer schedule and concurrency queries than expected"
        time.sleep(5)  # a few samples for the range queries

        def empty_queries() -> list[str]:
            empty = []
            for query in queries:
                result = (prometheus.query(query["expr"]) if query["instant"]
                          else prometheus.query_range(query["expr"], seconds=30))
                if not result:
                    empty.append(f'{query["dashboard"]} / {query["panel"]} {query["ref_id"]}: {query["expr"]}')
            return empty

        empty = empty_queries()
        if empty:  # a lookup of the deployment_schedules collector may still be on its way
            time.sleep(5)
            empty = empty_queries()
        assert not empty, "dashboard queries with no series:\n" + "\n".join(empty)
    finally:
        prometheus.stop()
    print(f"\nschedules end-to-end: {time.monotonic() - started:.1f}s")
