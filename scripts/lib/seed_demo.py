#!/usr/bin/env python3
"""Demo data for a local Prefect server (used by scripts/demo).

    seed_demo.py seed [--api-url URL]   create pools, queues, deployments and runs, then exit
    seed_demo.py loop [--api-url URL]   play a worker and a scheduler until killed

What the demo shows:
  - work pool ``demo-healthy`` with a worker that heartbeats and polls its queues. The loop
    schedules runs, picks them up, runs them for a few seconds to a minute and finishes them
    (mostly Completed, sometimes Failed, rarely Crashed), so counters and histograms move.
    Its queue ``paused`` is paused, with runs waiting in it; some runs are scheduled hours ahead.
  - work pool ``demo-no-worker`` with no worker at all: its runs are late and get later; the loop
    adds a new one every minute. This is what makes ``PrefectFlowRunsLate`` fire.
  - ad-hoc runs (no deployment, pool or queue), as a script calling a flow directly makes.

Only httpx is needed (it comes with prefect in .venv/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import signal
import sys
import time

import httpx

HEALTHY = "demo-healthy"
NO_WORKER = "demo-no-worker"
WORKER = "demo-worker-1"
HEARTBEAT_SECONDS = 10


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class Prefect:
    def __init__(self, api_url: str):
        self.http = httpx.Client(base_url=api_url.rstrip("/"), timeout=30)

    def call(self, method: str, path: str, json=None, ok=(200, 201, 204), tolerate=()):
        for attempt in range(10):
            try:
                r = self.http.request(method, path, json=json)
            except httpx.TransportError:
                if attempt == 9:
                    raise
                time.sleep(0.5 * (attempt + 1))
                continue
            if r.status_code == 503 and attempt < 9:  # SQLite busy
                time.sleep(0.3 * (attempt + 1))
                continue
            break
        if r.status_code in tolerate:
            return None
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    # --- objects ---------------------------------------------------------------------------

    def pool(self, name: str, **fields) -> dict:
        self.call("POST", "/work_pools/", {"name": name, "type": "process", **fields}, tolerate=(409,))
        return self.call("GET", f"/work_pools/{name}")

    def queue(self, pool: str, name: str, **fields) -> dict:
        q = self.call("POST", f"/work_pools/{pool}/queues", {"name": name, **fields}, tolerate=(409,))
        return q or self.call("GET", f"/work_pools/{pool}/queues/{name}")

    def deployment(self, flow: str, name: str, pool: str, queue: str) -> dict:
        f = self.call("POST", "/flows/", {"name": flow})
        return self.call("POST", "/deployments/", {"name": name, "flow_id": f["id"],
                                                   "work_pool_name": pool, "work_queue_name": queue})

    def deployments(self, pool: str) -> list[dict]:
        return self.call("POST", "/deployments/filter", {"work_pools": {"name": {"any_": [pool]}}})

    def schedule(self, dep: dict, at: dt.datetime, name: str = "Scheduled") -> dict:
        return self.call("POST", f"/deployments/{dep['id']}/create_flow_run", {
            "state": {"type": "SCHEDULED", "name": name, "state_details": {"scheduled_time": iso(at)}}})

    def set_state(self, run_id: str, state_type: str, name: str | None = None, message: str | None = None) -> dict:
        state = {"type": state_type}
        if name:
            state["name"] = name
        if message:
            state["message"] = message
        return self.call("POST", f"/flow_runs/{run_id}/set_state", {"state": state, "force": True})

    def adhoc(self, flow: str) -> dict:
        f = self.call("POST", "/flows/", {"name": flow})
        return self.call("POST", "/flow_runs/", {"flow_id": f["id"], "state": {"type": "RUNNING"}})

    def heartbeat(self) -> None:
        self.call("POST", f"/work_pools/{HEALTHY}/workers/heartbeat",
                  {"name": WORKER, "heartbeat_interval_seconds": HEARTBEAT_SECONDS})

    def runs(self, body: dict) -> list[dict]:
        return self.call("POST", "/flow_runs/filter", {"limit": 200, **body})


# --- seed --------------------------------------------------------------------------------------

def seed(p: Prefect) -> None:
    p.pool(HEALTHY, concurrency_limit=10)
    p.queue(HEALTHY, "critical", priority=1, concurrency_limit=5)
    p.queue(HEALTHY, "batch", priority=10)
    paused = p.queue(HEALTHY, "paused", priority=20)
    p.call("PATCH", f"/work_queues/{paused['id']}", {"is_paused": True})
    p.pool(NO_WORKER)
    p.queue(NO_WORKER, "default")

    etl = p.deployment("etl", "hourly", HEALTHY, "critical")
    p.deployment("reports", "daily", HEALTHY, "batch")
    p.deployment("ml-training", "nightly", HEALTHY, "batch")
    parked = p.deployment("backfill", "manual", HEALTHY, "paused")
    orphan_a = p.deployment("sync-crm", "every-5m", NO_WORKER, "default")
    orphan_b = p.deployment("billing", "hourly", NO_WORKER, "default")

    t = now()
    # Upcoming runs, hours ahead.
    for h in (1, 2, 3):
        p.schedule(etl, t + dt.timedelta(hours=h))
    # Runs waiting in the paused queue.
    for m in (3, 8):
        p.schedule(parked, t - dt.timedelta(minutes=m))
    # Late runs in the pool nobody serves: 1 to 30 minutes late.
    for m in (1, 4, 9, 17, 30):
        p.schedule(random.choice((orphan_a, orphan_b)), t - dt.timedelta(minutes=m))
    # An ad-hoc run still going.
    p.adhoc("adhoc-script")
    p.heartbeat()
    print(f"seeded pools {HEALTHY}, {NO_WORKER}; {len(p.deployments(HEALTHY)) + len(p.deployments(NO_WORKER))} deployments",
          flush=True)


# --- loop --------------------------------------------------------------------------------------

def loop(p: Prefect) -> None:
    deps = [d for d in p.deployments(HEALTHY) if d["work_queue_name"] != "paused"]
    orphans = p.deployments(NO_WORKER)
    running: dict[str, float] = {}  # run id -> when to finish
    adhoc: dict[str, float] = {}
    last_heartbeat = last_orphan = last_adhoc = 0.0
    next_schedule = 0.0
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    while not stop:
        mono = time.monotonic()
        try:
            if mono - last_heartbeat >= HEARTBEAT_SECONDS / 2:
                p.heartbeat()
                last_heartbeat = mono
            # A scheduler: a new run every few seconds, due in 0-20 s.
            if mono >= next_schedule:
                p.schedule(random.choice(deps), now() + dt.timedelta(seconds=random.uniform(0, 20)))
                next_schedule = mono + random.uniform(3, 8)
            # The worker: take what is due (this is the worker polling call: it marks the
            # queues READY, as a real worker does) and start it after a short delay.
            for run in p.call("POST", f"/work_pools/{HEALTHY}/get_scheduled_flow_runs",
                              {"scheduled_before": iso(now()), "limit": 10}) or []:
                fr = run["flow_run"]
                if fr["id"] in running:
                    continue
                p.set_state(fr["id"], "PENDING")
                p.set_state(fr["id"], "RUNNING")
                running[fr["id"]] = mono + random.choice((5, 10, 20, 40, 70))
            for rid, due in list(running.items()):
                if mono >= due:
                    roll = random.random()
                    if roll < 0.80:
                        p.set_state(rid, "COMPLETED")
                    elif roll < 0.97:
                        p.set_state(rid, "FAILED", message="demo failure")
                    else:
                        p.set_state(rid, "CRASHED", message="demo crash")
                    del running[rid]
            # The pool without a worker gets a new run each minute; they all stay late.
            if mono - last_orphan >= 60 and orphans:
                p.schedule(random.choice(orphans), now())
                last_orphan = mono
            # Ad-hoc runs now and then.
            if mono - last_adhoc >= 45:
                adhoc[p.adhoc("adhoc-script")["id"]] = mono + 30
                last_adhoc = mono
            for rid, due in list(adhoc.items()):
                if mono >= due:
                    p.set_state(rid, "COMPLETED")
                    del adhoc[rid]
        except (httpx.HTTPError, RuntimeError) as exc:
            print(f"seed_demo loop: {exc}", file=sys.stderr, flush=True)
        time.sleep(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("seed", "loop"))
    ap.add_argument("--api-url", default="http://127.0.0.1:4200/api")
    args = ap.parse_args()
    p = Prefect(args.api_url)
    if args.command == "seed":
        seed(p)
    else:
        loop(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
