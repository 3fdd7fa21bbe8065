"""Checks of the test harness itself against the real Prefect server: the seeding helpers do
what the exporter tests rely on. No exporter involved.

They also pin down the Prefect behaviours the exporter tests depend on, so that a Prefect
upgrade that changes one fails here, with a clear message, rather than in an exporter test.
"""

from __future__ import annotations

import datetime as dt

from harness import Scrape, parse_time, promtool_check_metrics, utcnow, wait_for


def test_server_answers(prefect):
    assert prefect.version()  # API schema version, e.g. "0.8.4"
    assert prefect.server_version().startswith("3.")


def test_pool_queue_deployment_seeding(prefect, unique_name):
    pool = unique_name("pool")
    p = prefect.create_pool(pool, concurrency_limit=4)
    assert p["type"] == "process" and p["concurrency_limit"] == 4 and p["status"] == "NOT_READY"

    q = prefect.create_queue(pool, "q-lim", priority=3, concurrency_limit=2)
    assert (q["priority"], q["concurrency_limit"], q["is_paused"]) == (3, 2, False)
    qp = prefect.create_queue(pool, "q-paused", paused=True)
    assert qp["is_paused"] is True and qp["status"] == "NOT_READY"  # created paused: not PAUSED
    qpp = prefect.create_queue(pool, "q-paused-later", pause_after_create=True)
    assert qpp["is_paused"] is True and qpp["status"] == "PAUSED"
    assert {x["name"] for x in prefect.pool_queues(pool)} == {"default", "q-lim", "q-paused", "q-paused-later"}

    dep = prefect.create_deployment(f"flow-{pool}", "dep", pool, "q-lim")
    assert dep["full_name"] == f"flow-{pool}/dep"
    assert (dep["work_pool_name"], dep["work_queue_name"], dep["status"], dep["paused"]) == (pool, "q-lim", "NOT_READY", False)
    paused = prefect.create_deployment(f"flow-{pool}", "dep-paused", pool, "q-lim", paused=True)
    assert prefect.get_deployment(paused["id"])["paused"] is True
    other = prefect.create_deployment(f"flow-{pool}", "dep-other", pool, "q-lim")
    prefect.pause_deployment(other["id"])
    assert prefect.get_deployment(other["id"])["paused"] is True
    assert len(prefect.deployments(pool)) == 3

    prefect.pause_pool(pool)
    assert prefect.get_pool(pool)["status"] == "PAUSED"


def test_worker_heartbeat_makes_pool_ready(prefect, unique_name):
    pool = unique_name("pool")
    prefect.create_pool(pool)
    before = utcnow()
    prefect.heartbeat(pool, "w1")
    assert prefect.get_pool(pool)["status"] == "READY"
    (worker,) = prefect.workers(pool)
    assert worker["status"] == "ONLINE" and worker["name"] == "w1"
    assert abs((parse_time(worker["last_heartbeat_time"]) - before).total_seconds()) < 5


def test_runs_in_every_state(prefect, unique_name):
    pool = unique_name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "dep", pool, "q")
    now = utcnow()

    future = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now + dt.timedelta(hours=1))
    assert (future["state_type"], future["state_name"]) == ("SCHEDULED", "Scheduled")
    assert parse_time(future["next_scheduled_start_time"]) > now

    # A run created with a scheduled time in the past is accepted as is (no back-dating limit).
    late = prefect.run_in_state(dep, "SCHEDULED", "Late", scheduled_time=now - dt.timedelta(minutes=10))
    assert (late["state_type"], late["state_name"]) == ("SCHEDULED", "Late")
    assert abs((parse_time(late["expected_start_time"]) - (now - dt.timedelta(minutes=10))).total_seconds()) < 1
    retry = prefect.run_in_state(dep, "SCHEDULED", "AwaitingRetry", scheduled_time=now - dt.timedelta(minutes=1))
    assert retry["state_name"] == "AwaitingRetry"

    for typ, name in [("PENDING", None), ("RUNNING", None), ("RUNNING", "Retrying"), ("PAUSED", None),
                      ("PAUSED", "Suspended"), ("CANCELLING", None), ("COMPLETED", None), ("FAILED", None),
                      ("CRASHED", None), ("CANCELLED", None)]:
        run = prefect.run_in_state(dep, typ, name)
        assert (run["state_type"], run["state_name"]) == (typ, name or typ.capitalize()), run["state"]
        assert run["work_queue_name"] == "q" and run["deployment_id"] == dep["id"]
        if typ in ("RUNNING", "CANCELLING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            assert run["start_time"] is not None and run["run_count"] == 1
        if typ in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            assert run["end_time"] is not None and run["total_run_time"] > 0

    # Moving to another queue of the pool at creation time.
    other = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=now + dt.timedelta(hours=1), work_queue_name="q2")
    assert other["work_queue_name"] == "q2"


