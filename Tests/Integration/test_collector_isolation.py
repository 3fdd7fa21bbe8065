"""One failing Prefect endpoint affects only the collector that reads it (issue 10, part 2).

For each collector, a fault proxy in front of the shared Prefect server fails that collector's
endpoint(s) only, first with an error status (403 for the endpoints a Prefect Cloud role may
lack, 500 or 503 without Retry-After for the others), then, for three of them
(``BLACKHOLE_COLLECTORS``), with a black hole. Throughout:

- ``prefect_exporter_collector_success`` is 0 for that collector and 1 for every other one, and
  ``prefect_up`` stays 1;
- every family fed by another collector is served and exact: it is compared with what Prefect
  holds (``groundtruth``) after the test changed Prefect's data under the fault;
- the failing collector's families keep their last good values, unchanged although Prefect's
  data changed, until ``--prefect.max-staleness`` after its last success, then disappear;
- ``prefect_exporter_collector_last_success_timestamp_seconds`` advances for the healthy
  collectors and stands still for the failing one;
- the failure is logged once (naming the endpoint; a 403 says permission, not PREFECT_API_KEY),
  and the recovery once; after the fault everything is exact again.

The flow-run collectors and the deployment_schedules lookups share ``/flow_runs/filter`` and
``/flow_runs/count``; the proxy tells them apart by the request body (see ``TARGETS``). The
deployment_schedules collector asks Prefect only when it has a lookup to make, so its faults are
provoked by starting a run of a deployment (``PROVOKE``).

Also: with ``/deployments/filter`` failing from the start, runs and deployment concurrency
limits are labelled with their deployment's id and counted exactly, and deployment_schedules
(which needs the deployment list) fails with it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from dataclasses import dataclass

import pytest

from faultproxy import FaultProxy, fault_proxy  # noqa: F401 - fault_proxy is a fixture
from groundtruth import (
    ALL_FAMILIES,
    COLLECTOR_FAMILIES,
    COLLECTORS,
    Settings,
    World,
    compare,
    expected,
    families_present,
    poll_window,
    served,
)
from harness import Exporter, PrefectAPI, Scrape, unique, utcnow

MAX_STALENESS = 6.0
EXPORTER_ARGS = [
    "--prefect.poll-interval", "1s", "--prefect.max-staleness", f"{MAX_STALENESS:g}s",
    "--prefect.timeout", "1s", "--prefect.connect-timeout", "1s", "--prefect.retries", "1",
]

# How to fail exactly one collector: a path regex (searched in the request target) and, for the
# flow-run collectors, a regex searched in the request body (/work/spec/issue10.md, Collectors).
# deployment_schedules: one-run lookups (limit 1) of one deployment's runs.
LOOKUP_BODY = r'^(?=.*"deployment_id")(?=.*"limit":\s*1\s*[,}])'
NOT_LOOKUP = r'(?!.*"limit":\s*1\s*[,}])'
FINISHED_BODY = rf'^{NOT_LOOKUP}.*"(?:end_time|start_time)"'
# In flight (state types PENDING...) or due (next_scheduled_start_time.before_), not a history window.
ACTIVE_BODY = rf'^{NOT_LOOKUP}(?!.*"(?:end_time|start_time)").*(?:"PENDING"|"before_")'
# Counts of SCHEDULED runs starting after now: after_ and no before_.
UPCOMING_BODY = rf'^{NOT_LOOKUP}(?!.*"(?:end_time|start_time|before_)").*"after_"'
TARGETS: dict[str, dict] = {
    "server_info": {"paths": r"^/api/(?:admin/)?version"},
    "work_pools": {"paths": r"^/api/work_pools/filter"},
    "workers": {"paths": r"^/api/work_pools/[^/?]+/workers/filter"},
    "work_queues": {"paths": r"^/api/work_queues/filter"},
    "concurrency_limits": {"paths": r"^/api/v2/concurrency_limits/filter"},
    "deployments": {"paths": r"^/api/(?:deployments|flows)/filter"},
    "deployment_schedules": {"paths": r"^/api/flow_runs/filter", "request_body": LOOKUP_BODY},
    "flow_runs_active": {"paths": r"^/api/flow_runs/(?:filter|count)", "request_body": ACTIVE_BODY},
    "flow_runs_upcoming": {"paths": r"^/api/flow_runs/count", "request_body": UPCOMING_BODY},
    "flow_runs_finished": {"paths": r"^/api/flow_runs/filter", "request_body": FINISHED_BODY},
}
# 403 where a role may lack a permission; 500 and 503 (no Retry-After: a 503 with one skips polls).
STATUS = {"server_info": 500, "work_pools": 503, "workers": 403, "work_queues": 500, "concurrency_limits": 403,
          "deployments": 403, "deployment_schedules": 503, "flow_runs_active": 500, "flow_runs_upcoming": 503,
          "flow_runs_finished": 500}
# What the failure message must name: the endpoint (route template or path).
ENDPOINT_IN_MESSAGE = {
    "server_info": r"/(admin/)?version", "work_pools": r"/work_pools/filter", "workers": r"/workers/filter",
    "work_queues": r"/work_queues/filter", "concurrency_limits": r"/v2/concurrency_limits/filter",
    "deployments": r"/(deployments|flows)/filter", "deployment_schedules": r"/flow_runs/filter",
    "flow_runs_active": r"/flow_runs/(filter|count)", "flow_runs_upcoming": r"/flow_runs/count",
    "flow_runs_finished": r"/flow_runs/filter",
}

_mutation = itertools.count(1)


# --------------------------------------------------------------------------------------------
# the inventory: two pools with queues, deployments, workers and runs in various states


@dataclass
class Inventory:
    api: PrefectAPI
    pool_a: str
    pool_b: str
    d1: dict
    d2: dict
    d3: dict
    qa2_id: str
    global_limit_id: str
    limit_names: tuple[str, ...]

    @property
    def pools(self) -> list[str]:
        return [self.pool_a, self.pool_b]

    def world(self, since: float | None) -> World:
        return World.read(self.api, self.pools, since, limit_names=self.limit_names)


@pytest.fixture(scope="module")
def inventory(prefect) -> Inventory:
    a, b = unique("pool-iso-a"), unique("pool-iso-b")
    prefect.create_pool(a)
    prefect.create_pool(b, concurrency_limit=5)
    prefect.create_queue(a, "qa1", priority=2)
    qa2 = prefect.create_queue(a, "qa2", concurrency_limit=3)
    prefect.create_queue(b, "qb1")
    d1 = prefect.create_deployment(f"flow-{a}", "d1", a, "qa1")
    d2 = prefect.create_deployment(f"flow-{a}", "d2", a, "qa2")
    d3 = prefect.create_deployment(f"flow-{b}", "d3", b, "qb1")
    # Workers with a long heartbeat interval, so that none goes OFFLINE during the module.
    prefect.heartbeat(a, "worker-a", heartbeat_interval_seconds=3600)
    prefect.heartbeat(b, "worker-b", heartbeat_interval_seconds=3600)
    prefect.poll_as_worker(a, ["qa1"])  # a last_polled timestamp for qa1
    now = utcnow()
    # Due runs far from every lateness bucket bound for the module's duration.
    prefect.create_run(d1, now - dt.timedelta(minutes=40), "Late")
    prefect.create_run(d1, now - dt.timedelta(hours=2, minutes=30), "AwaitingRetry")
    prefect.create_run(d2, now - dt.timedelta(minutes=20), "Late")
    # A run in another queue than its deployment's (pool b's default queue).
    prefect.create_run(d3, now - dt.timedelta(hours=3, minutes=10), "Late", work_queue_name="default")
    # Upcoming.
    prefect.create_run(d1, now + dt.timedelta(hours=1))
    prefect.create_run(d2, now + dt.timedelta(hours=2))
    # In flight.
    prefect.run_in_state(d1, "RUNNING")
    prefect.run_in_state(d1, "PENDING")
    prefect.run_in_state(d2, "PAUSED")
    prefect.run_in_state(d3, "RUNNING", "Retrying")
    # Finished before any exporter of this module starts: history, never counted.
    prefect.run_in_state(d1, "COMPLETED")
    prefect.run_in_state(d3, "FAILED")
    # Concurrency limits: a global one with a slot taken, a tag limit switched off, and d2's
    # deployment limit (Prefect names it deployment:<id>).
    glimit = prefect.post("/v2/concurrency_limits/", {"name": f"cl-{a}", "limit": 4, "active": True})
    prefect.post("/v2/concurrency_limits/increment", {"names": [glimit["name"]], "slots": 1, "mode": "concurrency"})
    prefect.post("/v2/concurrency_limits/", {"name": f"tag:{a}", "limit": 3, "active": False})
    prefect.patch(f"/deployments/{d2['id']}", {"concurrency_limit": 2})
    names = (glimit["name"], f"tag:{a}", f"deployment:{d2['id']}")
    assert {c["name"] for c in prefect.post("/v2/concurrency_limits/filter", {"limit": 200})} >= set(names)
    return Inventory(api=prefect, pool_a=a, pool_b=b, d1=d1, d2=d2, d3=d3, qa2_id=qa2["id"],
                     global_limit_id=glimit["id"], limit_names=names)


def mutate(inv: Inventory) -> None:
    """Changes something in every collector's data (but the server's version)."""
    k = next(_mutation)
    api = inv.api
    api.heartbeat(inv.pool_a, f"worker-m{k}", heartbeat_interval_seconds=3600)            # workers
    api.patch(f"/work_pools/{inv.pool_b}", {"concurrency_limit": 10 + k})                  # work_pools
    api.patch(f"/work_queues/{inv.qa2_id}", {"concurrency_limit": 20 + k})                 # work_queues
    api.patch(f"/v2/concurrency_limits/{inv.global_limit_id}", {"limit": 30 + k})         # concurrency_limits
    paused = api.get_deployment(inv.d2["id"])["paused"]                                     # deployments
    api.post(f"/deployments/{inv.d2['id']}/{'resume' if paused else 'pause'}_deployment")
    api.run_in_state(inv.d1, "RUNNING")                                                     # flow_runs_active
    api.create_run(inv.d2, utcnow() + dt.timedelta(hours=3, minutes=k))                     # flow_runs_upcoming
    api.run_in_state(inv.d3, "COMPLETED")                              # flow_runs_finished, deployment_schedules


# Families fed in part by another collector's data of the same poll: deployment_schedules learns
# the runs that finished from flow_runs_finished (README, "Schedules and concurrency"), so while
# that one fails, prefect_deployment_last_run_finished_timestamp_seconds does not follow runs that
# finish (deployment_schedules still reports success). They must be exact again after the fault.
DEPENDENT = {"flow_runs_finished": {"prefect_deployment_last_run_finished_timestamp_seconds"}}

# deployment_schedules sends requests only when a lookup is due: a run that starts makes its
# deployment's next run worth looking up again.
PROVOKE = {"deployment_schedules": lambda inv: inv.api.run_in_state(inv.d1, "RUNNING")}


# --------------------------------------------------------------------------------------------
# helpers


def success(s: Scrape, collector: str) -> float | None:
    return s.samples.get(("prefect_exporter_collector_success", frozenset({("collector", collector)})))


def last_success(s: Scrape, collector: str) -> float | None:
    return s.samples.get(("prefect_exporter_collector_last_success_timestamp_seconds",
                          frozenset({("collector", collector)})))


def health_problem(s: Scrape, failing: str | set[str] | None) -> str | None:
    """None when prefect_up is 1 and exactly ``failing`` (a collector or a set; None: no
    collector) has success 0."""
    failing_set = {failing} if isinstance(failing, str) else set(failing or ())
    flags = {c: success(s, c) for c in COLLECTORS}
    want = {c: (0.0 if c in failing_set else 1.0) for c in COLLECTORS}
    if flags != want or s.value("prefect_up", default=-1) != 1:
        return f"prefect_up={s.value('prefect_up', default=None)}, collector_success={flags}, want {want}"
    return None


def wait_exact(exp: Exporter, inv: Inventory, since: float, families, *, failing: str | set[str] | None,
               after: float | None = None, timeout: float = 30.0, settings: Settings | None = None,
               check=None, observe=None) -> tuple[Scrape, World]:
    """Waits for a scrape whose poll started after ``after`` (default: now) in which the health
    flags say only ``failing`` fails and ``families`` equal what Prefect holds.

    Prefect is read before and after the scrape; a scrape is judged only when both reads agree
    (a worker's status or a deployment's readiness may flip on its own meanwhile).
    """
    deadline = time.monotonic() + timeout
    problem = "no scrape judged"
    after = time.time() if after is None else after
    while time.monotonic() < deadline:
        t1 = time.time()
        before = inv.world(since)

        def fresh(s: Scrape) -> bool:
            if observe is not None:
                observe(s)
            lo, _ = poll_window(s, slack=0.0)
            return lo > max(t1, after)
        try:
            s = exp.wait_scrape(fresh, timeout=max(1.0, deadline - time.monotonic()), message="a poll after the read")
        except AssertionError as exc:
            problem = f"{problem}; then {exc}"
            break
        world = inv.world(since)
        if world.fingerprint() != before.fingerprint():
            problem = "Prefect's data changed while the scrape was taken"
            continue
        problems = []
        h = health_problem(s, failing)
        if h:
            problems.append(h)
        lo, hi = poll_window(s)
        problems += compare(s, expected(world, lo, hi, families, settings), world, families)
        if check is not None:
            extra = check(s)
            if extra:
                problems.append(extra)
        if not problems:
            return s, world
        problem = "\n  ".join(problems)
    raise AssertionError(f"no exact scrape within {timeout:.0f}s (failing collector: {failing}); last problems:\n  "
                         f"{problem}\nexporter log:\n{exp.log_tail(3000)}")


def log_from(exp: Exporter, offset: int) -> list[str]:
    data = exp.log_path.read_bytes()[offset:]
    return data.decode("utf-8", "replace").splitlines()


def log_size(exp: Exporter) -> int:
    return exp.log_path.stat().st_size


def polls(s: Scrape) -> float:
    return s.sum("prefect_exporter_polls_total")


# --------------------------------------------------------------------------------------------
# one collector failing at a time


def run_fault_phase(exp: Exporter, inv: Inventory, fault_proxy: FaultProxy, since: float, collector: str,
                    kind: str, check_staleness: bool, recoveries_before: int) -> None:
    mine = set(COLLECTOR_FAMILIES[collector])
    others = set(ALL_FAMILIES) - mine - DEPENDENT.get(collector, set())
    log_offset = log_size(exp)
    pre = exp.scrape()
    assert health_problem(pre, None) is None, health_problem(pre, None)
    partial_before = pre.value("prefect_exporter_polls_total", default=0, result="partial")
    t_fault = time.time()
    options = {"status": STATUS[collector]} if kind == "status" else {}
    fault_proxy.set(kind, **TARGETS[collector], **options)
    if collector in PROVOKE:
        PROVOKE[collector](inv)

    # 1. The first poll that fails this collector: the scrape before it holds its last good values.
    last_good: list[Scrape] = [pre]

    def first_failure(s: Scrape) -> bool:
        if success(s, collector) == 1:
            last_good[0] = s
        return success(s, collector) == 0
    f1 = exp.wait_scrape(first_failure, timeout=20, message=f"collector {collector} failing under {kind}",
                         show=lambda s: {c: success(s, c) for c in COLLECTORS})
    assert health_problem(f1, collector) is None, health_problem(f1, collector)
    hit = [r for r in fault_proxy.requests_since(t_fault) if r.fault != "pass"]
    assert hit, f"the fault on {collector} hit no request"
    frozen_at = last_success(f1, collector)
    assert frozen_at is not None and frozen_at < t_fault + 3.0, (
        f"{collector}: prefect_exporter_collector_last_success_timestamp_seconds {frozen_at} (fault at {t_fault})")
    world0 = inv.world(since)
    frozen = served(f1, world0, mine)
    good = served(last_good[0], world0, mine)
    assert frozen, f"{collector}'s families vanished at the first failed poll"
    # Its families are those of its last successful poll: the same series, the same values.
    if last_success(last_good[0], collector) == frozen_at:
        assert frozen == good, _dict_diff(good, frozen)
    else:  # a successful poll happened between two scrapes: same series at least
        assert set(frozen) == set(good), _dict_diff(good, frozen)

    # Until --prefect.max-staleness after its last success its families are exactly those; then
    # they are gone. Every scrape from here on is checked.
    last_present = [f1.time]

    def frozen_or_stale(s: Scrape) -> str | None:
        now_served = served(s, world0, mine)
        if now_served == frozen:
            last_present[0] = max(last_present[0], s.time)
            if s.time > frozen_at + MAX_STALENESS + 3.0 + (3.0 if kind == "blackhole" else 0.0):
                return f"{collector}'s families still served {s.time - frozen_at:.1f}s after its last success"
            return None
        if not now_served:
            if s.time < frozen_at + MAX_STALENESS - 0.2:
                return f"{collector}'s families dropped {s.time - frozen_at:.1f}s after its last success"
            return None
        return f"{collector}'s families changed while it fails: {_dict_diff(frozen, now_served)}"

    violations: list[str] = []
    scrape_times: list[float] = [f1.time]

    def observe(s: Scrape) -> None:
        scrape_times.append(s.time)
        problem = frozen_or_stale(s)
        if problem:
            violations.append(problem)

    # 2. Prefect's data changes under every collector; the others follow it exactly.
    t_mut = time.time()
    mutate(inv)
    s, world = wait_exact(exp, inv, since, others, failing=collector, after=t_mut + 0.01, check=frozen_or_stale,
                          observe=observe)
    # The failing collector's families did not follow: Prefect's data did change under them.
    if collector != "server_info":
        lo, hi = poll_window(s)
        fresh = expected(world, lo, hi, mine)
        assert any(not fresh[k].ok(frozen.get(k)) for k in fresh) or set(frozen) != set(fresh), (
            f"the change made under {collector} is not visible in Prefect's data; the test proves nothing")

    # 3. Last-success timestamps: the failing one stands still, the healthy ones advance; and at
    #    least 3 polls failed it.
    def more(x: Scrape) -> bool:
        observe(x)
        return (polls(x) >= polls(s) + 1
                and x.value("prefect_exporter_polls_total", default=0, result="partial") - partial_before >= 3)
    later = exp.wait_scrape(more, timeout=20, message="1 more poll, 3 partial polls in all")
    assert last_success(later, collector) == frozen_at
    for c in COLLECTORS:
        if c != collector:
            a, b = last_success(s, c), last_success(later, c)
            assert a is not None and b is not None and b > a, f"last success of {c}: {a} then {b}"
    assert health_problem(later, collector) is None, health_problem(later, collector)
    partial = later.value("prefect_exporter_polls_total", default=0, result="partial") - partial_before
    assert partial >= 3, f"{partial} partial polls while {collector} failed"
    # Several failed polls, one log line.
    failed = [line for line in log_from(exp, log_offset) if re.search(r"collector \w+ failed", line)]
    mine_lines = [line for line in failed if f"collector {collector} failed" in line]
    assert len(mine_lines) == 1, f"expected one failure line for {collector}, got:\n" + "\n".join(failed)
    assert len(failed) == 1, "other collectors logged failures:\n" + "\n".join(failed)
    line = mine_lines[0]
    assert "level=error" in line, line
    assert re.search(ENDPOINT_IN_MESSAGE[collector], line), f"the message does not name the endpoint: {line}"
    if kind == "status" and STATUS[collector] == 403:
        assert "403" in line and "permission" in line.lower(), line
        assert "reason=forbidden" in line, line
        assert "PREFECT_API_KEY" not in line and "PREFECT_API_AUTH_STRING" not in line, line
    elif kind == "status":
        assert str(STATUS[collector]) in line, line
    else:
        assert "reason=timeout" in line, line

    # 4. Past --prefect.max-staleness after its last success, its families disappear, and the
    #    others stay fresh and exact.
    if check_staleness:
        def gone(x: Scrape) -> bool:
            observe(x)
            return not families_present(x, world0, mine)
        exp.wait_scrape(gone, timeout=MAX_STALENESS + 15, message=f"{collector}'s families to go stale")
        # Seen until shortly before max staleness, if this test scraped then at all: on a loaded
        # machine (xdist workers beside other jobs) the mutations of step 2 alone can take past
        # max staleness, and then no scrape falls in the window. A scrape in it that missed the
        # families is a violation recorded by observe() (dropped too early).
        window = (frozen_at + MAX_STALENESS - 2.5, frozen_at + MAX_STALENESS - 0.2)
        if any(window[0] <= t < window[1] for t in scrape_times):
            assert last_present[0] >= window[0], (
                f"{collector}'s families last seen {last_present[0] - frozen_at:.1f}s after its last success "
                f"(max staleness {MAX_STALENESS}s)")
        wait_exact(exp, inv, since, others, failing=collector, after=t_mut, check=frozen_or_stale, observe=observe)
    assert not violations, violations[:5]

    # 5. The fault goes away: everything is exact again, the recovery logged once.
    fault_proxy.clear()
    wait_exact(exp, inv, since, ALL_FAMILIES, failing=None, timeout=30)
    recovered = [line for line in exp.log_path.read_text(errors="replace").splitlines()
                 if f"collector {collector} succeeds again" in line]
    assert len(recovered) == recoveries_before + 1, recovered


def _dict_diff(a: dict, b: dict, limit: int = 12) -> str:
    keys = sorted(set(a) | set(b), key=lambda k: (k[0], sorted(k[1])))
    out = [f"{k[0]}{dict(k[1])}: {a.get(k)} -> {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(out[:limit]) + (f"; ... {len(out) - limit} more" if len(out) > limit else "")


# A black hole (a request that never answers until the timeout) differs from an error status
# only in how long the poll waits, which the client handles the same way for every endpoint. It
# is run for one inventory collector, for flow_runs_finished (which two collectors of the same
# stage wait for) and for deployment_schedules (which waits for it): the other collectors get the
# error status only, which keeps this module under 4 minutes with ten collectors.
BLACKHOLE_COLLECTORS = {"work_pools", "flow_runs_finished", "deployment_schedules"}


@pytest.mark.parametrize("collector", COLLECTORS)
def test_one_collector_fails_alone(collector, inventory: Inventory, fault_proxy: FaultProxy, start_exporter):
    exp = start_exporter(EXPORTER_ARGS, api_url=fault_proxy.api_url)
    since = exp.started_at
    wait_exact(exp, inventory, since, ALL_FAMILIES, failing=None)
    # An error status, with the wait for staleness; then, for some, a black hole.
    run_fault_phase(exp, inventory, fault_proxy, since, collector, "status", check_staleness=True, recoveries_before=0)
    if collector in BLACKHOLE_COLLECTORS:
        run_fault_phase(exp, inventory, fault_proxy, since, collector, "blackhole", check_staleness=False,
                        recoveries_before=1)


# --------------------------------------------------------------------------------------------
# the deployment list never read: runs labelled with the deployment id


def test_deployments_never_read_label_runs_with_deployment_id(inventory: Inventory, fault_proxy: FaultProxy,
                                                               start_exporter):
    fault_proxy.set("status", status=403, paths=r"^/api/deployments/filter")
    exp = start_exporter(EXPORTER_ARGS, api_url=fault_proxy.api_url, wait="ready")
    since = exp.started_at
    run_families = (set(COLLECTOR_FAMILIES["flow_runs_active"]) | set(COLLECTOR_FAMILIES["flow_runs_upcoming"])
                    | set(COLLECTOR_FAMILIES["flow_runs_finished"]))
    others = set(ALL_FAMILIES) - set(COLLECTOR_FAMILIES["deployments"]) - set(COLLECTOR_FAMILIES["deployment_schedules"])
    by_id = Settings(deployment_label="id")
    s, world = wait_exact(exp, inventory, since, others, failing={"deployments", "deployment_schedules"}, settings=by_id,
                          after=since, check=lambda x: None if not x.series("prefect_deployment_info")
                          else "prefect_deployment_info is served although the deployments were never read")
    # Every run of a deployment carries the deployment's id, none is dropped.
    ids = {inventory.d1["id"], inventory.d2["id"], inventory.d3["id"]}
    labels = {dict(l).get("deployment") for (n, l) in served(s, world, run_families) if "deployment" in dict(l)}
    assert ids <= labels, labels
    assert not {lbl for lbl in labels if "/" in lbl}, labels
    running = s.value("prefect_flow_runs", work_pool=inventory.pool_a, work_queue="qa1",
                      deployment=inventory.d1["id"], state_type="RUNNING", state_name="Running")
    assert running == sum(1 for r in world.runs if r["deployment_id"] == inventory.d1["id"]
                          and r["state_type"] == "RUNNING" and r["state_name"] == "Running" and
                          r["work_queue_name"] == "qa1") >= 1
    assert s.value("prefect_flow_runs_late", work_pool=inventory.pool_b, work_queue="default",
                   deployment=inventory.d3["id"]) >= 1
    # d2's concurrency limit is labelled with d2's id; deployment_schedules, which needs the
    # deployment list, serves nothing.
    limit = ("prefect_concurrency_limit", frozenset({("kind", "deployment"), ("name", inventory.d2["id"])}))
    assert s.samples.get(limit) == 2, s.series("prefect_concurrency_limit", kind="deployment")
    assert not s.series("prefect_deployment_has_scheduled_run"), s.series("prefect_deployment_has_scheduled_run")

    # Once the deployments are read, runs carry flow/deployment again.
    fault_proxy.clear()
    wait_exact(exp, inventory, since, ALL_FAMILIES, failing=None)
