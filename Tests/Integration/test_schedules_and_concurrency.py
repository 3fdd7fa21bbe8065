"""Schedule health, concurrency limits, active slots and exemplars (issue 12), against a real Prefect.

Every value is compared with what Prefect itself answers (its REST API), not just checked for presence:

- a deployment with interval schedules, on a dedicated Prefect server whose scheduler service
  loops every second: once Prefect's scheduler has created its SCHEDULED runs,
  ``prefect_deployment_next_scheduled_run_timestamp_seconds`` is the earliest one's
  ``next_scheduled_start_time``, ``has_scheduled_run`` 1, ``active_schedules`` counts only active
  schedules and ``schedule_interval_seconds`` is the shortest active interval (an inactive
  shorter one and a cron schedule do not count); a deployment without schedules or runs has
  ``has_scheduled_run 0`` and no next-run series. Switching its schedules off makes
  ``active_schedules`` 0 at once; with its runs gone (Prefect deletes the future auto-scheduled
  ones when a schedule changes, the test deletes the rest) ``has_scheduled_run`` is 0 once the
  next run's time has passed (the exporter looks a deployment's next run up again then, not on
  every poll);
- V2 concurrency limits (global, tag ``tag:x``, deployment ``deployment:<id>``, and one of an
  unknown deployment) are served exactly as ``/v2/concurrency_limits/filter`` reports them,
  follow slots taken and released, and are labelled by kind and name;
- runs finished through the API: ``prefect_deployment_last_run_finished_timestamp_seconds`` is
  the ``end_time`` of the latest run in each terminal state, learnt while running, and known
  again after a restart (from the start-up lookups);
- work pool and work queue ``active_slots`` equal Prefect's with PENDING and RUNNING runs, and
  follow a run that finishes;
- with ``--metrics.exemplars`` the OpenMetrics page parses with prometheus_client's OpenMetrics
  parser, and the exemplars name the runs Prefect holds, with their values and timestamps;
  without the flag there is none.

The shared server runs without Prefect's scheduler service (harness.DEFAULT_SERVER_ENV), so that
nothing there creates runs behind the tests' backs. The schedule test has a server of its own
(``scheduling_server``, module-scoped, 10-20 s to start) with the scheduler switched on and
looping every second (``PREFECT_SERVER_SERVICES_SCHEDULER_*``), and making exactly three runs per
active schedule (min and max runs 3), so that the runs the exporter reads are the ones Prefect's
scheduler made.

Every exporter here is limited to this module's work pools (``--prefect.work-pool-include``), so
that the deployments other modules left on the shared server do not queue ahead of these in the
deployment_schedules start-up lookups (20 a poll).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from faultproxy import FaultProxy, fault_proxy  # noqa: F401 - fault_proxy is a fixture
from harness import Exporter, PrefectAPI, PrefectServer, Scrape, iso, parse_time, start_prefect_server, utcnow, wait_for

PREFIX = f"sc{uuid.uuid4().hex[:6]}"
ARGS = ["--prefect.poll-interval", "1s", "--prefect.work-pool-include", f"{PREFIX}-.*"]
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

NEXT = "prefect_deployment_next_scheduled_run_timestamp_seconds"
HAS = "prefect_deployment_has_scheduled_run"
ACTIVE_SCHEDULES = "prefect_deployment_active_schedules"
INTERVAL = "prefect_deployment_schedule_interval_seconds"
LAST_FINISHED = "prefect_deployment_last_run_finished_timestamp_seconds"
LIMIT_FAMILIES = ("prefect_concurrency_limit", "prefect_concurrency_limit_active_slots",
                  "prefect_concurrency_limit_active")

# Prefect's scheduler, quick: both of its loops (every deployment with an active schedule short of
# runs, and the deployments changed lately) run every second, and every active schedule gets
# exactly its next three occurrences (at least and at most three runs).
SCHEDULER_ENV = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true",
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "3",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "3",
}
RUNS_PER_SCHEDULE = 3


def ts(s: str | None) -> float | None:
    t = parse_time(s)
    return t.timestamp() if t is not None else None


@pytest.fixture(scope="module")
def scheduling_server(tmp_path_factory):
    """A Prefect server of this module's own whose scheduler service runs (SCHEDULER_ENV)."""
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-scheduler"), env=SCHEDULER_ENV)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scheduling(scheduling_server: PrefectServer):
    api = scheduling_server.client()
    yield api
    api.close()


