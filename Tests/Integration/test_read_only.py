"""The exporter never writes to Prefect: in particular it never calls the worker polling
endpoints, which would mark queues and deployments as polled and READY."""

from __future__ import annotations

import datetime as dt

import pytest

from harness import parse_time, utcnow

# Also run against the older Prefect line (scripts/test: -m core).
pytestmark = pytest.mark.core


def _snapshot(prefect, pool: str) -> dict:
    queues = {q["id"]: (q["work_pool_name"], q["name"], q["last_polled"]) for q in prefect.all_queues()}
    mine = {q["name"]: (q["status"], q["is_paused"], q["last_polled"]) for q in prefect.pool_queues(pool)}
    mine_via_id = {q["name"]: prefect.get_queue(q["id"])["last_polled"] for q in prefect.pool_queues(pool)}
    deps = {d["id"]: (d["status"], d["last_polled"], d["paused"]) for d in prefect.deployments(pool)}
    pool_obj = prefect.get_pool(pool)
    runs = {r["id"]: (r["state_type"], r["state_name"]) for r in prefect.runs(work_pools={"name": {"any_": [pool]}})}
    return {"queues": queues, "mine": mine, "mine_via_id": mine_via_id, "deps": deps,
            "pool": (pool_obj["status"], pool_obj["is_paused"]), "workers": prefect.workers(pool), "runs": runs}


def test_exporter_changes_nothing(prefect, unique_name, start_exporter):
    pool = unique_name("pool")
    prefect.create_pool(pool, concurrency_limit=5)
    prefect.create_queue(pool, "polled", concurrency_limit=2)
    prefect.create_queue(pool, "never-polled")
    prefect.create_queue(pool, "paused", pause_after_create=True)
    d1 = prefect.create_deployment(f"flow-{pool}", "d1", pool, "polled")
    d2 = prefect.create_deployment(f"flow-{pool}", "d2", pool, "never-polled")
    now = utcnow()
    for dep in (d1, d2):
        prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now - dt.timedelta(minutes=3))  # late
        prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now + dt.timedelta(hours=1))    # upcoming
        prefect.run_in_state(dep, "RUNNING")
    # A worker polls one queue once, as a real worker would: it becomes READY with a last_polled.
    prefect.poll_as_worker(pool, ["polled"])
    polled = {q["name"]: q for q in prefect.pool_queues(pool)}
    assert polled["polled"]["last_polled"] is not None and polled["polled"]["status"] == "READY"
    assert polled["never-polled"]["last_polled"] is None
    wait_late = utcnow()

    before = _snapshot(prefect, pool)
    exp = start_exporter()
    s = exp.wait_polls(5)
    after = _snapshot(prefect, pool)

    # Renames by the server's late-runs service (Scheduled -> Late) are the only allowed change.
    def normalise(snap):
        snap = dict(snap)
        snap["runs"] = {k: (t, "Late" if (t, n) == ("SCHEDULED", "Scheduled") else n) for k, (t, n) in snap["runs"].items()}
        return snap
    b, a = normalise(before), normalise(after)
    for key in b:
        assert a[key] == b[key], f"{key} changed while the exporter ran"
    assert (utcnow() - wait_late).total_seconds() < 55, "the test took too long: READY would expire on its own"

    # And what it exported about the polled queue is Prefect's own timestamp.
    lp = parse_time(polled["polled"]["last_polled"]).timestamp()
    assert abs(s.value("prefect_work_queue_last_polled_timestamp_seconds", work_pool=pool, work_queue="polled") - lp) < 0.01
    assert not s.series("prefect_work_queue_last_polled_timestamp_seconds", work_pool=pool, work_queue="never-polled")
