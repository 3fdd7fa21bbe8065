#!/usr/bin/env python3
"""Seeds a Prefect server for scripts/bench (poll path). Not a test: it builds data sets.

Subcommands
  base   --api URL   pools, queues and deployments, and through the REST API the runs that
                     matter to a poll: future SCHEDULED runs, late runs (SCHEDULED in the past),
                     RUNNING runs, plus finished "template" runs (COMPLETED/FAILED/CRASHED/
                     CANCELLED, some ad hoc with no pool) that `grow` copies.
  wide   --api URL   more pools, queues and deployments (the "many objects" variant).
  grow   --db PATH --total N
                     with the server STOPPED: copies finished template runs directly in the
                     SQLite database until flow_run holds N rows. Each copy gets a new id,
                     name and state row (flow_run.state_id -> flow_run_state, which the API
                     joins to return `state`), and its times moved back into the past, so it
                     is history: it ended long before any poll's window.
  counts --api URL   run counts by state type, for the log.

Pile-up of overdue runs (size P of scripts/bench, issue 10), on a fresh server of its own:
  pile      --api URL
                     5 pools x 4 queues, 50 deployments spread over the 20 queues, and through the
                     REST API: overdue SCHEDULED "template" runs (10 minutes to 5 days overdue;
                     state names Late and Scheduled, 2% AwaitingRetry), future SCHEDULED runs
                     (2 hours to 2 days ahead), RUNNING runs and finished runs.
  pile-grow --db PATH --overdue N
                     with the server STOPPED: copies the overdue templates in the SQLite database
                     until N SCHEDULED runs are overdue. Each copy gets a new id and name, a new
                     flow_run_state row (state_id, state_type/state_name and the state's
                     scheduled_time agree), and its own scheduled time, spread uniformly from 10
                     minutes to 5 days in the past (expected_start_time = next_scheduled_start_time).
                     Queue, deployment, flow and state name are the template's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
import time
import uuid

import httpx

TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
DB_TIME = "%Y-%m-%d %H:%M:%S.%f"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class API:
    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=60)
        self.calls = 0

    def post(self, path: str, body: dict | None = None, ok: tuple[int, ...] = (200, 201)) -> object:
        for attempt in range(10):
            self.calls += 1
            r = self.http.post(path, json=body or {})
            if r.status_code in (503, 429) and attempt < 9:
                time.sleep(0.2 * (attempt + 1))
                continue
            if r.status_code not in ok:
                sys.exit(f"seed: POST {path} -> {r.status_code}: {r.text[:500]}")
            return r.json() if r.content else None
        raise AssertionError("unreachable")

    def pool(self, name: str) -> None:
        self.post("/work_pools/", {"name": name, "type": "process"}, ok=(200, 201, 409))

    def queue(self, pool: str, name: str) -> None:
        if name != "default":  # every pool is created with a "default" queue
            self.post(f"/work_pools/{pool}/queues", {"name": name}, ok=(200, 201, 409))

    def flow(self, name: str) -> dict:
        return self.post("/flows/", {"name": name})

    def deployment(self, flow: dict, name: str, pool: str, queue: str) -> dict:
        return self.post("/deployments/", {"name": name, "flow_id": flow["id"], "work_pool_name": pool,
                                           "work_queue_name": queue})

    def scheduled_run(self, deployment: dict, when: dt.datetime, name: str = "Scheduled") -> dict:
        return self.post(f"/deployments/{deployment['id']}/create_flow_run",
                         {"state": {"type": "SCHEDULED", "name": name,
                                    "state_details": {"scheduled_time": iso(when)}}})

    def set_state(self, run_id: str, state_type: str) -> None:
        result = self.post(f"/flow_runs/{run_id}/set_state", {"state": {"type": state_type}, "force": True})
        if result.get("status") != "ACCEPT":
            sys.exit(f"seed: set_state {state_type} on {run_id}: {result}")


def base(args: argparse.Namespace) -> None:
    api = API(args.api)
    started = time.monotonic()
    deployments: list[dict] = []
    for p in range(args.pools):
        pool = f"bench-pool-{p:02d}"
        api.pool(pool)
        for q in range(args.queues_per_pool):
            queue = "default" if q == 0 else f"queue-{q}"
            api.queue(pool, queue)
            flow = api.flow(f"bench-flow-{p:02d}")
            deployments.append(api.deployment(flow, f"deploy-{p:02d}-{q}", pool, queue))
    t = now()
    for i in range(args.future):  # a few hundred future runs, up to a day ahead
        api.scheduled_run(deployments[i % len(deployments)], t + dt.timedelta(minutes=5 + i * 1440 / max(1, args.future)))
    for i in range(args.late):  # late: scheduled between 1 minute and 2 hours ago
        api.scheduled_run(deployments[i % len(deployments)], t - dt.timedelta(minutes=1 + i * 120 / max(1, args.late)))
    for i in range(args.running):
        run = api.scheduled_run(deployments[i % len(deployments)], t)
        api.set_state(run["id"], "PENDING")
        api.set_state(run["id"], "RUNNING")
    adhoc_flow = api.flow("bench-adhoc")
    for i in range(args.templates):
        # Mostly COMPLETED, then FAILED, a few CRASHED and CANCELLED; one in ten ad hoc (no pool).
        state = TERMINAL[[0, 0, 0, 0, 0, 0, 1, 1, 2, 3][i % 10]]
        if i % 10 == 9:
            run = api.post("/flow_runs/", {"flow_id": adhoc_flow["id"], "state": {"type": "RUNNING"}})
        else:
            run = api.scheduled_run(deployments[i % len(deployments)], t)
            api.set_state(run["id"], "PENDING")
            api.set_state(run["id"], "RUNNING")
        api.set_state(run["id"], state)
    print(f"seed base: {args.pools} pools, {len(deployments)} queues and deployments, {args.future} future, "
          f"{args.late} late, {args.running} running, {args.templates} finished templates "
          f"({api.calls} API calls, {time.monotonic() - started:.1f}s)")


def wide(args: argparse.Namespace) -> None:
    api = API(args.api)
    started = time.monotonic()
    pools = [f"bench-pool-{p:02d}" for p in range(args.pools)]
    queues = [(pool, "default" if q == 0 else f"queue-{q}") for pool in pools for q in range(args.queues_per_pool)]
    existing = len(deployments_of(api))
    for pool in pools:
        api.pool(pool)
    for pool, queue in queues:
        api.queue(pool, queue)
    flows = [api.flow(f"bench-flow-{f:03d}") for f in range(max(1, args.deployments // 10))]
    created = 0
    for d in range(args.deployments - existing):
        name = f"wide-{d:04d}"
        pool, queue = queues[d % len(queues)]
        api.deployment(flows[d % len(flows)], name, pool, queue)
        created += 1
    total = len(deployments_of(api))
    print(f"seed wide: {len(pools)} pools, {len(queues)} queues, {total} deployments in total "
          f"({created} created, {api.calls} API calls, {time.monotonic() - started:.1f}s)")


def deployments_of(api: API) -> list[dict]:
    return paged(api, "/deployments/filter")


def parse_db_time(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    text = text.replace("T", " ")
    for fmt in (DB_TIME, "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(text[:26], fmt)
        except ValueError:
            continue
    raise ValueError(f"unexpected time format in the database: {text!r}")


def shift(text: str | None, delta: dt.timedelta) -> str | None:
    value = parse_db_time(text)
    return None if value is None else (value - delta).strftime(DB_TIME)


def insert_copies(db, run_columns, run_rows, state_columns, state_rows):
    """Inserts copied flow runs and their states in one transaction, then checkpoints the WAL."""
    with db:
        db.executemany(f"INSERT INTO flow_run_state ({','.join(state_columns)}) VALUES ({','.join('?' * len(state_columns))})",
                       state_rows)
        db.executemany(f"INSERT INTO flow_run ({','.join(run_columns)}) VALUES ({','.join('?' * len(run_columns))})",
                       run_rows)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def grow(args: argparse.Namespace) -> None:
    started = time.monotonic()
    db = sqlite3.connect(args.db, timeout=60)
    db.row_factory = sqlite3.Row
    have = db.execute("SELECT count(*) FROM flow_run").fetchone()[0]
    need = args.total - have
    if need <= 0:
        print(f"seed grow: flow_run already holds {have} rows (asked for {args.total})")
        return
    placeholders = ",".join("?" * len(TERMINAL))
    # Templates: the finished runs `base` made (copies are named bench-copy-<n>-<template> and are skipped).
    templates = db.execute(
        f"SELECT * FROM flow_run WHERE state_type IN ({placeholders}) AND name NOT LIKE 'bench-copy-%' ORDER BY id",
        TERMINAL).fetchall()
    if not templates:
        sys.exit("seed grow: no finished runs to copy; run `seed.py base` first")
    states = {row["id"]: row for row in db.execute(
        f"SELECT * FROM flow_run_state WHERE id IN (SELECT state_id FROM flow_run WHERE state_type IN ({placeholders}))",
        TERMINAL)}
    run_columns = templates[0].keys()
    state_columns = next(iter(states.values())).keys()
    run_times = [c for c in ("expected_start_time", "next_scheduled_start_time", "start_time", "end_time",
                             "state_timestamp", "created", "updated") if c in run_columns]
    state_times = [c for c in ("timestamp", "created", "updated") if c in state_columns]
    # Copies start where earlier grows stopped, so a second grow keeps moving further back.
    first = db.execute("SELECT count(*) FROM flow_run WHERE name LIKE 'bench-copy-%'").fetchone()[0]
    run_rows, state_rows = [], []
    for n in range(first, first + need):
        template = templates[n % len(templates)]
        state = states[template["state_id"]]
        # Spread history back in time: copy n ended 2 hours + n * 20 s before its template.
        delta = dt.timedelta(hours=2, seconds=20 * n)
        run_id, state_id = str(uuid.uuid4()), str(uuid.uuid4())
        run = dict(template)
        run.update(id=run_id, name=f"bench-copy-{n}-{template['name']}", state_id=state_id, idempotency_key=None)
        for column in run_times:
            run[column] = shift(template[column], delta)
        new_state = dict(state)
        new_state.update(id=state_id, flow_run_id=run_id)
        for column in state_times:
            new_state[column] = shift(state[column], delta)
        details = json.loads(state["state_details"] or "{}")
        if "flow_run_id" in details:
            details["flow_run_id"] = run_id
        new_state["state_details"] = json.dumps(details)
        run_rows.append(tuple(run[c] for c in run_columns))
        state_rows.append(tuple(new_state[c] for c in state_columns))
    insert_copies(db, run_columns, run_rows, state_columns, state_rows)
    total = db.execute("SELECT count(*) FROM flow_run").fetchone()[0]
    db.close()
    print(f"seed grow: copied {need} finished runs from {len(templates)} templates; flow_run now holds {total} rows "
          f"({time.monotonic() - started:.1f}s)")


# Seconds overdue, at the time of seeding. At least 10 minutes: every run is late (--prefect.late-after
# is 15s), and none is in the window that the exporter lists again each poll (the last 120 s plus
# the poll interval), at any step, so that two steps differ only by the size of the pile.
PILE_MIN_OVERDUE = 600.0
PILE_MAX_OVERDUE = 5 * 86400.0
PILE_COPY = "pile-copy-"


def pile_overdue(n: int) -> float:
    """Seconds overdue of the n-th pile run: a low-discrepancy sequence, uniform over 10 minutes..5 days."""
    u = ((n + 0.5) * 0.6180339887498949) % 1.0
    return PILE_MIN_OVERDUE + u * (PILE_MAX_OVERDUE - PILE_MIN_OVERDUE)


def pile_state_name(n: int) -> str:
    """Late for most (Prefect's late-runs service renames overdue Scheduled runs), Scheduled for
    the runs it has not reached yet, a few AwaitingRetry (a retry scheduled after a failure)."""
    if n % 50 == 49:
        return "AwaitingRetry"
    return "Scheduled" if n % 5 in (1, 3) else "Late"


def pile(args: argparse.Namespace) -> None:
    api = API(args.api)
    started = time.monotonic()
    queues = []
    for p in range(args.pools):
        pool = f"pile-pool-{p}"
        api.pool(pool)
        for q in range(args.queues_per_pool):
            queue = "default" if q == 0 else f"queue-{q}"
            api.queue(pool, queue)
            queues.append((pool, queue))
    flows = [api.flow(f"pile-flow-{f}") for f in range(args.flows)]
    deployments = []
    for d in range(args.deployments):  # deployment d in queue d mod 20: 2 or 3 deployments per queue
        pool, queue = queues[d % len(queues)]
        deployments.append(api.deployment(flows[d % len(flows)], f"pile-deploy-{d:02d}", pool, queue))
    t = now()
    for i in range(args.overdue):
        api.scheduled_run(deployments[i % len(deployments)], t - dt.timedelta(seconds=pile_overdue(i)), pile_state_name(i))
    for i in range(args.future):  # 2 hours to 2 days ahead: none becomes due during the benchmark
        api.scheduled_run(deployments[i % len(deployments)], t + dt.timedelta(hours=2 + i * 46 / max(1, args.future)))
    for i in range(args.running):
        run = api.scheduled_run(deployments[(7 * i) % len(deployments)], t)
        api.set_state(run["id"], "PENDING")
        api.set_state(run["id"], "RUNNING")
    for i in range(args.finished):
        run = api.scheduled_run(deployments[(3 * i) % len(deployments)], t)
        api.set_state(run["id"], "PENDING")
        api.set_state(run["id"], "RUNNING")
        api.set_state(run["id"], TERMINAL[[0, 0, 0, 0, 0, 0, 1, 1, 2, 3][i % 10]])
    print(f"seed pile: {args.pools} pools, {len(queues)} queues, {len(deployments)} deployments; {args.overdue} overdue "
          f"templates, {args.future} future, {args.running} running, {args.finished} finished "
          f"({api.calls} API calls, {time.monotonic() - started:.1f}s)")


def pile_grow(args: argparse.Namespace) -> None:
    started = time.monotonic()
    db = sqlite3.connect(args.db, timeout=60)
    db.row_factory = sqlite3.Row
    t = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)  # the database holds naive UTC times
    due = "state_type = 'SCHEDULED' AND next_scheduled_start_time < ?"
    have = db.execute(f"SELECT count(*) FROM flow_run WHERE {due}", (t.strftime(DB_TIME),)).fetchone()[0]
    need = args.overdue - have
    if need <= 0:
        print(f"seed pile-grow: {have} runs are already overdue (asked for {args.overdue})")
        return
    templates = db.execute(f"SELECT * FROM flow_run WHERE {due} AND name NOT LIKE '{PILE_COPY}%' ORDER BY id",
                           (t.strftime(DB_TIME),)).fetchall()
    if not templates:
        sys.exit("seed pile-grow: no overdue runs to copy; run `seed.py pile` first")
    states = {row["id"]: row for row in db.execute(
        f"SELECT * FROM flow_run_state WHERE id IN (SELECT state_id FROM flow_run WHERE {due})", (t.strftime(DB_TIME),))}
    run_columns = templates[0].keys()
    state_columns = next(iter(states.values())).keys()
    first = db.execute(f"SELECT count(*) FROM flow_run WHERE name LIKE '{PILE_COPY}%'").fetchone()[0]
    run_rows, state_rows = [], []
    for n in range(first, first + need):
        template = templates[n % len(templates)]
        state = states[template["state_id"]]
        scheduled = t - dt.timedelta(seconds=pile_overdue(n + 7919))  # offset: not the templates' own times
        created = scheduled - dt.timedelta(hours=1)  # as if a scheduler had created it an hour ahead
        # When the run entered its state: Scheduled when created, Late when the late-runs service
        # found it (15 s after its start), AwaitingRetry 10 s before the retry is due.
        entered = {"Late": scheduled + dt.timedelta(seconds=15),
                   "AwaitingRetry": scheduled - dt.timedelta(seconds=10)}.get(template["state_name"], created)
        run_id, state_id = str(uuid.uuid4()), str(uuid.uuid4())
        run = dict(template)
        run.update(id=run_id, name=f"{PILE_COPY}{n}-{template['name']}", state_id=state_id, idempotency_key=None,
                   created=created.strftime(DB_TIME), updated=entered.strftime(DB_TIME),
                   expected_start_time=scheduled.strftime(DB_TIME), next_scheduled_start_time=scheduled.strftime(DB_TIME),
                   state_timestamp=entered.strftime(DB_TIME))
        new_state = dict(state)
        new_state.update(id=state_id, flow_run_id=run_id, timestamp=entered.strftime(DB_TIME),
                         created=entered.strftime(DB_TIME), updated=entered.strftime(DB_TIME))
        details = json.loads(state["state_details"] or "{}")
        details["flow_run_id"] = run_id
        details["scheduled_time"] = scheduled.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        new_state["state_details"] = json.dumps(details)
        run_rows.append(tuple(run[c] for c in run_columns))
        state_rows.append(tuple(new_state[c] for c in state_columns))
    insert_copies(db, run_columns, run_rows, state_columns, state_rows)
    overdue = db.execute(f"SELECT count(*) FROM flow_run WHERE {due}", (t.strftime(DB_TIME),)).fetchone()[0]
    total = db.execute("SELECT count(*) FROM flow_run").fetchone()[0]
    names = ", ".join(f"{name} {n}" for name, n in db.execute(
        f"SELECT state_name, count(*) FROM flow_run WHERE {due} GROUP BY state_name ORDER BY 2 DESC", (t.strftime(DB_TIME),)))
    db.close()
    print(f"seed pile-grow: copied {need} overdue runs from {len(templates)} templates; {overdue} overdue ({names}), "
          f"{total} runs in all ({time.monotonic() - started:.1f}s)")


def counts(args: argparse.Namespace) -> None:
    api = API(args.api)
    parts = []
    for state in ("SCHEDULED", "PENDING", "RUNNING", *TERMINAL):
        n = api.post("/flow_runs/count", {"flow_runs": {"state": {"type": {"any_": [state]}}}})
        parts.append(f"{state} {n}")
    late = api.post("/flow_runs/count", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}},
                                                       "next_scheduled_start_time": {"before_": iso(now())}}})
    total = api.post("/flow_runs/count", {})
    pools = len(paged(api, "/work_pools/filter"))
    queues = len(paged(api, "/work_queues/filter"))
    deployments = len(paged(api, "/deployments/filter"))
    print(f"prefect: {total} runs ({', '.join(parts)}; {late} SCHEDULED in the past); "
          f"{pools} pools, {queues} queues, {deployments} deployments")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"runs": total, "late": late, "shape": f"{pools}/{queues}/{deployments}"}, out)


def paged(api: API, path: str) -> list[dict]:
    out: list[dict] = []
    while True:
        page = api.post(path, {"limit": 200, "offset": len(out)})
        out.extend(page)
        if len(page) < 200:
            return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("base")
    p.add_argument("--api", required=True)
    p.add_argument("--pools", type=int, default=3)
    p.add_argument("--queues-per-pool", type=int, default=2)
    p.add_argument("--future", type=int, default=300)
    p.add_argument("--late", type=int, default=30)
    p.add_argument("--running", type=int, default=30)
    p.add_argument("--templates", type=int, default=100)
    p.set_defaults(func=base)
    p = sub.add_parser("wide")
    p.add_argument("--api", required=True)
    p.add_argument("--pools", type=int, default=50)
    p.add_argument("--queues-per-pool", type=int, default=4)
    p.add_argument("--deployments", type=int, default=1000, help="deployments in total")
    p.set_defaults(func=wide)
    p = sub.add_parser("grow")
    p.add_argument("--db", required=True)
    p.add_argument("--total", type=int, required=True)
    p.set_defaults(func=grow)
    p = sub.add_parser("pile")
    p.add_argument("--api", required=True)
    p.add_argument("--pools", type=int, default=5)
    p.add_argument("--queues-per-pool", type=int, default=4)
    p.add_argument("--flows", type=int, default=10)
    p.add_argument("--deployments", type=int, default=50)
    p.add_argument("--overdue", type=int, default=500, help="overdue template runs made through the REST API")
    p.add_argument("--future", type=int, default=300)
    p.add_argument("--running", type=int, default=30)
    p.add_argument("--finished", type=int, default=100)
    p.set_defaults(func=pile)
    p = sub.add_parser("pile-grow")
    p.add_argument("--db", required=True)
    p.add_argument("--overdue", type=int, required=True, help="overdue SCHEDULED runs wanted in all")
    p.set_defaults(func=pile_grow)
    p = sub.add_parser("counts")
    p.add_argument("--api", required=True)
    p.add_argument("--json", help="also write {runs, late, shape} to this file")
    p.set_defaults(func=counts)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