@pytest.fixture
def name(unique_name):
    """Names within this module's pool selection."""
    return lambda prefix: f"{PREFIX}-{unique_name(prefix)}"


def series(s: Scrape, family: str, **labels: str) -> dict[frozenset, float]:
    return s.series(family, **labels)


def one(s: Scrape, family: str, **labels: str) -> float | None:
    """The value of the series with exactly these labels, or None when it is absent."""
    return s.samples.get((family, frozenset(labels.items())))


def deployment_with_schedules(api: PrefectAPI, flow: dict, dep_name: str, pool: str, schedules: list[dict]) -> dict:
    dep = api.post("/deployments/", {"name": dep_name, "flow_id": flow["id"], "work_pool_name": pool,
                                     "schedules": schedules})
    dep["full_name"] = f"{flow['name']}/{dep['name']}"
    return dep


def scheduled_runs(api: PrefectAPI, deployment_id: str) -> list[dict]:
    """The deployment's SCHEDULED runs, earliest first, as Prefect reports them."""
    return api.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]},
                                                        "state": {"type": {"any_": ["SCHEDULED"]}}},
                                          "sort": "NEXT_SCHEDULED_START_TIME_ASC", "limit": 200})


def close(a: float | None, b: float | None, tol: float = 1e-3) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol


# --------------------------------------------------------------------------------------------
# schedules


