"""Counters since the exporter started: prefect_flow_runs_finished_total and the start-delay and
duration histograms. Runs are moved while the exporter polls every second."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from harness import parse_time, utcnow

# Also run against the older Prefect line (scripts/test: -m core).
pytestmark = pytest.mark.core

FINISHED = "prefect_flow_runs_finished_total"
DURATION = "prefect_flow_run_duration_seconds"
DELAY = "prefect_flow_run_start_delay_seconds"


def _finished(s, pool: str) -> dict[tuple, float]:
    """Non-zero finished_total series of a pool (zero-filled series are left out)."""
    out = {}
    for l, v in s.series(FINISHED, work_pool=pool).items():
        d = dict(l)
        if v:
            out[(d["work_queue"], d["deployment"], d["state_type"])] = v
    return out


def _hist(s, name: str, pool: str, suffix: str) -> dict[tuple, float]:
    out = {}
    for l, v in s.series(f"{name}_{suffix}", work_pool=pool).items():
        d = dict(l)
        out[(d["work_queue"], d.get("state_type"))] = v
    return out


def _delta(after: dict, before: dict) -> dict:
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)}


def test_finished_counters_and_histograms(prefect, unique_name, start_exporter):
    pool = unique_name("pool")
    prefect.create_pool(pool)
    d1 = prefect.create_deployment(f"flow-{pool}", "d1", pool, "q")
    d2 = prefect.create_deployment(f"flow-{pool}", "d2", pool, "q")

    # Finished before the exporter started: never counted.
    prefect.run_in_state(d1, "COMPLETED")
    prefect.run_in_state(d2, "FAILED")
    # In flight when the exporter starts; finished while it runs.
    to_finish = [
        (prefect.run_in_state(d1, "RUNNING"), "COMPLETED"),
        (prefect.run_in_state(d1, "RUNNING"), "COMPLETED"),
        (prefect.run_in_state(d1, "RUNNING"), "FAILED"),
        (prefect.run_in_state(d1, "RUNNING"), "CRASHED"),
        (prefect.run_in_state(d1, "CANCELLING"), "CANCELLED"),
        (prefect.run_in_state(d2, "RUNNING"), "COMPLETED"),
    ]
    time.sleep(2)  # let the pre-start finishes age past any look-back of the first poll

    exp = start_exporter()
    base = exp.wait_fresh_poll()
    assert sum(_finished(base, pool).values()) == 0, _finished(base, pool)
    base_dur_count = _hist(base, DURATION, pool, "count")
    base_dur_sum = _hist(base, DURATION, pool, "sum")

    for run, state in to_finish:
        prefect.set_state(run["id"], state)
    finished_runs = [prefect.get_run(r["id"]) for r, _ in to_finish]

    a, b = d1["full_name"], d2["full_name"]
    expected = {("q", a, "COMPLETED"): 2, ("q", a, "FAILED"): 1, ("q", a, "CRASHED"): 1,
                ("q", a, "CANCELLED"): 1, ("q", b, "COMPLETED"): 1}
    s = exp.wait_scrape(lambda s: _finished(s, pool) == expected, timeout=20,
                        message=f"finished_total == {expected}", show=lambda s: _finished(s, pool))
    for l in s.series(FINISHED, work_pool=pool):
        assert set(dict(l)) == {"work_pool", "work_queue", "deployment", "state_type"}
    assert s.types[FINISHED] == "counter"

    # Durations: every moved run had started, so each is observed once with its total_run_time.
    expected_dur_count = {("q", "COMPLETED"): 3, ("q", "FAILED"): 1, ("q", "CRASHED"): 1, ("q", "CANCELLED"): 1}
    s = exp.wait_scrape(lambda s: _delta(_hist(s, DURATION, pool, "count"), base_dur_count) == expected_dur_count,
                        timeout=10, message=f"duration counts grew by {expected_dur_count}",
                        show=lambda s: _delta(_hist(s, DURATION, pool, "count"), base_dur_count))
    dur_sum = _delta(_hist(s, DURATION, pool, "sum"), base_dur_sum)
    for state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
        want = sum(r["total_run_time"] for r in finished_runs if r["state_type"] == state)
        assert abs(dur_sum.get(("q", state), 0) - want) < 0.01, (state, dur_sum, want)

    # No double counting over several more polls.
    settled = exp.wait_polls(4)
    assert _finished(settled, pool) == expected
    assert _delta(_hist(settled, DURATION, pool, "count"), base_dur_count) == expected_dur_count

    # Start delays: two new runs, due 20 s ago, start now.
    before = exp.scrape()
    delay_count0 = before.value(f"{DELAY}_count", default=0, work_pool=pool, work_queue="q")
    delay_sum0 = before.value(f"{DELAY}_sum", default=0, work_pool=pool, work_queue="q")
    started = []
    for dep in (d1, d2):
        run = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=utcnow() - dt.timedelta(seconds=20))
        prefect.set_state(run["id"], "PENDING")
        prefect.set_state(run["id"], "RUNNING")
        started.append(prefect.get_run(run["id"]))
    want_delay = sum((parse_time(r["start_time"]) - parse_time(r["expected_start_time"])).total_seconds()
                     for r in started)
    assert want_delay > 40
    s = exp.wait_scrape(
        lambda s: s.value(f"{DELAY}_count", default=0, work_pool=pool, work_queue="q") == delay_count0 + 2,
        timeout=20, message="start delay count +2")
    got_delay = s.value(f"{DELAY}_sum", work_pool=pool, work_queue="q") - delay_sum0
    assert abs(got_delay - want_delay) < 0.01
    assert s.value(f"{DELAY}_bucket", le="+Inf", work_pool=pool, work_queue="q") == delay_count0 + 2
    settled = exp.wait_polls(4)
    assert settled.value(f"{DELAY}_count", work_pool=pool, work_queue="q") == delay_count0 + 2
    # Starting runs finishes nothing.
    assert _finished(settled, pool) == expected


def test_counters_survive_quiet_polls(prefect, unique_name, start_exporter):
    """A run finished between two polls is counted even when later polls see nothing new."""
    pool = unique_name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "d", pool, "q")
    run = prefect.run_in_state(dep, "RUNNING")
    exp = start_exporter()
    exp.wait_fresh_poll()
    prefect.set_state(run["id"], "COMPLETED")
    key = dict(work_pool=pool, work_queue="q", deployment=dep["full_name"], state_type="COMPLETED")
    exp.wait_scrape(lambda s: s.value(FINISHED, default=0, **key) == 1, timeout=20, message="one finished run")
    s = exp.wait_polls(5)
    assert s.value(FINISHED, **key) == 1
