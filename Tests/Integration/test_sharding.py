"""Sharding by work pool: exporters with disjoint --prefect.work-pool-include/-exclude selections
together report exactly what one unfiltered exporter reports.

Three exporters poll the shared Prefect server: one without a selection, one with
``--prefect.work-pool-include 'shard-a-<token>-.*'`` and one with the same pattern as
``--prefect.work-pool-exclude``. Patterns are fully anchored, and runs with no work pool have
the pool name "", so the no-pool runs belong to the exclude exporter only.

For the seeded pools and for the no-pool series, the union of the two filtered exporters'
Prefect-derived series must equal the unfiltered exporter's series: same names, labels and
values, and no series may appear in both shards. Values derived from the clock (how long runs
have been running or late) differ by the time between the exporters' polls, so their sums and
maxima are compared with a tolerance; bucket counts and everything else exactly.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from harness import Scrape, utcnow, wait_for

# Families about the exporter itself or about the whole server, not about pools or runs.
NOT_PREFECT_DERIVED = {"prefect_up", "prefect_server_info"}
# Families whose values move with the clock between two exporters' polls.
CLOCK_DERIVED = ("prefect_flow_run_running_seconds", "prefect_flow_run_lateness_seconds",
                 "prefect_flow_run_max_running_seconds", "prefect_flow_run_max_lateness_seconds")


def prefect_series(scrape: Scrape) -> dict[tuple[str, frozenset], float]:
    """The Prefect-derived samples: no prefect_exporter_*, process_*, prefect_up or prefect_server_info."""
    return {key: value for key, value in scrape.samples.items()
            if key[0].startswith("prefect_") and not key[0].startswith("prefect_exporter_")
            and key[0] not in NOT_PREFECT_DERIVED}


def show(key: tuple[str, frozenset]) -> str:
    name, labels = key
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels)) + "}"


@pytest.fixture(scope="module")
def shards(prefect):
    """Two pools that match ``shard-a-<token>-.*``, one that does not, and runs in several states.

    Everything here exists before the exporters start; the test adds finished runs afterwards.
    """
    token = uuid.uuid4().hex[:8]
    pool_a1, pool_a2, pool_b = f"shard-a-{token}-1", f"shard-a-{token}-2", f"shard-b-{token}"
    flow = f"flow-shard-{token}"
    for pool in (pool_a1, pool_a2, pool_b):
        prefect.create_pool(pool)
    prefect.create_queue(pool_a1, "qa")
    dep_a1 = prefect.create_deployment(flow, "dep-a1", pool_a1, "default")
    dep_a1q = prefect.create_deployment(flow, "dep-a1-qa", pool_a1, "qa")
    dep_a2 = prefect.create_deployment(flow, "dep-a2", pool_a2, "default")
    dep_b = prefect.create_deployment(flow, "dep-b", pool_b, "default")
    prefect.heartbeat(pool_a2, "worker-a2", heartbeat_interval_seconds=120)

    now = utcnow()
    # Lateness of about 7 minutes sits well inside the (300, 600] bucket for the whole test.
    late = now - dt.timedelta(minutes=7)
    prefect.run_in_state(dep_a1, "SCHEDULED", scheduled_time=now + dt.timedelta(hours=1))
    prefect.run_in_state(dep_a1, "SCHEDULED", scheduled_time=late)
    prefect.run_in_state(dep_a1, "RUNNING")
    prefect.run_in_state(dep_a1q, "PENDING")
    prefect.run_in_state(dep_a1q, "PAUSED")
    prefect.run_in_state(dep_a2, "RUNNING")
    prefect.run_in_state(dep_a2, "SCHEDULED", scheduled_time=now + dt.timedelta(hours=2))
    prefect.run_in_state(dep_b, "SCHEDULED", scheduled_time=late)
    prefect.run_in_state(dep_b, "RUNNING")
    prefect.run_in_state(dep_b, "CANCELLING")
    prefect.create_adhoc_run(f"adhoc-shard-{token}", "RUNNING")
    return {
        "token": token, "pattern": f"shard-a-{token}-.*", "flow": flow,
        "pools": {pool_a1, pool_a2, pool_b}, "a_pools": {pool_a1, pool_a2}, "pool_a1": pool_a1,
        "pool_a2": pool_a2, "pool_b": pool_b,
        "deps": {"a1": dep_a1, "a1q": dep_a1q, "a2": dep_a2, "b": dep_b},
    }


def in_scope(key: tuple[str, frozenset], pools: set[str], deployments: set[str]) -> bool:
    """Series of the seeded pools, of runs with no pool, and the deployment-only series of the
    seeded deployments."""
    labels = dict(key[1])
    if "work_pool" in labels:
        return labels["work_pool"] in pools or labels["work_pool"] == ""
    if "deployment" in labels:
        return labels["deployment"] in deployments
    return False


def differences(whole: dict, union: dict) -> list[str]:
    """What differs between the unfiltered exporter's series and the shards' union."""
    problems = [f"only unfiltered: {show(k)} = {whole[k]}" for k in sorted(whole.keys() - union.keys())]
    problems += [f"only in a shard: {show(k)} = {union[k]}" for k in sorted(union.keys() - whole.keys())]
    counts = {(name[:-len("_count")], labels): value for (name, labels), value in whole.items()
              if name.endswith("_count")}
    for key in sorted(whole.keys() & union.keys()):
        name, labels = key
        a, b = whole[key], union[key]
        if name.startswith(CLOCK_DERIVED) and (name.endswith("_sum") or "_max_" in name):
            runs = counts.get((name[:-len("_sum")], labels), 1) if name.endswith("_sum") else 1
            if abs(a - b) > 2 + 3 * runs:  # seconds between the exporters' polls, per run
                problems.append(f"{show(key)}: unfiltered {a}, shards {b}")
        elif a != b:
            problems.append(f"{show(key)}: unfiltered {a}, shards {b}")
    return problems


def test_disjoint_selections_add_up_to_the_unfiltered_exporter(prefect, shards, start_exporter):
    pattern = shards["pattern"]
    whole = start_exporter()
    shard_a = start_exporter(["--prefect.work-pool-include", pattern])
    rest = start_exporter(["--prefect.work-pool-exclude", pattern])

    # Runs that finish after every exporter started feed the counters and the duration and
    # start-delay histograms of all three alike.
    deps = shards["deps"]
    prefect.run_in_state(deps["a1"], "COMPLETED")
    prefect.run_in_state(deps["a2"], "FAILED")
    prefect.run_in_state(deps["b"], "COMPLETED")
    adhoc = prefect.create_adhoc_run(f"adhoc-shard-{shards['token']}-done", "RUNNING")
    prefect.set_state(adhoc["id"], "COMPLETED")
    seeded = time.time()
    for exporter in (whole, shard_a, rest):
        exporter.wait_fresh_poll(after=seeded, timeout=30)

    pools = shards["pools"]
    deployment_names = {d["full_name"] for d in deps.values()}
    last: dict[str, object] = {}

    def consistent() -> bool:
        # Scraped back to back; the polls behind them are at most about a poll interval apart.
        s_whole, s_a, s_rest = (prefect_series(e.scrape()) for e in (whole, shard_a, rest))
        last["both"] = sorted(s_a.keys() & s_rest.keys())
        if last["both"]:
            return True  # no need to wait: fails just below
        union = {**s_a, **s_rest}
        scoped_whole = {k: v for k, v in s_whole.items() if in_scope(k, pools, deployment_names)}
        scoped_union = {k: v for k, v in union.items() if in_scope(k, pools, deployment_names)}
        last.update(whole=scoped_whole, union=scoped_union, a=s_a, rest=s_rest)
        last["problems"] = differences(scoped_whole, scoped_union)
        return not last["problems"]

    wait_for(consistent, timeout=30, interval=1.0,
             message=lambda: "the shards' union to equal the unfiltered exporter; differences:\n  "
             + "\n  ".join(last.get("problems", [])[:40]))

    assert not last["both"], "series in both shards: " + ", ".join(show(k) for k in last["both"][:20])

    # The include shard reports its pools and nothing else, not even runs with no pool.
    a_pools = {dict(labels).get("work_pool") for (_, labels) in last["a"]} - {None}
    assert a_pools == shards["a_pools"], f"include shard reports pools {sorted(a_pools)}"
    rest_pools = {dict(labels).get("work_pool") for (_, labels) in last["rest"]} - {None}
    assert not rest_pools & shards["a_pools"], f"exclude shard reports {sorted(rest_pools & shards['a_pools'])}"
    assert shards["pool_b"] in rest_pools and "" in rest_pools

    # And the comparison covered real data, not only zero-filled series.
    union = last["union"]
    a1, a2, b = shards["pool_a1"], shards["pool_a2"], shards["pool_b"]

    def value(name: str, **labels: str) -> float:
        return union.get((name, frozenset(labels.items())), float("nan"))

    dep = {k: d["full_name"] for k, d in deps.items()}
    assert value("prefect_flow_runs", work_pool=a1, work_queue="default", deployment=dep["a1"],
                 state_type="RUNNING", state_name="Running") == 1
    assert value("prefect_flow_runs", work_pool=a1, work_queue="qa", deployment=dep["a1q"],
                 state_type="PAUSED", state_name="Paused") == 1
    assert value("prefect_flow_runs_late", work_pool=b, work_queue="default", deployment=dep["b"]) == 1
    assert value("prefect_flow_runs_upcoming", work_pool=a2, work_queue="default") == 1
    assert value("prefect_flow_runs_finished_total", work_pool=a1, work_queue="default", deployment=dep["a1"],
                 state_type="COMPLETED") == 1
    assert value("prefect_flow_runs_finished_total", work_pool=a2, work_queue="default", deployment=dep["a2"],
                 state_type="FAILED") == 1
    assert value("prefect_flow_runs_finished_total", work_pool="", work_queue="", deployment="",
                 state_type="COMPLETED") >= 1
    assert value("prefect_work_pool_workers", work_pool=a2, status="ONLINE") == 1
    assert sum(v for (n, l), v in union.items()
               if n == "prefect_flow_runs" and dict(l)["work_pool"] == "" and dict(l)["state_type"] == "RUNNING") >= 1