def test_next_scheduled_run_and_schedules_of_a_deployment(scheduling, scheduling_server, start_exporter, name):
    api = scheduling
    pool = name("pool")
    api.create_pool(pool)
    flow = api.create_flow(name("flow"))
    # The first occurrence is soon, so that once the runs are gone the exporter looks the
    # deployment up again within the test. The cron schedule fires half a day away, never first.
    first = utcnow() + dt.timedelta(seconds=20)
    cron_hour = (first.hour + 12) % 24
    schedules = [
        {"schedule": {"interval": 3600, "anchor_date": iso(first - dt.timedelta(hours=5))}, "active": True},
        {"schedule": {"interval": 7200, "anchor_date": iso(first)}, "active": True},
        {"schedule": {"interval": 60, "anchor_date": iso(first)}, "active": False},  # shorter, but off
        {"schedule": {"cron": f"0 {cron_hour} * * *", "timezone": "UTC"}, "active": True},  # no interval
    ]
    dep = deployment_with_schedules(api, flow, "hourly", pool, schedules)
    by_interval = {x["schedule"].get("interval"): x["id"] for x in api.get_deployment(dep["id"])["schedules"]}
    active = [x["id"] for x in api.get_deployment(dep["id"])["schedules"] if x["active"]]
    assert len(active) == 3

    # Prefect's scheduler makes the runs: three per active schedule, none for the inactive one.
    def all_made() -> list[dict] | None:
        runs = scheduled_runs(api, dep["id"])
        return runs if len(runs) >= RUNS_PER_SCHEDULE * len(active) else None
    t0 = time.monotonic()
    made = wait_for(all_made, timeout=15, message=lambda: "Prefect's scheduler to create the deployment's runs; "
                    f"server log:\n{scheduling_server.log_tail(4000)}")
    scheduler_took = time.monotonic() - t0
    assert len(made) == RUNS_PER_SCHEDULE * len(active), [(r["created_by"], r["next_scheduled_start_time"]) for r in made]
    times: dict[str, list[float]] = {}
    for r in made:
        assert r["auto_scheduled"] is True and r["state_name"] == "Scheduled", r
        assert r["created_by"]["type"] == "SCHEDULE", r["created_by"]
        times.setdefault(r["created_by"]["id"], []).append(ts(r["next_scheduled_start_time"]))
    assert set(times) == set(active)
    hours = lambda *ks: pytest.approx([first.timestamp() + 3600 * k for k in ks], abs=1e-3)  # noqa: E731
    assert sorted(times[by_interval[3600]]) == hours(0, 1, 2)
    assert sorted(times[by_interval[7200]]) == hours(0, 2, 4)
    assert by_interval[60] not in times
    want_next = ts(made[0]["next_scheduled_start_time"])  # the earliest, as Prefect sorts them
    assert want_next == min(t for ts_ in times.values() for t in ts_)
    assert close(want_next, first.timestamp())

    # Started once the runs exist: the exporter looks a deployment's next run up once, then again
    # only when that run's time has passed (or after minutes), so it must not look before them.
    exp = start_exporter(ARGS, api_url=scheduling_server.api_url)
    # Created after the exporter started: it looks new deployments up too.
    idle = api.create_deployment(flow, "idle", pool)  # no schedule, no run
    s = exp.wait_scrape(lambda x: one(x, NEXT, deployment=dep["full_name"]) is not None
                        and one(x, HAS, deployment=idle["full_name"]) is not None, timeout=20,
                        message="the next run of the scheduled deployment and the idle one's lookup")
    assert one(s, NEXT, deployment=dep["full_name"]) == pytest.approx(want_next, abs=1e-3)
    assert one(s, HAS, deployment=dep["full_name"]) == 1
    assert one(s, ACTIVE_SCHEDULES, deployment=dep["full_name"]) == 3
    assert one(s, INTERVAL, deployment=dep["full_name"]) == 3600
    # No schedule and no run: 0 and no next-run series; no interval.
    assert one(s, HAS, deployment=idle["full_name"]) == 0
    assert one(s, NEXT, deployment=idle["full_name"]) is None
    assert one(s, ACTIVE_SCHEDULES, deployment=idle["full_name"]) == 0
    assert one(s, INTERVAL, deployment=idle["full_name"]) is None
    # Nothing finished: no last-finished series for either.
    assert not series(s, LAST_FINISHED, deployment=dep["full_name"])
    assert not series(s, LAST_FINISHED, deployment=idle["full_name"])

    # Schedules switched off: no active schedule, no interval, at the next poll. The scheduler
    # leaves a deployment without an active schedule alone, so its runs stay gone from here on.
    for schedule_id in active:
        api.patch(f"/deployments/{dep['id']}/schedules/{schedule_id}", {"active": False})
    assert not [x for x in api.get_deployment(dep["id"])["schedules"] if x["active"]]
    s = exp.wait_scrape(lambda x: one(x, ACTIVE_SCHEDULES, deployment=dep["full_name"]) == 0, timeout=10,
                        message="active_schedules 0 after switching the schedules off")
    assert one(s, INTERVAL, deployment=dep["full_name"]) is None

    # Its runs gone: Prefect deletes a deployment's future auto-scheduled runs when one of its
    # schedules changes (and the scheduler made more for the schedules still on in between); the
    # test deletes whatever is left. The exporter keeps its last answer until the next run's time
    # has passed, then looks again: 0 and no next run.
    for run in scheduled_runs(api, dep["id"]):
        api.request("DELETE", f"/flow_runs/{run['id']}")
    assert scheduled_runs(api, dep["id"]) == []
    deleted_at = time.time()
    assert deleted_at < want_next, (
        f"the runs were deleted {deleted_at - want_next:.1f}s after the next run was due (the scheduler took "
        f"{scheduler_took:.1f}s): the test was too slow to see the exporter notice a passed next run")
    s = exp.wait_scrape(lambda x: one(x, HAS, deployment=dep["full_name"]) == 0,
                        timeout=want_next - time.time() + 15,
                        message="has_scheduled_run 0 once the deleted next run's time passed",
                        show=lambda x: (one(x, HAS, deployment=dep["full_name"]), one(x, NEXT, deployment=dep["full_name"]),
                                        [r["next_scheduled_start_time"] for r in scheduled_runs(api, dep["id"])]))
    assert one(s, NEXT, deployment=dep["full_name"]) is None
    assert one(s, HAS, deployment=idle["full_name"]) == 0
    assert scheduled_runs(api, dep["id"]) == [], "the scheduler made runs of a deployment with no active schedule"