def test_prefect_state_quirks(prefect, unique_name):
    """Prefect behaviours that matter to the exporter, measured."""
    pool = unique_name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "dep", pool, "q")
    past = utcnow() - dt.timedelta(minutes=10)

    # SCHEDULED -> CANCELLED (forced): Prefect sets start_time = end_time = now although the run
    # never ran; run_count stays 0 and total_run_time 0.
    run = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=past)
    prefect.set_state(run["id"], "CANCELLED")
    run = prefect.get_run(run["id"])
    assert run["start_time"] is not None and run["start_time"] == run["end_time"]
    assert run["run_count"] == 0 and run["total_run_time"] == 0

    # SCHEDULED -> CANCELLING, even forced, is rejected and the run is CANCELLED instead
    # ("Scheduled flow run has no infrastructure to terminate."), with HTTP 201.
    run = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=past)
    result = prefect.set_state(run["id"], "CANCELLING", expect_status="REJECT")
    assert result["state"]["type"] == "CANCELLED"

    # SCHEDULED -> PAUSED leaves start_time null.
    run = prefect.run_in_state(dep, "PAUSED")
    assert run["start_time"] is None

    # set_state SCHEDULED without a scheduled_time schedules the run for now.
    run = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=past)
    prefect.set_state(run["id"], "SCHEDULED", "AwaitingRetry")
    run = prefect.get_run(run["id"])
    assert abs((parse_time(run["next_scheduled_start_time"]) - utcnow()).total_seconds()) < 10
    assert abs((parse_time(run["expected_start_time"]) - past).total_seconds()) < 1  # kept


def test_late_runs_service_renames_overdue_runs(prefect, unique_name):
    pool = unique_name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "dep", pool, "q")
    run = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=utcnow() - dt.timedelta(minutes=5))
    retry = prefect.run_in_state(dep, "SCHEDULED", "AwaitingRetry", scheduled_time=utcnow() - dt.timedelta(minutes=5))
    wait_for(lambda: prefect.get_run(run["id"])["state_name"] == "Late", timeout=20, message="the run renamed Late")
    assert prefect.get_run(retry["id"])["state_name"] == "AwaitingRetry"  # never renamed


def test_adhoc_run(prefect, unique_name):
    run = prefect.create_adhoc_run(unique_name("adhoc-flow"), "RUNNING")
    assert run["deployment_id"] is None and run["work_queue_name"] is None and run["work_queue_id"] is None
    assert run["state_type"] == "RUNNING" and run["start_time"] is not None


def test_scrape_parser_and_promtool():
    text = (
        "# HELP a_total A counter.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
        "# HELP h A histogram.\n# TYPE h histogram\n"
        "h_bucket{p=\"\",le=\"15\"} 0\nh_bucket{p=\"\",le=\"600\"} 1\nh_bucket{p=\"\",le=\"+Inf\"} 2\n"
        "h_sum{p=\"\"} 700\nh_count{p=\"\"} 2\n"
    )
    s = Scrape.parse(text)
    assert s.value("a_total", x="1") == 3 and s.types["a_total"] == "counter"
    assert s.bucket("h", 600, p="") == 1 and s.bucket("h", "+Inf", p="") == 2
    assert s.buckets("h", p="") == {15.0: 0, 600.0: 1, float("inf"): 2}
    assert s.value("h_count", p="") == 2 and not s.duplicates
    code, out = promtool_check_metrics(text)
    assert code == 0 and out == ""
    code, out = promtool_check_metrics("# TYPE bad counter\nbad 1\n")
    assert out  # lint complaint: counter without _total


def test_poll_as_worker_marks_queues_and_deployments(prefect, unique_name):
    """The worker polling call writes: queues become READY with last_polled, and so do their
    deployments (in a background task, after the response)."""
    pool = unique_name("pool")
    prefect.create_pool(pool)
    prefect.create_queue(pool, "polled")
    prefect.create_queue(pool, "other")
    dep = prefect.create_deployment(f"flow-{pool}", "d", pool, "polled")
    other = prefect.create_deployment(f"flow-{pool}", "o", pool, "other")
    due = prefect.run_in_state(dep, "SCHEDULED", scheduled_time=utcnow() - dt.timedelta(minutes=1))
    runs = prefect.poll_as_worker(pool, ["polled"])
    assert [r["flow_run"]["id"] for r in runs] == [due["id"]]
    queues = {q["name"]: q for q in prefect.pool_queues(pool)}
    assert queues["polled"]["status"] == "READY" and queues["polled"]["last_polled"]
    assert queues["other"]["status"] == "NOT_READY" and queues["other"]["last_polled"] is None
    assert prefect.get_deployment(dep["id"])["status"] == "READY"
    assert prefect.get_deployment(other["id"])["status"] == "NOT_READY"
    assert prefect.get_run(due["id"])["state_type"] == "SCHEDULED"  # handed out, not changed
