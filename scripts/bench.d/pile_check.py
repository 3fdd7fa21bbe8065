#!/usr/bin/env python3
"""Ground truth of the pile-up size (P) of scripts/bench: compares the late-run series of a
/metrics page of the real exporter with Prefect's own /flow_runs/count for the same sets.

  pile_check.py --api URL --metrics FILE [--late-after 15] [--label L] [--json OUT]

Exact checks (the seeded set does not move: every overdue run is at least 10 minutes overdue, every
future run at least an hour ahead, nothing runs them):
  - sum of prefect_flow_runs_late = SCHEDULED runs due more than --late-after ago;
  - prefect_flow_runs{state_type="SCHEDULED"} by state name = SCHEDULED runs due, by state name;
  - prefect_flow_runs_late per work pool and queue, and per deployment.
Window checks (these move with the clock): the lateness histogram, bucket by bucket, summed over
the queues, and the maximum lateness must lie between Prefect's answer at the start and at the
end of the poll that produced the page (prefect_exporter_last_poll_success_timestamp_seconds
minus prefect_exporter_poll_duration_seconds, with a second of slack either side).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from collections import defaultdict

import httpx

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in LABEL.findall(m.group(2) or "")}
            out.append((labels, float(m.group(3))))
    return out


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--late-after", type=float, default=15)
    parser.add_argument("--label", default="")
    parser.add_argument("--json")
    args = parser.parse_args()
    text = open(args.metrics).read()
    http = httpx.Client(base_url=args.api.rstrip("/"), timeout=120)
    calls = 0

    def count(flow_runs: dict, **extra) -> int:
        nonlocal calls
        calls += 1
        r = http.post("/flow_runs/count", json={"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}, **flow_runs}, **extra})
        r.raise_for_status()
        return r.json()

    def paged(path: str) -> list[dict]:
        out: list[dict] = []
        while True:
            page = http.post(path, json={"limit": 200, "offset": len(out)}).json()
            out.extend(page)
            if len(page) < 200:
                return out

    def before(t: float) -> dict:
        return {"next_scheduled_start_time": {"before_": iso(t)}}

    polls = sum(v for labels, v in samples(text, "prefect_exporter_polls_total") if labels.get("result") in ("success", "partial"))
    end = next((v for _, v in samples(text, "prefect_exporter_last_poll_success_timestamp_seconds")), None)
    duration = next((v for _, v in samples(text, "prefect_exporter_poll_duration_seconds")), 0.0)
    if end is None or not samples(text, "prefect_flow_runs_late"):
        sys.exit(f"pile check{args.label}: the /metrics page has no answered poll or no prefect_flow_runs_late")
    start, end = end - duration - 1, end + 1
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    rows: list[tuple[str, object, object, bool]] = []  # (what, exporter, prefect, ok)

    late = sum(v for _, v in samples(text, "prefect_flow_runs_late"))
    truth = count(before(now - args.late_after))
    rows.append(("late runs (sum of prefect_flow_runs_late)", late, truth, late == truth))
    by_name: dict[str, float] = defaultdict(float)
    for labels, v in samples(text, "prefect_flow_runs"):
        if labels.get("state_type") == "SCHEDULED":
            by_name[labels.get("state_name", "")] += v
    due_total = count(before(now))
    rows.append(("due SCHEDULED runs (prefect_flow_runs, SCHEDULED)", sum(by_name.values()), due_total,
                 sum(by_name.values()) == due_total))
    for name in sorted(set(by_name) | {"Scheduled", "Late", "AwaitingRetry"}):
        truth = count({**before(now), "state": {"type": {"any_": ["SCHEDULED"]}, "name": {"any_": [name]}}})
        rows.append((f"  state_name={name}", by_name.get(name, 0), truth, by_name.get(name, 0) == truth))

    # Per queue and per deployment.
    pools = {p["id"]: p["name"] for p in paged("/work_pools/filter")}
    queues = paged("/work_queues/filter")
    flows = {f["id"]: f["name"] for f in paged("/flows/filter")}
    deployments = paged("/deployments/filter")
    late_by_queue: dict[tuple[str, str], float] = defaultdict(float)
    late_by_deployment: dict[str, float] = defaultdict(float)
    for labels, v in samples(text, "prefect_flow_runs_late"):
        late_by_queue[(labels.get("work_pool", ""), labels.get("work_queue", ""))] += v
        late_by_deployment[labels.get("deployment", "")] += v
    wrong_queues = []
    for q in queues:
        key = (pools.get(q.get("work_pool_id"), ""), q["name"])
        truth = count(before(now - args.late_after), work_pool_queues={"id": {"any_": [q["id"]]}})
        if late_by_queue.get(key, 0) != truth:
            wrong_queues.append(f"{key[0]}/{key[1]}: {late_by_queue.get(key, 0):.0f} != {truth}")
    rows.append((f"late runs per queue ({len(queues)} queues)", f"{len(queues) - len(wrong_queues)} equal",
                 f"{len(queues)}", not wrong_queues))
    wrong_deployments = []
    for d in deployments:
        name = f"{flows.get(d['flow_id'], '?')}/{d['name']}"
        truth = count(before(now - args.late_after), deployments={"id": {"any_": [d["id"]]}})
        if late_by_deployment.get(name, 0) != truth:
            wrong_deployments.append(f"{name}: {late_by_deployment.get(name, 0):.0f} != {truth}")
    rows.append((f"late runs per deployment ({len(deployments)})", f"{len(deployments) - len(wrong_deployments)} equal",
                 f"{len(deployments)}", not wrong_deployments))

    # The lateness histogram, summed over queues: bucket le counts late runs at most le overdue.
    buckets: dict[float, float] = defaultdict(float)
    for labels, v in samples(text, "prefect_flow_run_lateness_seconds_bucket"):
        buckets[float(labels["le"])] += v
    wrong_buckets = []
    late_start, late_end = count(before(start - args.late_after)), count(before(end - args.late_after))
    for le in sorted(buckets):
        if math.isinf(le):
            lo, hi = late_start, late_end
        else:  # late now minus more than le overdue: shrinks as time passes
            hi = late_start - count(before(start - le))
            lo = late_end - count(before(end - le))
            lo, hi = min(lo, hi), max(lo, hi)
        if not lo <= buckets[le] <= hi:
            wrong_buckets.append(f"le={le:g}: {buckets[le]:.0f} not in [{lo}, {hi}]")
    rows.append((f"lateness histogram buckets ({len(buckets)}) within the poll's window",
                 f"{len(buckets) - len(wrong_buckets)} within", f"{len(buckets)}", bool(buckets) and not wrong_buckets))
    first = http.post("/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                                                 "sort": "NEXT_SCHEDULED_START_TIME_ASC", "limit": 1}).json()
    max_lateness = max((v for _, v in samples(text, "prefect_flow_run_max_lateness_seconds")), default=0.0)
    if first:
        earliest = dt.datetime.fromisoformat(first[0]["next_scheduled_start_time"].replace("Z", "+00:00")).timestamp()
        lo, hi = start - earliest, end - earliest
        rows.append(("max lateness (s) within the poll's window", f"{max_lateness:.1f}", f"[{lo:.1f}, {hi:.1f}]",
                     lo <= max_lateness <= hi))

    ok = all(r[3] for r in rows)
    print(f"  pile check{args.label}: the exporter's /metrics after its answered poll {polls:.0f} (which took {duration:.1f}s) "
          f"vs Prefect's /flow_runs/count ({calls} counts)")
    for what, exporter, prefect, good in rows:
        print(f"    {'EQUAL ' if good else 'DIFFER'} {what:<58} exporter {exporter!s:>12}   prefect {prefect!s:>12}")
    for detail in (wrong_queues + wrong_deployments + wrong_buckets)[:10]:
        print(f"      {detail}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ok": ok, "rows": [[w, str(e), str(p), g] for w, e, p, g in rows],
                       "late": late, "due": due_total, "polls": polls}, f)


if __name__ == "__main__":
    main()
