"""Flow runs now: prefect_flow_runs, _upcoming, _late, lateness and running histograms.

Each test seeds its own pool in the shared Prefect server, then starts an exporter (poll
interval 1s, late-after 15s) and compares its first scrapes with what was seeded.
"""

from __future__ import annotations

import datetime as dt

import pytest

from harness import parse_time, unique, utcnow

# Also run against the older Prefect line (scripts/test: -m core).
pytestmark = pytest.mark.core

# The state names the README promises a zero-filled series for, with their state type.
KNOWN_STATE_NAMES = {
    "Scheduled": "SCHEDULED", "Late": "SCHEDULED", "AwaitingRetry": "SCHEDULED",
    "AwaitingConcurrencySlot": "SCHEDULED", "Pending": "PENDING", "Running": "RUNNING",
    "Retrying": "RUNNING", "Paused": "PAUSED", "Suspended": "PAUSED", "Cancelling": "CANCELLING",
}
LATE_AFTER = 15.0
DEFAULT_LATENESS_BUCKETS = [15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400]


@pytest.fixture(scope="module")
def seeded(prefect):
    """A pool with two queues and two deployments, and runs in every non-terminal state.

    Expected values are returned with the names so that tests compare exactly.
    """
    pool = unique("pool-states")
    flow = f"flow-{pool}"
    prefect.create_pool(pool)
    prefect.create_queue(pool, "qa")
    prefect.create_queue(pool, "qb")
    dep_a = prefect.create_deployment(flow, "dep-a", pool, "qa")
    dep_b = prefect.create_deployment(flow, "dep-b", pool, "qb")
    now = utcnow()
    H = dt.timedelta(hours=1)

    # dep-a / qa
    prefect.run_in_state(dep_a, "SCHEDULED", scheduled_time=now + H)
    prefect.run_in_state(dep_a, "SCHEDULED", scheduled_time=now + 2 * H)
    prefect.run_in_state(dep_a, "SCHEDULED", "Late", scheduled_time=now - dt.timedelta(minutes=10))
    prefect.run_in_state(dep_a, "SCHEDULED", "AwaitingRetry", scheduled_time=now - dt.timedelta(minutes=1))
    prefect.run_in_state(dep_a, "PENDING")
    prefect.run_in_state(dep_a, "PENDING")
    prefect.run_in_state(dep_a, "RUNNING")
    prefect.run_in_state(dep_a, "COMPLETED")  # finished: in no "now" family
    # dep-b / qb
    prefect.run_in_state(dep_b, "SCHEDULED", scheduled_time=now + H)
    prefect.run_in_state(dep_b, "RUNNING")
    prefect.run_in_state(dep_b, "RUNNING", "Retrying")
    prefect.run_in_state(dep_b, "PAUSED")
    prefect.run_in_state(dep_b, "PAUSED", "Suspended")
    prefect.run_in_state(dep_b, "CANCELLING")
    prefect.run_in_state(dep_b, "FAILED")

    # An ad-hoc run (no deployment, pool or queue).
    prefect.create_adhoc_run(f"adhoc-{pool}", "RUNNING")

    a, b = dep_a["full_name"], dep_b["full_name"]
    return {
        "pool": pool, "flow": flow, "dep_a": a, "dep_b": b,
        "flow_runs": {
            (pool, "qa", a, "SCHEDULED", "Late"): 1,
            (pool, "qa", a, "SCHEDULED", "AwaitingRetry"): 1,
            (pool, "qa", a, "PENDING", "Pending"): 2,
            (pool, "qa", a, "RUNNING", "Running"): 1,
            (pool, "qb", b, "RUNNING", "Running"): 1,
            (pool, "qb", b, "RUNNING", "Retrying"): 1,
            (pool, "qb", b, "PAUSED", "Paused"): 1,
            (pool, "qb", b, "PAUSED", "Suspended"): 1,
            (pool, "qb", b, "CANCELLING", "Cancelling"): 1,
        },
        "upcoming": {(pool, "qa"): 2, (pool, "qb"): 1},
        "late": {(pool, "qa", a): 2, (pool, "qb", b): 0},
    }


def _flow_runs_key(labels: frozenset) -> tuple:
    d = dict(labels)
    return (d["work_pool"], d["work_queue"], d.get("deployment"), d["state_type"], d["state_name"])


