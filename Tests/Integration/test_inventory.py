"""Work pools, queues, workers and deployments."""

from __future__ import annotations

import time

import pytest

from harness import parse_time, wait_for

# Also run against the older Prefect line (scripts/test: -m core).
pytestmark = pytest.mark.core

STATUSES = ("READY", "NOT_READY", "PAUSED")


def _one_hot(s, name: str, statuses, **labels) -> str:
    """The status whose series is 1; checks that exactly the expected series exist."""
    series = s.series(name, **labels)
    got = {dict(l)["status"]: v for l, v in series.items()}
    assert set(got) == set(statuses), f"{name}{labels}: {got}"
    on = [k for k, v in got.items() if v == 1]
    assert len(on) == 1 and all(v in (0, 1) for v in got.values()), f"{name}{labels} not one-hot: {got}"
    return on[0]


def test_pools_queues_workers_deployments(prefect, unique_name, start_exporter):
    ready, idle, paused = unique_name("pool-ready"), unique_name("pool-idle"), unique_name("pool-paused")
    prefect.create_pool(ready, concurrency_limit=7)
    prefect.create_pool(idle)
    prefect.create_pool(paused, paused=True)

    q_lim = prefect.create_queue(ready, "q-lim", priority=5, concurrency_limit=3)
    q_paused = prefect.create_queue(ready, "q-paused", paused=True)              # status NOT_READY, is_paused
    q_paused2 = prefect.create_queue(ready, "q-paused-later", pause_after_create=True)  # status PAUSED
    flow = f"flow-{ready}"
    d_ok = prefect.create_deployment(flow, "dep", ready, "q-lim")
    d_paused = prefect.create_deployment(flow, "dep-paused", ready, "q-lim", paused=True)
    d_idle = prefect.create_deployment(f"flow-{idle}", "dep", idle, None)

    t0 = time.time()
    prefect.heartbeat(ready, "w1")
    prefect.heartbeat(ready, "w2")
    t1 = time.time()
    last_hb = max(parse_time(w["last_heartbeat_time"]).timestamp() for w in prefect.workers(ready))
    assert prefect.get_pool(ready)["status"] == "READY"

    exp = start_exporter()
    s = exp.wait_fresh_poll(after=t1)

    # Pools
    for pool in (ready, idle, paused):
        assert s.value("prefect_work_pool_info", work_pool=pool, type="process") == 1
    assert _one_hot(s, "prefect_work_pool_status", STATUSES, work_pool=ready) == "READY"
    assert _one_hot(s, "prefect_work_pool_status", STATUSES, work_pool=idle) == "NOT_READY"
    assert _one_hot(s, "prefect_work_pool_status", STATUSES, work_pool=paused) == "PAUSED"
    assert s.value("prefect_work_pool_concurrency_limit", work_pool=ready) == 7
    assert not s.series("prefect_work_pool_concurrency_limit", work_pool=idle)

    # Workers
    assert s.value("prefect_work_pool_workers", work_pool=ready, status="ONLINE") == 2
    assert s.value("prefect_work_pool_workers", default=0, work_pool=ready, status="OFFLINE") == 0
    assert s.value("prefect_work_pool_workers", default=0, work_pool=idle, status="ONLINE") == 0
    hb = s.value("prefect_work_pool_last_worker_heartbeat_timestamp_seconds", work_pool=ready)
    assert abs(hb - last_hb) < 0.01 and t0 - 1 <= hb <= t1 + 1
    assert not s.series("prefect_work_pool_last_worker_heartbeat_timestamp_seconds", work_pool=idle)

    # Queues
    assert _one_hot(s, "prefect_work_queue_status", STATUSES, work_pool=ready, work_queue="q-paused") == "PAUSED"
    assert _one_hot(s, "prefect_work_queue_status", STATUSES, work_pool=ready, work_queue="q-paused-later") == "PAUSED"
    assert _one_hot(s, "prefect_work_queue_status", STATUSES, work_pool=ready, work_queue="q-lim") == "NOT_READY"
    assert _one_hot(s, "prefect_work_queue_status", STATUSES, work_pool=ready, work_queue="default") == "NOT_READY"
    for q in (q_lim, q_paused, q_paused2):
        assert s.value("prefect_work_queue_priority", work_pool=ready, work_queue=q["name"]) == q["priority"]
    assert s.value("prefect_work_queue_priority", work_pool=ready, work_queue="default") == 1
    assert q_lim["priority"] == 5
    assert s.value("prefect_work_queue_concurrency_limit", work_pool=ready, work_queue="q-lim") == 3
    assert not s.series("prefect_work_queue_concurrency_limit", work_pool=ready, work_queue="default")
    assert not s.series("prefect_work_queue_last_polled_timestamp_seconds", work_pool=ready)  # never polled
    assert {dict(l)["work_queue"] for l in s.series("prefect_work_queue_priority", work_pool=ready)} == {
        "default", "q-lim", "q-paused", "q-paused-later"}

    # Deployments
    assert s.value("prefect_deployment_info", deployment=d_ok["full_name"], flow=flow,
                   work_pool=ready, work_queue="q-lim") == 1
    assert s.value("prefect_deployment_info", deployment=d_idle["full_name"], flow=f"flow-{idle}",
                   work_pool=idle, work_queue="default") == 1
    assert _one_hot(s, "prefect_deployment_status", ("READY", "NOT_READY"), deployment=d_ok["full_name"]) == "NOT_READY"
    assert s.value("prefect_deployment_paused", deployment=d_ok["full_name"]) == 0
    assert s.value("prefect_deployment_paused", deployment=d_paused["full_name"]) == 1


def test_worker_goes_offline(prefect, unique_name, start_exporter):
    """A worker that stops heartbeating is OFFLINE after 3 intervals (the server's foreman loop
    runs every second in these tests) and its pool goes NOT_READY. The interval of 3 s leaves the
    exporter 9 s to see it ONLINE first, also when parallel workers load the machine (1 s failed once)."""
    pool = unique_name("pool")
    prefect.create_pool(pool)
    prefect.heartbeat(pool, "short-lived", heartbeat_interval_seconds=3)
    exp = start_exporter()
    s = exp.scrape()
    assert s.value("prefect_work_pool_workers", work_pool=pool, status="ONLINE") == 1
    assert _one_hot(s, "prefect_work_pool_status", STATUSES, work_pool=pool) == "READY"

    wait_for(lambda: prefect.workers(pool)[0]["status"] == "OFFLINE", timeout=30, message="worker OFFLINE in Prefect")
    wait_for(lambda: prefect.get_pool(pool)["status"] == "NOT_READY", timeout=30, message="pool NOT_READY in Prefect")
    s = exp.wait_fresh_poll()
    assert s.value("prefect_work_pool_workers", work_pool=pool, status="OFFLINE") == 1
    assert s.value("prefect_work_pool_workers", default=0, work_pool=pool, status="ONLINE") == 0
    assert _one_hot(s, "prefect_work_pool_status", STATUSES, work_pool=pool) == "NOT_READY"
    assert s.series("prefect_work_pool_last_worker_heartbeat_timestamp_seconds", work_pool=pool)