# --------------------------------------------------------------------------------------------
# concurrency limits


def limit_labels(limit: dict, names: dict[str, str]) -> frozenset:
    n = limit["name"]
    if n.startswith("tag:"):
        return frozenset({("kind", "tag"), ("name", n[4:])})
    if n.startswith("deployment:"):
        dep = n[len("deployment:"):]
        return frozenset({("kind", "deployment"), ("name", names.get(dep, dep))})
    return frozenset({("kind", "global"), ("name", n)})


def expected_limits(api: PrefectAPI, mine: set[str], names: dict[str, str]) -> dict[tuple[str, frozenset], float]:
    """The concurrency-limit series for the limits named in ``mine``, from Prefect's answer."""
    out: dict[tuple[str, frozenset], float] = {}
    for c in api.post("/v2/concurrency_limits/filter", {"limit": 200}):
        if c["name"] in mine:
            lbl = limit_labels(c, names)
            out[("prefect_concurrency_limit", lbl)] = float(c["limit"])
            out[("prefect_concurrency_limit_active_slots", lbl)] = float(c["active_slots"])
            out[("prefect_concurrency_limit_active", lbl)] = 1.0 if c["active"] else 0.0
    return out


def served_limits(s: Scrape, labels: set[frozenset]) -> dict[tuple[str, frozenset], float]:
    return {(n, l): v for (n, l), v in s.samples.items() if n in LIMIT_FAMILIES and l in labels}


