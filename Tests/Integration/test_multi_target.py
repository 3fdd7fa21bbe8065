"""Several Prefect targets in one exporter (config file `targets:`): two real Prefect servers and
one that is down. Every Prefect-derived and per-target health series carries prefect="<name>";
build info and process metrics appear once; a failing target does not affect the others."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from harness import Scrape, free_port, run_exporter_cli, start_prefect_server, utcnow, wait_for

# The exporter's per-target health families; each series gets the prefect label.
PER_TARGET_HEALTH = ("prefect_up", "prefect_exporter_last_poll_success_timestamp_seconds",
                     "prefect_exporter_poll_duration_seconds", "prefect_exporter_polls_total",
                     "prefect_exporter_api_requests_total", "prefect_exporter_collector_success",
                     "prefect_exporter_collector_duration_seconds")
ONCE_PER_EXPORTER = ("prefect_exporter_build_info",)


@pytest.fixture(scope="module")
def second_server(tmp_path_factory):
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-second"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seeded(prefect, second_server):
    """A pool with a late run on each server, with names that tell the servers apart."""
    import uuid
    token = uuid.uuid4().hex[:8]
    names = {}
    for label, api in (("prod", prefect), ("staging", second_server.client())):
        pool = f"{label}-pool-{token}"
        api.create_pool(pool)
        dep = api.create_deployment(f"{label}-flow-{token}", "dep", pool=pool, queue="default")
        api.create_run(dep, utcnow() - dt.timedelta(minutes=2))
        names[label] = pool
    return names


def config(tmp_path, prod_url: str, staging_url: str, down_url: str, extra: str = "") -> str:
    path = tmp_path / "targets.yml"
    path.write_text(textwrap.dedent(f"""\
        prefect:
          poll_interval: 1s
          max_staleness: 4s
          timeout: 2s
          connect_timeout: 1s
        targets:
          - name: prod
            api_url: {prod_url}
          - name: staging
            api_url: {staging_url}
          - name: down
            api_url: {down_url}
        """) + extra)
    return str(path)


def targets_of(s: Scrape, name: str) -> set[str]:
    return {dict(l).get("prefect", "<none>") for l in s.series(name)}


def test_every_target_is_polled_and_labelled(prefect_server, second_server, seeded, start_exporter, tmp_path):
    path = config(tmp_path, prefect_server.api_url, second_server.api_url, f"http://127.0.0.1:{free_port()}/api")
    exp = start_exporter(["--config.file", path], defaults=False, wait="ready")
    s = exp.wait_scrape(
        lambda s: s.value("prefect_up", default=0, prefect="prod") == 1 and s.value("prefect_up", default=0, prefect="staging") == 1
        and s.value("prefect_exporter_polls_total", default=0, prefect="down", result="failure") >= 1,
        30, "prod and staging up, down failing")
    assert s.value("prefect_up", prefect="down") == 0
    assert not s.duplicates

    # Each server's pool is reported under its own target, and only there.
    pools = {(dict(l)["prefect"], dict(l)["work_pool"]) for l in s.series("prefect_work_pool_info")}
    assert ("prod", seeded["prod"]) in pools and ("staging", seeded["staging"]) in pools
    assert ("staging", seeded["prod"]) not in pools and ("prod", seeded["staging"]) not in pools
    assert s.value("prefect_flow_runs_late", prefect="staging", work_pool=seeded["staging"], work_queue="default",
                   deployment=f"staging-flow-{seeded['staging'].split('-')[-1]}/dep") == 1

    # Every Prefect-derived and per-target health series has the label; the rest appear once, unlabelled.
    for (name, labels) in s.samples:
        labels = dict(labels)
        if name.startswith("process_") or name in ONCE_PER_EXPORTER:
            assert "prefect" not in labels, (name, labels)
        else:
            assert labels.get("prefect") in ("prod", "staging", "down"), (name, labels)
    assert len(s.series("prefect_exporter_build_info")) == 1
    assert len(s.series("process_start_time_seconds")) == 1
    for name in PER_TARGET_HEALTH:
        expected = {"prod", "staging"} if name == "prefect_exporter_last_poll_success_timestamp_seconds" else {"prod", "staging", "down"}
        assert targets_of(s, name) == expected, name
    # The down target has no Prefect-derived series at all; the others have their server's.
    assert targets_of(s, "prefect_server_info") == {"prod", "staging"}
    codes = {dict(l)["code"] for l in s.series("prefect_exporter_api_requests_total", prefect="down")}
    assert codes == {"connection_error"}, codes

    # One HELP and TYPE per family, in both formats.
    text = exp.get("/metrics", headers={"Accept-Encoding": "identity"}).text
    assert text.count("# TYPE prefect_up gauge\n") == 1
    om = exp.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"}).text
    families = {f.name: f for f in parse_openmetrics(om)}
    assert {dict(x.labels)["prefect"] for x in families["prefect_up"].samples} == {"prod", "staging", "down"}


def test_a_target_that_fails_later_does_not_affect_the_others(prefect_server, seeded, start_exporter, tmp_path,
                                                              tmp_path_factory):
    third = start_prefect_server(tmp_path_factory.mktemp("prefect-third"))
    try:
        api = third.client()
        api.create_pool("third-pool")
        path = config(tmp_path, prefect_server.api_url, third.api_url, f"http://127.0.0.1:{free_port()}/api")
        exp = start_exporter(["--config.file", path], defaults=False, wait="ready")
        exp.wait_scrape(lambda s: s.value("prefect_up", default=0, prefect="staging") == 1
                        and s.has("prefect_work_pool_info", prefect="staging", work_pool="third-pool", type="process"),
                        30, "the third server's pool under staging")
        third.stop()
        s = exp.wait_scrape(lambda s: s.value("prefect_up", default=1, prefect="staging") == 0, 30, "staging down")
        assert s.value("prefect_up", prefect="prod") == 1
        # After max_staleness (4s) staging's data is gone, prod's stays and keeps being refreshed.
        s = exp.wait_scrape(lambda s: not s.series("prefect_work_pool_info", prefect="staging"), 30, "staging data stale")
        assert s.series("prefect_work_pool_info", prefect="prod")
        before = s.value("prefect_exporter_last_poll_success_timestamp_seconds", prefect="prod")
        exp.wait_scrape(lambda s: s.value("prefect_exporter_last_poll_success_timestamp_seconds", prefect="prod") > before,
                        15, "prod still polled")
        assert exp.alive()
    finally:
        third.stop()


def test_cardinality_cap_per_family_and_target(prefect_server, second_server, seeded, start_exporter, tmp_path):
    path = config(tmp_path, prefect_server.api_url, second_server.api_url, f"http://127.0.0.1:{free_port()}/api",
                  "metrics:\n  max_series_per_family: 2\n")
    exp = start_exporter(["--config.file", path], defaults=False, wait="ready")
    s = exp.wait_scrape(lambda s: s.sum("prefect_exporter_series_dropped_total", prefect="prod") > 0
                        and s.value("prefect_up", default=0, prefect="staging") == 1, 30, "series dropped")
    text = exp.get("/metrics", headers={"Accept-Encoding": "identity"}).text
    by_family: dict[tuple[str, str], set] = {}
    for family in parse_text(text):
        if family.name.startswith(("prefect_exporter_", "process_")) or family.name == "prefect_up":
            continue
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            by_family.setdefault((labels["prefect"], family.name), set()).add(frozenset(labels.items()))
    assert by_family and all(len(series) <= 2 for series in by_family.values()), \
        {k: len(v) for k, v in by_family.items() if len(v) > 2}
    dropped = {dict(l)["family"] for l in s.series("prefect_exporter_series_dropped_total", prefect="prod")}
    assert "prefect_flow_runs" in dropped, dropped
    assert "max-series-per-family" in exp.log_tail()
    # Logged once per family and target, not at each poll.
    exp.wait_polls(2, result=None)
    log = exp.log_tail(200000)
    assert log.count("family=prefect_flow_runs ") <= 2, log[-3000:]


def test_check_and_once_with_targets(prefect_server, second_server, seeded, tmp_path):
    down = f"http://127.0.0.1:{free_port()}/api"
    path = config(tmp_path, prefect_server.api_url, second_server.api_url, down)
    r = run_exporter_cli(["check", "--config.file", path], timeout=90)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 Prefect targets" in r.stdout
    assert f"Prefect target 'prod': {prefect_server.api_url}" in r.stdout
    assert f"Prefect target 'staging': {second_server.api_url}" in r.stdout
    assert r.stdout.count("result:       OK") == 2
    assert "result:       FAILED: cannot reach Prefect" in r.stdout
    assert r.stderr.strip().splitlines() == [r.stderr.strip().splitlines()[0]]
    assert "check failed for target 'down'" in r.stderr

    r = run_exporter_cli(["once", "--config.file", path], timeout=90)
    assert r.returncode == 1, r.stderr  # the down target failed
    s = Scrape.parse(r.stdout)
    assert s.value("prefect_up", prefect="prod") == 1
    assert s.value("prefect_up", prefect="staging") == 1
    assert s.value("prefect_up", prefect="down") == 0
    assert s.has("prefect_work_pool_info", prefect="staging", work_pool=seeded["staging"], type="process")