def test_flow_runs_by_state_exact(seeded, start_exporter):
    exp = start_exporter()
    s = exp.scrape()
    pool = seeded["pool"]

    got = {_flow_runs_key(l): v for l, v in s.series("prefect_flow_runs", work_pool=pool).items()}
    for l in s.series("prefect_flow_runs", work_pool=pool):
        assert set(dict(l)) == {"work_pool", "work_queue", "deployment", "state_type", "state_name"}, dict(l)
    nonzero = {k: v for k, v in got.items() if v != 0}
    assert nonzero == seeded["flow_runs"]

    # Zero-filled: every known state name exists for both (pool, queue, deployment) triples.
    for queue, dep in (("qa", seeded["dep_a"]), ("qb", seeded["dep_b"])):
        for name, typ in KNOWN_STATE_NAMES.items():
            key = (pool, queue, dep, typ, name)
            assert key in got, f"missing zero-filled series {key}"
            assert got[key] == seeded["flow_runs"].get(key, 0), key
    # Future scheduled runs are not in prefect_flow_runs, finished runs neither.
    assert got[(pool, "qa", seeded["dep_a"], "SCHEDULED", "Scheduled")] == 0
    assert not any(k[3] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") and v for k, v in got.items())


def test_upcoming_and_late_exact(seeded, start_exporter):
    exp = start_exporter()
    s = exp.scrape()
    pool = seeded["pool"]
    for (p, q), n in seeded["upcoming"].items():
        assert s.value("prefect_flow_runs_upcoming", work_pool=p, work_queue=q) == n, q
    assert s.value("prefect_flow_runs_upcoming", default=0, work_pool=pool, work_queue="default") == 0
    for (p, q, d), n in seeded["late"].items():
        assert s.value("prefect_flow_runs_late", default=0, work_pool=p, work_queue=q, deployment=d) == n, q
    assert s.sum("prefect_flow_runs_late", work_pool=pool) == 2


def test_adhoc_runs_have_empty_pool_queue_deployment(seeded, prefect, start_exporter):
    exp = start_exporter()
    s = exp.wait_fresh_poll()
    # Other tests share the server and leave ad-hoc runs behind: ask Prefect for the exact number.
    expected = prefect.count_runs({"flow_runs": {
        "deployment_id": {"is_null_": True},
        "state": {"type": {"any_": ["RUNNING"]}, "name": {"any_": ["Running"]}},
    }})
    assert expected >= 1
    assert s.value("prefect_flow_runs", work_pool="", work_queue="", deployment="",
                   state_type="RUNNING", state_name="Running") == expected


def test_no_deployment_label(seeded, start_exporter):
    exp = start_exporter(["--no-metrics.deployment-label"])
    s = exp.scrape()
    pool = seeded["pool"]
    for l in s.series("prefect_flow_runs", work_pool=pool):
        assert "deployment" not in dict(l)
    assert s.value("prefect_flow_runs", work_pool=pool, work_queue="qa", state_type="PENDING", state_name="Pending") == 2
    assert s.value("prefect_flow_runs", work_pool=pool, work_queue="qb", state_type="RUNNING", state_name="Running") == 1
    assert s.value("prefect_flow_runs_late", work_pool=pool, work_queue="qa") == 2
    for name in ("prefect_flow_runs_late", "prefect_flow_runs_finished_total"):
        assert all("deployment" not in dict(l) for l in s.series(name))


def test_lateness_and_running(prefect, start_exporter):
    pool = unique("pool-lateness")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "dep", pool, "q")
    prefect.create_deployment(f"flow-{pool}", "dep-idle", pool, "q-idle")
    now = utcnow()
    very_late = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now - dt.timedelta(seconds=600))
    just_due = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now - dt.timedelta(seconds=5))
    running = [prefect.run_in_state(dep, "RUNNING"), prefect.run_in_state(dep, "RUNNING")]
    late_t = parse_time(very_late["next_scheduled_start_time"]).timestamp()
    due_t = parse_time(just_due["next_scheduled_start_time"]).timestamp()
    first_start = min(parse_time(r["start_time"]).timestamp() for r in running)

    exp = start_exporter()
    s = exp.scrape()
    # The poll behind this scrape ran between the exporter's start and the scrape.
    lo, hi = exp.started_at - late_t, s.time - late_t
    assert s.time - due_t < LATE_AFTER, "seeding and start-up took too long for this test's timing"

    q = {"work_pool": pool, "work_queue": "q"}
    assert s.value("prefect_flow_runs_late", deployment=dep["full_name"], **q) == 1  # 5 s overdue is not late
    # Both overdue runs are due, whatever name the server's late-runs service gave them.
    assert s.sum("prefect_flow_runs", state_type="SCHEDULED", deployment=dep["full_name"], **q) == 2

    assert s.value("prefect_flow_run_lateness_seconds_count", **q) == 1
    assert lo - 1 <= s.value("prefect_flow_run_lateness_seconds_sum", **q) <= hi + 1
    buckets = s.buckets("prefect_flow_run_lateness_seconds", **q)
    assert list(buckets) == [float(b) for b in DEFAULT_LATENESS_BUCKETS] + [float("inf")]
    for bound, count in buckets.items():
        if bound < lo - 1:
            assert count == 0, f"le={bound}"
        elif bound > hi + 1:
            assert count == 1, f"le={bound}"
    assert buckets[600.0] == 0 and buckets[1800.0] == 1  # about 601-605 s late
    max_late = s.value("prefect_flow_run_max_lateness_seconds", **q)
    assert abs(max_late - 600) <= 30 and lo - 1 <= max_late <= hi + 1

    assert s.value("prefect_flow_run_running_seconds_count", **q) == 2
    assert s.value("prefect_flow_run_running_seconds_bucket", le="+Inf", **q) == 2
    max_running = s.value("prefect_flow_run_max_running_seconds", **q)
    assert 0 <= max_running <= s.time - first_start + 1

    idle = {"work_pool": pool, "work_queue": "q-idle"}
    assert s.value("prefect_flow_run_max_lateness_seconds", **idle) == 0
    assert s.value("prefect_flow_run_max_running_seconds", **idle) == 0
    assert s.value("prefect_flow_runs_late", default=0, deployment=f"flow-{pool}/dep-idle", **idle) == 0


def test_custom_lateness_buckets(prefect, start_exporter):
    pool = unique("pool-buckets")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "dep", pool, "q")
    prefect.run_in_state(dep, "SCHEDULED", scheduled_time=utcnow() - dt.timedelta(seconds=300))
    exp = start_exporter(["--prefect.lateness-buckets", "60,1000"])
    s = exp.scrape()
    assert s.buckets("prefect_flow_run_lateness_seconds", work_pool=pool, work_queue="q") == {
        60.0: 0, 1000.0: 1, float("inf"): 1}