def test_concurrency_limits_by_kind_and_name(prefect, start_exporter, name):
    pool = name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(name("flow"), "limited", pool)
    tag = name("etl")
    glimit = prefect.post("/v2/concurrency_limits/", {"name": name("global"), "limit": 5, "active": True})
    off = prefect.post("/v2/concurrency_limits/", {"name": name("off"), "limit": 7, "active": False})
    prefect.post("/v2/concurrency_limits/", {"name": f"tag:{tag}", "limit": 3, "active": True})
    # A deployment's concurrency_limit is a V2 limit named deployment:<id>, made by Prefect.
    prefect.patch(f"/deployments/{dep['id']}", {"concurrency_limit": 4})
    ghost_id = str(uuid.uuid4())  # a deployment limit whose deployment does not exist: labelled by id
    prefect.post("/v2/concurrency_limits/", {"name": f"deployment:{ghost_id}", "limit": 1, "active": True})
    prefect.post("/v2/concurrency_limits/increment", {"names": [glimit["name"]], "slots": 2, "mode": "concurrency"})
    prefect.post("/v2/concurrency_limits/increment", {"names": [f"tag:{tag}"], "slots": 1, "mode": "concurrency"})
    mine = {glimit["name"], off["name"], f"tag:{tag}", f"deployment:{dep['id']}", f"deployment:{ghost_id}"}
    names = {dep["id"]: dep["full_name"]}

    want = expected_limits(prefect, mine, names)
    assert len(want) == 3 * len(mine), f"Prefect does not hold every limit: {want}"
    # The values the test set, so that a wrong ground truth cannot pass either.
    g = frozenset({("kind", "global"), ("name", glimit["name"])})
    t = frozenset({("kind", "tag"), ("name", tag)})
    d = frozenset({("kind", "deployment"), ("name", dep["full_name"])})
    ghost = frozenset({("kind", "deployment"), ("name", ghost_id)})
    o = frozenset({("kind", "global"), ("name", off["name"])})
    assert [want[(f, g)] for f in LIMIT_FAMILIES] == [5, 2, 1]
    assert [want[(f, t)] for f in LIMIT_FAMILIES] == [3, 1, 1]
    assert [want[(f, d)] for f in LIMIT_FAMILIES] == [4, 0, 1]
    assert [want[(f, ghost)] for f in LIMIT_FAMILIES] == [1, 0, 1]
    assert [want[(f, o)] for f in LIMIT_FAMILIES] == [7, 0, 0]
    labels = {lbl for (_, lbl) in want}

    # Global and tag limits, and limits of unknown deployments, belong to the exporter whose pool
    # selection takes runs without a pool (the empty name): each limit is reported once in a split.
    exp = start_exporter(ARGS[:-1] + [f"{PREFIX}-.*|"])
    exp.wait_scrape(lambda x: served_limits(x, labels) == want, timeout=15,
                    message="the concurrency limits as Prefect reports them",
                    show=lambda x: sorted((n, sorted(l), v) for (n, l), v in served_limits(x, labels).items()))
    # An exporter of this module's pools only reports the limit of its deployment.
    pools_only = start_exporter(ARGS)
    only_deployment = {k: v for k, v in want.items() if k[1] == d}
    assert len(only_deployment) == len(LIMIT_FAMILIES)
    pools_only.wait_scrape(lambda x: served_limits(x, labels) == only_deployment, timeout=15,
                           message="only the deployment's limit in an exporter that leaves runs without a pool out",
                           show=lambda x: sorted((n, sorted(l), v) for (n, l), v in served_limits(x, labels).items()))

    # Slots taken and released, a limit changed and switched on: the next polls follow.
    prefect.post("/v2/concurrency_limits/increment", {"names": [glimit["name"]], "slots": 3, "mode": "concurrency"})
    prefect.post("/v2/concurrency_limits/decrement", {"names": [f"tag:{tag}"], "slots": 1})
    prefect.patch(f"/v2/concurrency_limits/{off['id']}", {"active": True, "limit": 8})
    want = expected_limits(prefect, mine, names)
    assert [want[(f, g)] for f in LIMIT_FAMILIES] == [5, 5, 1]
    assert [want[(f, t)] for f in LIMIT_FAMILIES] == [3, 0, 1]
    assert [want[(f, o)] for f in LIMIT_FAMILIES] == [8, 0, 1]
    exp.wait_scrape(lambda x: served_limits(x, labels) == want, timeout=15,
                    message="the concurrency limits after slots moved",
                    show=lambda x: sorted((n, sorted(l), v) for (n, l), v in served_limits(x, labels).items()))

    # A deleted limit disappears.
    prefect.request("DELETE", f"/v2/concurrency_limits/{glimit['id']}")
    want = expected_limits(prefect, mine, names)
    assert ("prefect_concurrency_limit", g) not in want
    exp.wait_scrape(lambda x: served_limits(x, labels) == want, timeout=15,
                    message="the deleted limit gone",
                    show=lambda x: sorted((n, sorted(l), v) for (n, l), v in served_limits(x, labels).items()))


# --------------------------------------------------------------------------------------------
# last finished runs


def last_finished_from_prefect(api: PrefectAPI, deployment_id: str) -> dict[str, float]:
    """state type -> the latest end_time of the deployment's runs in that terminal state."""
    out: dict[str, float] = {}
    for r in api.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]},
                                                          "end_time": {"is_null_": False}}, "limit": 200}):
        if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            out[r["state_type"]] = max(out.get(r["state_type"], 0.0), ts(r["end_time"]))
    return out


def served_last_finished(s: Scrape, full_name: str) -> dict[str, float]:
    return {dict(l)["state_type"]: v for l, v in series(s, LAST_FINISHED, deployment=full_name).items()}


def finish(api: PrefectAPI, deployment: dict, state_type: str) -> dict:
    """A run of the deployment taken to RUNNING, then to ``state_type`` with set_state (force)."""
    run = api.create_run(deployment)
    api.set_state(run["id"], "PENDING")
    api.set_state(run["id"], "RUNNING")
    api.set_state(run["id"], state_type, force=True)
    return api.get_run(run["id"])


