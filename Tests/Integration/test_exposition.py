"""The /metrics page as Prometheus sees it: promtool's linter, content type, gzip, and every
family of the README's contract with its documented type and labels."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import re

import pytest

from harness import REPO_ROOT, Scrape, promtool_check_metrics, unique, utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def readme_contract() -> dict[str, tuple[str, set[str]]]:
    """{family: (type, label names)} from the README's Metrics tables."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    out = {}
    for m in re.finditer(r"^\|\s*`([a-z_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", section, re.M):
        name, typ, labels = m.groups()
        out[name] = (typ, set(re.findall(r"`(\w+)`", labels)))
    assert len(out) >= 30, f"README contract parse found only {len(out)} families"
    return out


def _sample_names(family: str, typ: str) -> list[str]:
    if typ == "histogram":
        return [f"{family}_bucket", f"{family}_sum", f"{family}_count"]
    return [family]


@pytest.fixture(scope="module")
def busy_exporter(prefect):
    """An exporter over a pool with something in every family: a worker, limits, a polled
    queue, late, running and finished runs, and names that need escaping."""
    pool = unique('pool "esc" \\ ü')
    prefect.create_pool(pool, concurrency_limit=3)
    prefect.create_queue(pool, "q", concurrency_limit=2)
    prefect.heartbeat(pool, "w1")
    dep = prefect.create_deployment(f'flow "x" \\ ü-{pool[-8:]}', 'dep "y" \\', pool, "q")
    now = utcnow()
    prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now - dt.timedelta(minutes=5))
    prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now + dt.timedelta(hours=1))
    to_finish = [prefect.run_in_state(dep, "RUNNING") for _ in range(2)]
    prefect.poll_as_worker(pool, ["q"])
    # An interval schedule and a global concurrency limit with a slot taken, so that their
    # families exist whatever ran before on this server (under pytest-xdist this module may be
    # the first on its worker's server). The shared server's scheduler is off: no runs follow.
    prefect.post(f"/deployments/{dep['id']}/schedules", [{"schedule": {"interval": 3600}, "active": True}])
    limit = prefect.post("/v2/concurrency_limits/", {"name": f"cl-{pool[-8:]}", "limit": 4, "active": True})
    prefect.post("/v2/concurrency_limits/increment", {"names": [limit["name"]], "slots": 1, "mode": "concurrency"})
    return {"pool": pool, "dep": dep, "to_finish": to_finish}


@pytest.fixture(scope="module")
def exporter_with_everything(busy_exporter, prefect, request):
    # start_exporter is function-scoped; build a module-scoped one by hand.
    from pathlib import Path
    import tempfile
    from harness import Exporter, clean_env, default_exporter_args, free_port

    server = request.getfixturevalue("prefect_server")
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="exporter-exposition-", suffix=".log")[1])
    # A budget far above what it spends, so that prefect_exporter_request_budget_per_minute is served too.
    exp = Exporter(default_exporter_args(server.api_url, port, ["--prefect.max-requests-per-minute", "1000000"]),
                   clean_env(), port, log)
    try:
        exp.wait_ready()
        exp.wait_up()
        exp.wait_fresh_poll()
        runs = busy_exporter["to_finish"]
        prefect.set_state(runs[0]["id"], "COMPLETED")
        prefect.set_state(runs[1]["id"], "FAILED")
        new = prefect.run_in_state(busy_exporter["dep"], "SCHEDULED", scheduled_time=utcnow() - dt.timedelta(seconds=3))
        prefect.set_state(new["id"], "PENDING")
        prefect.set_state(new["id"], "RUNNING")
        exp.wait_scrape(lambda s: s.sum("prefect_flow_runs_finished_total", work_pool=busy_exporter["pool"]) == 2
                        and s.sum("prefect_flow_run_start_delay_seconds_count", work_pool=busy_exporter["pool"]) >= 1,
                        timeout=20, message="finished and started runs counted")
        yield exp
    except BaseException:
        print(exp.log_tail())
        raise
    finally:
        exp.stop()


