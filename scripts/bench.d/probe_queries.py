#!/usr/bin/env python3
"""Times the flow-run queries whose cost on Prefect's side grows with history, in the shape the
exporter sends them (Sources/PrefectAPI/FlowRunQueries.swift) and in an equivalent shape, on
one queue of the seeded data. Prints one line per query: median of 5, and the result size.

  probe_queries.py --api URL [--pool bench-pool-00] [--queue default]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import httpx


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--pool", default="bench-pool-00")
    parser.add_argument("--queue", default="default")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    http = httpx.Client(base_url=args.api.rstrip("/"), timeout=60)
    queues = http.post(f"/work_pools/{args.pool}/queues/filter", json={}).json()
    queue_id = next(q["id"] for q in queues if q["name"] == args.queue)
    now = dt.datetime.now(dt.timezone.utc)
    since = iso(now - dt.timedelta(minutes=1))
    scheduled = {"state": {"type": {"any_": ["SCHEDULED"]}}, "next_scheduled_start_time": {"after_": iso(now)}}
    terminal = {"any_": ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]}
    page = {"limit": 200, "offset": 0}
    probes = [
        ("upcoming count, pool and queue by name (exporter)", "/flow_runs/count",
         {"flow_runs": scheduled, "work_pools": {"name": {"any_": [args.pool]}},
          "work_pool_queues": {"name": {"any_": [args.queue]}}}),
        ("upcoming count, queue by id (alternative)", "/flow_runs/count",
         {"flow_runs": scheduled, "work_pool_queues": {"id": {"any_": [queue_id]}}}),
        ("finished since 1 min, state type + end_time (exporter)", "/flow_runs/filter",
         {"flow_runs": {"state": {"type": terminal}, "end_time": {"after_": since}}, "sort": "END_TIME_DESC", **page}),
        ("finished since 1 min, end_time only (alternative)", "/flow_runs/filter",
         {"flow_runs": {"end_time": {"after_": since}}, "sort": "END_TIME_DESC", **page}),
    ]
    for name, path, body in probes:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            response = http.post(path, json=body)
            times.append(time.perf_counter() - start)
            response.raise_for_status()
        result = response.json()
        size = result if isinstance(result, int) else f"{len(result)} runs"
        print(f"  probe{args.label}: {name:<56} {statistics.median(times) * 1000:8.1f} ms  (result: {size})")


if __name__ == "__main__":
    main()