def test_last_finished_run_per_terminal_state(prefect, start_exporter, name):
    pool = name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(name("flow"), "nightly", pool)
    failed = finish(prefect, dep, "FAILED")  # before the exporter starts: found by its start-up lookups
    assert failed["state_type"] == "FAILED" and failed["end_time"]

    exp = start_exporter(ARGS)
    s = exp.wait_scrape(lambda x: one(x, HAS, deployment=dep["full_name"]) is not None
                        and "FAILED" in served_last_finished(x, dep["full_name"]), timeout=15,
                        message="the start-up lookups of the deployment")
    assert served_last_finished(s, dep["full_name"]) == pytest.approx({"FAILED": ts(failed["end_time"])}, abs=1e-3)
    assert one(s, HAS, deployment=dep["full_name"]) == 0

    # Runs finishing while it runs: learnt from the finished runs, without lookups.
    c1 = finish(prefect, dep, "COMPLETED")
    c2 = finish(prefect, dep, "COMPLETED")
    cancelled = finish(prefect, dep, "CANCELLED")
    want = last_finished_from_prefect(prefect, dep["id"])
    assert want == pytest.approx({"FAILED": ts(failed["end_time"]), "COMPLETED": ts(c2["end_time"]),
                                  "CANCELLED": ts(cancelled["end_time"])}, abs=1e-6)
    assert ts(c2["end_time"]) > ts(c1["end_time"])
    exp.wait_scrape(lambda x: served_last_finished(x, dep["full_name"]) == pytest.approx(want, abs=1e-3), timeout=15,
                    message=f"last finished times {want}", show=lambda x: served_last_finished(x, dep["full_name"]))
    exp.stop()

    # A new exporter knows them from its start-up lookups (one per terminal state).
    again = start_exporter(ARGS)
    s = again.wait_scrape(lambda x: one(x, HAS, deployment=dep["full_name"]) is not None
                          and len(served_last_finished(x, dep["full_name"])) >= len(want), timeout=15,
                          message="the start-up lookups after a restart",
                          show=lambda x: served_last_finished(x, dep["full_name"]))
    assert served_last_finished(s, dep["full_name"]) == pytest.approx(want, abs=1e-3)
    assert "CRASHED" not in served_last_finished(s, dep["full_name"])


def test_a_failed_start_up_lookup_is_made_again(prefect, start_exporter, name, fault_proxy: FaultProxy):
    """One of a deployment's four last-finished lookups fails (a 500 after the retries); once
    Prefect answers again, that state's last finished run is known too."""
    pool = name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(name("flow"), "flaky", pool)
    crashed = finish(prefect, dep, "CRASHED")
    completed = finish(prefect, dep, "COMPLETED")
    want = last_finished_from_prefect(prefect, dep["id"])
    assert want == pytest.approx({"CRASHED": ts(crashed["end_time"]), "COMPLETED": ts(completed["end_time"])}, abs=1e-6)
    # Only the lookup of this deployment's last CRASHED run fails.
    lookup = rf'(?=.*"{dep["id"]}")(?=.*"CRASHED")(?=.*"limit":\s*1\s*[,}}])'
    fault_proxy.set("status", status=500, paths=r"^/api/flow_runs/filter", request_body=lookup)
    t0 = time.time()
    exp = start_exporter([*ARGS, "--prefect.retries", "0"], api_url=fault_proxy.api_url)
    wait_for(lambda: [r for r in fault_proxy.requests_since(t0) if r.fault != "pass"], timeout=15,
             message="the CRASHED lookup to be refused")
    s = exp.wait_scrape(lambda x: one(x, "prefect_exporter_collector_success", collector="deployment_schedules") == 0,
                        timeout=10, message="deployment_schedules failing")
    fault_proxy.clear()
    s = exp.wait_scrape(lambda x: served_last_finished(x, dep["full_name"]) == pytest.approx(want, abs=1e-3),
                        timeout=10, message=f"last finished times {want} once Prefect answers the lookup",
                        show=lambda x: (served_last_finished(x, dep["full_name"]),
                                        one(x, "prefect_exporter_collector_success", collector="deployment_schedules"),
                                        len(fault_proxy.requests_since(t0, "/flow_runs/filter"))))
    assert one(s, "prefect_exporter_collector_success", collector="deployment_schedules") == 1