def test_promtool_lint_clean(exporter_with_everything):
    s = exporter_with_everything.scrape()
    code, out = promtool_check_metrics(s.text)
    assert code == 0 and out == "", out
    assert not s.duplicates


def test_content_type_and_gzip(exporter_with_everything):
    exp = exporter_with_everything
    conn = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "identity"})
        r = conn.getresponse()
        plain = r.read()
        assert r.status == 200
        assert r.getheader("Content-Type") == CONTENT_TYPE
        assert r.getheader("Content-Encoding") in (None, "identity")

        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        compressed = r.read()
        assert r.status == 200
        assert r.getheader("Content-Type") == CONTENT_TYPE
        assert r.getheader("Content-Encoding") == "gzip"
    finally:
        conn.close()
    unzipped = gzip.decompress(compressed)
    assert len(compressed) < len(unzipped)
    a, b = Scrape.parse(plain.decode()), Scrape.parse(unzipped.decode())
    # The two requests may straddle a poll: compare the series, not the values.
    assert set(a.samples) - {k for k in a.samples if k[0].startswith(("process_", "prefect_exporter_"))} == \
        set(b.samples) - {k for k in b.samples if k[0].startswith(("process_", "prefect_exporter_"))}


def test_every_contract_family_with_its_type_and_labels(exporter_with_everything):
    s = exporter_with_everything.scrape()
    contract = readme_contract()
    problems = []
    for family, (typ, labels) in contract.items():
        if family == "process_":
            continue
        # Documented as absent until the cardinality cap drops a series (ExpositionMergerTests and test_multi_target cover it).
        if family == "prefect_exporter_series_dropped_total":
            continue
        for sample in _sample_names(family, typ):
            series = s.series(sample)
            if not series:
                problems.append(f"{sample}: missing")
                continue
            if s.types.get(sample) != typ:
                problems.append(f"{sample}: type {s.types.get(sample)}, README says {typ}")
            want = labels | ({"le"} if sample.endswith("_bucket") else set())
            bad = {tuple(sorted(dict(l))) for l in series if set(dict(l)) != want}
            if bad:
                problems.append(f"{sample}: label sets {sorted(bad)}, README says {sorted(want)}")
    assert not problems, "\n".join(problems)
    # Nothing prefect_* beyond the contract.
    known = {n for f, (t, _) in contract.items() for n in _sample_names(f, t)}
    extra = sorted(n for n in s.names() if n.startswith("prefect_") and n not in known)
    assert not extra, extra
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds"):
        assert s.series(name), f"{name} missing"
    assert list(s.series("prefect_exporter_build_info").values()) == [1]


def test_escaped_names_round_trip(exporter_with_everything, busy_exporter):
    s = exporter_with_everything.scrape()
    pool, dep = busy_exporter["pool"], busy_exporter["dep"]
    assert s.value("prefect_work_pool_info", work_pool=pool, type="process") == 1
    assert s.value("prefect_work_pool_workers", work_pool=pool, status="ONLINE") == 1  # path-encoded pool name
    assert s.value("prefect_flow_runs_late", work_pool=pool, work_queue="q", deployment=dep["full_name"]) == 1
    assert s.value("prefect_flow_runs_finished_total", work_pool=pool, work_queue="q",
                   deployment=dep["full_name"], state_type="FAILED") == 1


def test_server_info(exporter_with_everything, prefect):
    s = exporter_with_everything.scrape()
    assert s.value("prefect_server_info", version=prefect.server_version(), api_version=prefect.version()) == 1


def test_landing_and_health_pages(exporter_with_everything):
    exp = exporter_with_everything
    assert exp.get("/-/healthy").status_code == 200
    assert exp.get("/-/ready").status_code == 200
    r = exp.get("/")
    assert r.status_code == 200 and "/metrics" in r.text
    assert exp.get("/no-such-page").status_code == 404
