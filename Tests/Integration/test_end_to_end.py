"""End to end: a real Prefect, the exporter and a real Prometheus loading our alert rules.

Prometheus (Debian's `prometheus` package) scrapes the exporter every second with
`alerts/*.rules.yml` loaded as they ship. Through Prometheus' HTTP API the test asserts that:
  - the exporter target is up;
  - every dashboard query, with its variables set to "All", returns at least one series (the
    seed includes a scheduled deployment and a concurrency limit for the schedule and
    concurrency panels);
  - `PrefectFlowRunsLate` becomes firing for a pool with late runs and no worker, while no alert
    fires for a healthy pool (a heartbeating worker, nothing late).

The shipped late-runs alert has `for: 2m`. Beside the shipped rules, Prometheus loads the same
alert rendered by alerts/generate.py with `for: 10s` (group `e2e-short-for`), and the test waits
for that one: its expression is the shipped one, and `for` itself is covered by the promtool
unit tests in alerts/tests/. The healthy pool must get no alert from either.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

import importlib.util

import yaml

from harness import free_port, utcnow, wait_for

ROOT = Path(__file__).resolve().parents[2]
JOB = "prefect-exporter"


class Prometheus:
    """A Prometheus server on 127.0.0.1 with its own TSDB directory, stopped by `stop()`."""

    def __init__(self, workdir: Path, target: str, rule_files: list[Path], extra_args: tuple[str, ...] = ()):
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is not installed (Debian package `prometheus`; scripts/setup installs it)")
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "rule_files:\n" + "".join(f"  - {path}\n" for path in rule_files) +
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n")
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        wait_for(self._ready, timeout=60, message="Prometheus did not become ready")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Prometheus exited:\n{self.log_path.read_text()[-4000:]}")
        try:
            return self.client.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict]:
        response = self.client.get("/api/v1/query", params={"query": expr})
        body = response.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def query_range(self, expr: str, seconds: int = 60) -> list[dict]:
        end = time.time()
        response = self.client.get("/api/v1/query_range", params={
            "query": expr, "start": end - seconds, "end": end, "step": "5"})
        body = response.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def alerts(self) -> list[dict]:
        return self.client.get("/api/v1/alerts").json()["data"]["alerts"]

    def rule_health(self) -> list[tuple[str, str, str]]:
        groups = self.client.get("/api/v1/rules").json()["data"]["groups"]
        return [(rule["name"], rule.get("health", ""), rule.get("lastError", ""))
                for group in groups for rule in group["rules"]]

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self._log.close()


def dashboard_queries() -> list[dict]:
    python = str(ROOT / ".venv" / "bin" / "python")
    env = dict(os.environ, PYTHON=python if Path(python).exists() else "python3")
    output = subprocess.run(
        ["bash", str(ROOT / "scripts" / "check-monitoring"), "--list-queries", "--rate-interval", "1m"],
        check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def create_scheduled_deployment(prefect, flow: str, name: str, pool: str, queue: str,
                                paused: bool = False) -> dict:
    """A deployment with one active interval schedule (hourly). The test server runs no
    scheduler service, so it gets no SCHEDULED run unless the test creates one."""
    flow_obj = prefect.create_flow(flow)
    body = {"name": name, "flow_id": flow_obj["id"], "work_pool_name": pool, "work_queue_name": queue,
            "paused": paused, "schedules": [{"schedule": {"interval": 3600}, "active": True}]}
    dep = prefect.post("/deployments/", body)
    dep["full_name"] = f"{flow_obj['name']}/{dep['name']}"
    return dep


def short_for_rules(path: Path, alert: str, for_key: str, for_value: str) -> Path:
    """Writes one alert of alerts/generate.py, with a shorter `for`, as a rule file of its own."""
    spec = importlib.util.spec_from_file_location("alerts_generate_e2e", ROOT / "alerts" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    data = generate.build(dict(generate.THRESHOLDS, **{for_key: for_value}))
    rules = [rule for group in data["groups"] for rule in group["rules"] if rule.get("alert") == alert]
    assert len(rules) == 1, f"{alert} not found once in alerts/generate.py"
    path.write_text(yaml.safe_dump({"groups": [{"name": "e2e-short-for", "rules": rules}]}, sort_keys=False))
    return path


@pytest.fixture
def prometheus_factory(tmp_path: Path):
    started: list[Prometheus] = []

    def make(target: str) -> Prometheus:
        rules = sorted((ROOT / "alerts").glob("*.rules.yml"))
        assert rules, "no alerts/*.rules.yml"
        rules.append(short_for_rules(tmp_path / "e2e-short-for.yml", "PrefectFlowRunsLate", "late_for", "10s"))
        server = Prometheus(tmp_path, target, rules)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def test_prometheus_scrapes_queries_and_fires_late_alert(prefect, start_exporter, unique_name, prometheus_factory):
    now = utcnow()
    late_pool = unique_name("e2e-late")
    healthy_pool = unique_name("e2e-healthy")
    prefect.create_pool(late_pool)
    prefect.create_pool(healthy_pool)
    late_deployment = prefect.create_deployment(unique_name("e2e-flow"), "late", late_pool, "default")
    healthy_deployment = prefect.create_deployment(unique_name("e2e-flow"), "healthy", healthy_pool, "default")
    # Three runs 20 minutes overdue in a pool no worker serves: the usual cause of late runs.
    for _ in range(3):
        prefect.create_run(late_deployment, scheduled_time=now - dt.timedelta(minutes=20))
    # An hourly schedule with an upcoming run, for the dashboards' schedule panels.
    scheduled = create_scheduled_deployment(prefect, unique_name("e2e-flow"), "scheduled", late_pool, "default")
    prefect.create_run(scheduled, scheduled_time=now + dt.timedelta(hours=1))
    # A global concurrency limit, for the dashboards' concurrency panels.
    prefect.post("/v2/concurrency_limits/", {"name": unique_name("e2e-limit"), "limit": 3})
    # The healthy pool: a heartbeating worker, one run in flight and one finished, nothing late.
    prefect.heartbeat(healthy_pool, "worker-1")
    running = prefect.run_in_state(healthy_deployment, "RUNNING")
    finished = prefect.run_in_state(healthy_deployment, "RUNNING")

    stop_heartbeats = threading.Event()

    def heartbeats() -> None:
        while not stop_heartbeats.wait(10):
            prefect.heartbeat(healthy_pool, "worker-1")

    beater = threading.Thread(target=heartbeats, daemon=True)
    beater.start()
    try:
        exporter = start_exporter()
        prefect.set_state(finished["id"], "COMPLETED")
        prometheus = prometheus_factory(f"127.0.0.1:{exporter.port}")

        # Every shipped rule loads and evaluates without error.
        wait_for(lambda: len(prometheus.rule_health()) > 0, timeout=30, message="rules not loaded")
        for name, health, error in prometheus.rule_health():
            assert health in ("ok", "unknown"), f"rule {name}: {health} {error}"

        # The target is up.
        wait_for(lambda: any(r["value"][1] == "1" for r in prometheus.query(f'up{{job="{JOB}"}}')),
                 timeout=30, message="the exporter target never became up")
        assert prometheus.query("prefect_up")[0]["value"][1] == "1"

        # Let rates have at least a few samples (1s scrapes), then run every dashboard query.
        time.sleep(20)
        empty: list[str] = []
        queries = dashboard_queries()
        assert len(queries) > 50, "the dashboards list fewer queries than expected"
        for query in queries:
            result = prometheus.query(query["expr"]) if query["instant"] else prometheus.query_range(query["expr"])
            if not result and not query["may_be_empty"]:
                empty.append(f'{query["dashboard"]} / {query["panel"]}: {query["expr"]}')
        assert not empty, "dashboard queries with no series:\n" + "\n".join(empty)

        # The late-runs alert fires for the seeded pool (the copy with for: 10s), and none fires for
        # the healthy one.
        def late_alert_firing() -> bool:
            return any(alert["labels"].get("alertname") == "PrefectFlowRunsLate"
                       and alert["labels"].get("work_pool") == late_pool and alert["state"] == "firing"
                       for alert in prometheus.alerts())

        wait_for(late_alert_firing, timeout=240, interval=2,
                 message=f"PrefectFlowRunsLate never fired for {late_pool}: {prometheus.alerts()}")
        alert = next(a for a in prometheus.alerts()
                     if a["labels"].get("alertname") == "PrefectFlowRunsLate" and a["labels"].get("work_pool") == late_pool)
        assert alert["labels"]["severity"] == "warning"
        assert alert["labels"]["work_queue"] == "default"
        assert late_pool in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith("#prefectflowrunslate")

        healthy_alerts = [a for a in prometheus.alerts() if a["labels"].get("work_pool") == healthy_pool]
        assert healthy_alerts == [], f"alerts for the healthy pool: {healthy_alerts}"
        # The running run is still running (the healthy pool really had work in flight).
        assert prefect.get_run(running["id"])["state_type"] == "RUNNING"
    finally:
        stop_heartbeats.set()
        beater.join(timeout=15)