# --------------------------------------------------------------------------------------------
# active slots of pools and queues


def test_work_pool_and_queue_active_slots(prefect, start_exporter, name):
    pool = name("pool")
    prefect.create_pool(pool, concurrency_limit=5)
    limited = prefect.create_queue(pool, "limited", concurrency_limit=1)
    prefect.create_queue(pool, "unlimited")
    dep = prefect.create_deployment(name("flow"), "busy", pool, "limited")
    running = prefect.run_in_state(dep, "RUNNING")
    prefect.run_in_state(dep, "PENDING")
    prefect.run_in_state(dep, "RUNNING", work_queue_name="unlimited")
    prefect.run_in_state(dep, "COMPLETED")                              # not a slot
    prefect.create_run(dep, utcnow() + dt.timedelta(hours=1))           # not a slot

    def prefect_slots() -> dict[str, float | None]:
        p = prefect.get_pool(pool)
        qs = {q["name"]: q for q in prefect.pool_queues(pool)}
        return {"pool": p.get("active_slots"), "limited": qs["limited"].get("active_slots"),
                "unlimited": qs["unlimited"].get("active_slots"), "default": qs["default"].get("active_slots")}

    def served(s: Scrape) -> dict[str, float | None]:
        return {"pool": one(s, "prefect_work_pool_active_slots", work_pool=pool),
                **{q: one(s, "prefect_work_queue_active_slots", work_pool=pool, work_queue=q)
                   for q in ("limited", "unlimited", "default")}}

    want = prefect_slots()
    # Prefect counts PENDING and RUNNING runs; the queue's count exceeds its limit; a queue
    # without a limit has none (null).
    assert want == {"pool": 3, "limited": 2, "unlimited": None, "default": None}, want
    exp = start_exporter(ARGS)
    exp.wait_scrape(lambda x: served(x) == want, timeout=15, message=f"active slots {want}", show=served)

    prefect.set_state(running["id"], "COMPLETED")
    want = prefect_slots()
    assert want == {"pool": 2, "limited": 1, "unlimited": None, "default": None}, want
    exp.wait_scrape(lambda x: served(x) == want, timeout=15, message=f"active slots {want}", show=served)
    assert limited["concurrency_limit"] == 1


# --------------------------------------------------------------------------------------------
# exemplars


def openmetrics(exp: Exporter) -> tuple[str, list]:
    r = exp.get("/metrics", headers={"Accept": OPENMETRICS, "Accept-Encoding": "identity"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/openmetrics-text"), r.headers["content-type"]
    return r.text, list(parse_openmetrics(r.text))


def exemplars_of(families: list, pool: str) -> dict[tuple[str, frozenset], object]:
    """(sample name, labels) -> exemplar, for the samples of ``pool`` that carry one."""
    out = {}
    for family in families:
        for sample in family.samples:
            if sample.exemplar is not None and sample.labels.get("work_pool") == pool:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.exemplar
    return out


def test_exemplars_name_real_flow_runs(prefect, start_exporter, name):
    pool = name("pool")
    prefect.create_pool(pool)
    prefect.create_queue(pool, "q")
    dep = prefect.create_deployment(name("flow"), "ex", pool, "q")
    now = utcnow()
    # Two late runs of one group (same queue, deployment and state name), in different buckets:
    # only the most overdue one is the group's exemplar, with its id alone.
    recent = prefect.create_run(dep, now - dt.timedelta(minutes=20), "Late")   # 1200 s: bucket 1800
    oldest = prefect.create_run(dep, now - dt.timedelta(minutes=50), "Late")   # 3000 s: bucket 3600
    running = prefect.run_in_state(dep, "RUNNING")
    with_flag = start_exporter([*ARGS, "--metrics.exemplars"])
    without = start_exporter(ARGS)
    since = with_flag.started_at
    # Finished after both exporters started: a start delay and a duration.
    done = finish(prefect, dep, "COMPLETED")
    assert ts(done["start_time"]) > since

    def complete(fams: list) -> bool:
        ex = exemplars_of(fams, pool)
        names = {n for (n, _) in ex}
        return {"prefect_flow_run_lateness_seconds_bucket", "prefect_flow_run_running_seconds_bucket",
                "prefect_flow_run_start_delay_seconds_bucket", "prefect_flow_run_duration_seconds_bucket"} <= names

    text, fams = "", []

    def ready() -> bool:
        nonlocal text, fams
        text, fams = openmetrics(with_flag)
        return complete(fams)
    wait_for(ready, timeout=20, message=lambda: f"exemplars on every run histogram; page:\n{text[-3000:]}")
    ex = exemplars_of(fams, pool)
    queue = {("work_pool", pool), ("work_queue", "q")}

    def at(family: str, **labels: str) -> dict[str, object]:
        """le (a number) -> exemplar of one histogram series."""
        return {float(dict(l)["le"]): e for (n, l), e in ex.items()
                if n == f"{family}_bucket" and set(l) - {("le", dict(l)["le"])} == queue | set(labels.items())}

    # Lateness: one exemplar, on the most overdue run's bucket, with its id only.
    lateness = at("prefect_flow_run_lateness_seconds")
    assert list(lateness) == [3600.0], lateness
    e = lateness[3600.0]
    assert e.labels == {"flow_run_id": oldest["id"]}, e.labels
    overdue = float(e.timestamp) - ts(prefect.get_run(oldest["id"])["next_scheduled_start_time"])
    assert e.value == pytest.approx(overdue, abs=0.01) and 1800 < e.value <= 3600
    assert recent["id"] not in text
    # Running: the RUNNING run, id and name, its running time at the poll.
    run = prefect.get_run(running["id"])
    (le, e), = at("prefect_flow_run_running_seconds").items()
    assert e.labels == {"flow_run_id": run["id"], "flow_run_name": run["name"]}, e.labels
    assert e.value == pytest.approx(float(e.timestamp) - ts(run["start_time"]), abs=0.01) and e.value <= le
    # Start delay and duration of the run that finished: the values Prefect gives, at its start and end.
    fin = prefect.get_run(done["id"])
    (le, e), = at("prefect_flow_run_start_delay_seconds").items()
    assert e.labels == {"flow_run_id": fin["id"], "flow_run_name": fin["name"]}, e.labels
    assert e.value == pytest.approx(max(0.0, ts(fin["start_time"]) - ts(fin["expected_start_time"])), abs=1e-3)
    assert float(e.timestamp) == pytest.approx(ts(fin["start_time"]), abs=2e-3)
    (le, e), = at("prefect_flow_run_duration_seconds", state_type="COMPLETED").items()
    assert e.labels == {"flow_run_id": fin["id"], "flow_run_name": fin["name"]}, e.labels
    assert e.value == pytest.approx(fin["total_run_time"], abs=1e-3) and e.value <= le
    assert float(e.timestamp) == pytest.approx(ts(fin["end_time"]), abs=2e-3)
    # Every exemplar anywhere on the page names a flow run Prefect holds.
    for family in fams:
        for sample in family.samples:
            if sample.exemplar is not None:
                rid = sample.exemplar.labels["flow_run_id"]
                if sample.labels.get("work_pool") == pool:
                    assert rid in {oldest["id"], run["id"], fin["id"]}, (sample, rid)

    # Without the flag: the same runs, no exemplar on the OpenMetrics page.
    plain_text, plain = openmetrics(without)
    assert any(s.labels.get("work_pool") == pool for f in plain for s in f.samples)
    assert [s for f in plain for s in f.samples if s.exemplar is not None] == []
    assert " # {" not in plain_text
