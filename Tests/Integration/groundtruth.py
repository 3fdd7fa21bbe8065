"""Ground truth for the Prefect-derived families, computed from what Prefect holds.

``World.read(api, pools)`` reads a few work pools (their workers, queues, deployments and flow
runs) from the Prefect API; ``expected(world, ...)`` computes, for a poll made at a time within
``[t_lo, t_hi]``, every series the exporter must serve for those pools, the way the README
defines them; ``compare(scrape, expectation, families)`` lists the differences. Used by the
collector-isolation and pile-up tests.

Values that move with time (lateness, running time, which runs are due, which histogram bucket a
run is in) are evaluated at ``t_lo``, ``t_hi`` and at every event between them (a run becoming
due, late, or crossing a bucket bound), so an expectation is either one exact value or the range
of values the series took within the window. The window is the exporter's poll time, read from
its own metrics (``poll_window``); it is a second or two wide.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from harness import PrefectAPI, Scrape, _norm_le, parse_time

# Families by collector (docs: /work/spec/issue10.md and README "On a bad day", "Collectors").
# Histogram and counter families are named by their sample names' stem; ``family_of`` maps
# samples to them.
COLLECTOR_FAMILIES: dict[str, tuple[str, ...]] = {
    "server_info": ("prefect_server_info",),
    "work_pools": ("prefect_work_pool_info", "prefect_work_pool_status", "prefect_work_pool_concurrency_limit",
                   "prefect_work_pool_active_slots"),
    "workers": ("prefect_work_pool_workers", "prefect_work_pool_last_worker_heartbeat_timestamp_seconds"),
    "work_queues": ("prefect_work_queue_status", "prefect_work_queue_concurrency_limit", "prefect_work_queue_priority",
                    "prefect_work_queue_last_polled_timestamp_seconds", "prefect_work_queue_active_slots"),
    "concurrency_limits": ("prefect_concurrency_limit", "prefect_concurrency_limit_active_slots",
                           "prefect_concurrency_limit_active"),
    "deployments": ("prefect_deployment_info", "prefect_deployment_status", "prefect_deployment_paused",
                    "prefect_deployment_active_schedules", "prefect_deployment_schedule_interval_seconds"),
    "deployment_schedules": ("prefect_deployment_has_scheduled_run",
                             "prefect_deployment_next_scheduled_run_timestamp_seconds",
                             "prefect_deployment_last_run_finished_timestamp_seconds"),
    "flow_runs_active": ("prefect_flow_runs", "prefect_flow_runs_late", "prefect_flow_run_lateness_seconds",
                         "prefect_flow_run_max_lateness_seconds", "prefect_flow_run_running_seconds",
                         "prefect_flow_run_max_running_seconds"),
    "flow_runs_upcoming": ("prefect_flow_runs_upcoming",),
    "flow_runs_finished": ("prefect_flow_runs_finished_total", "prefect_flow_run_start_delay_seconds",
                           "prefect_flow_run_duration_seconds"),
}
COLLECTORS = tuple(COLLECTOR_FAMILIES)
ALL_FAMILIES = frozenset(f for fs in COLLECTOR_FAMILIES.values() for f in fs)
FAMILY_COLLECTOR = {f: c for c, fs in COLLECTOR_FAMILIES.items() for f in fs}

KNOWN_STATE_NAMES = [
    ("SCHEDULED", "Scheduled"), ("SCHEDULED", "Late"), ("SCHEDULED", "AwaitingRetry"),
    ("SCHEDULED", "AwaitingConcurrencySlot"), ("PENDING", "Pending"), ("RUNNING", "Running"),
    ("RUNNING", "Retrying"), ("PAUSED", "Paused"), ("PAUSED", "Suspended"), ("CANCELLING", "Cancelling"),
]
NON_TERMINAL = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
LATENESS_BUCKETS = [15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400]
RUNNING_BUCKETS = [60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400]
START_DELAY_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]
DURATION_BUCKETS = [1, 5, 15, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400]


def family_of(sample: str) -> str | None:
    if sample in FAMILY_COLLECTOR:
        return sample
    for suffix in ("_bucket", "_sum", "_count", "_created"):
        if sample.endswith(suffix) and sample[: -len(suffix)] in FAMILY_COLLECTOR:
            return sample[: -len(suffix)]
    return None


@functools.lru_cache(maxsize=100_000)
def ts(s: str | None) -> float | None:
    """A Prefect timestamp as seconds since the epoch."""
    t = parse_time(s)
    return t.timestamp() if t is not None else None


# --------------------------------------------------------------------------------------------
# what Prefect holds


@dataclass
class World:
    """A few work pools as Prefect holds them, read in one go.

    Also, for the deployment_schedules and concurrency_limits families: the latest end time of
    each deployment's runs in each terminal state (all history, ``last_finished``), and the V2
    concurrency limits named in ``limit_names`` (limits are not tied to a pool; the shared
    server holds other tests' limits).
    """

    pools: list[str]
    version: str
    api_version: str
    work_pools: list[dict]
    workers: dict[str, list[dict]]
    queues: list[dict]
    deployments: list[dict]
    flow_names: dict[str, str]
    runs: list[dict]  # every non-terminal run, and the terminal ones that ended or started since ``since``
    since: float | None
    read_at: float = 0.0
    # (deployment id, terminal state type) -> latest end_time of its runs in that state
    last_finished: dict[tuple[str, str], float] = field(default_factory=dict)
    concurrency_limits: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, api: PrefectAPI, pools: Iterable[str], since: float | None = None,
             include_server: bool = True, limit_names: Iterable[str] = ()) -> "World":
        pools = sorted(pools)
        t0 = time.time()
        in_pools = {"name": {"any_": pools}}
        version = api.get("/admin/version") if include_server else ""
        api_version = api.get("/version") if include_server else ""
        work_pools = api.post("/work_pools/filter", {"work_pools": in_pools, "limit": 200})
        workers = {p: api.post(f"/work_pools/{p}/workers/filter", {"limit": 200}) for p in pools}
        queues: list[dict] = []
        for p in pools:
            queues += api.post(f"/work_pools/{p}/queues/filter", {"limit": 200})
        deployments = _paged(api, "/deployments/filter", {"work_pools": in_pools})
        flow_ids = sorted({d["flow_id"] for d in deployments})
        flows = api.post("/flows/filter", {"flows": {"id": {"any_": flow_ids}}, "limit": 200}) if flow_ids else []
        flow_names = {f["id"]: f["name"] for f in flows}
        runs = _paged(api, "/flow_runs/filter", {"work_pools": in_pools,
                                                 "flow_runs": {"state": {"type": {"any_": list(NON_TERMINAL)}}}})
        if since is not None:
            seen = {r["id"] for r in runs}
            for body in ({"end_time": {"after_": _iso(since - 5)}},
                         {"start_time": {"after_": _iso(since - 5), "is_null_": False}}):
                for r in _paged(api, "/flow_runs/filter", {"work_pools": in_pools, "flow_runs": body}):
                    if r["id"] not in seen:
                        seen.add(r["id"])
                        runs.append(r)
        last_finished: dict[tuple[str, str], float] = {}
        dep_ids = sorted(d["id"] for d in deployments)
        if dep_ids:
            for r in _paged(api, "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": dep_ids},
                                                                      "state": {"type": {"any_": list(TERMINAL)}},
                                                                      "end_time": {"is_null_": False}}}):
                key = (r["deployment_id"], r["state_type"])
                last_finished[key] = max(last_finished.get(key, float("-inf")), ts(r["end_time"]))
        limit_names = set(limit_names)
        limits = [c for c in _paged(api, "/v2/concurrency_limits/filter", {}) if c["name"] in limit_names] \
            if limit_names else []
        return cls(pools=pools, version=version, api_version=api_version, work_pools=work_pools, workers=workers,
                   queues=queues, deployments=deployments, flow_names=flow_names, runs=runs, since=since, read_at=t0,
                   last_finished=last_finished, concurrency_limits=limits)

    # -- derived -------------------------------------------------------------------------------

    def deployment_name(self, dep: dict) -> str:
        return f"{self.flow_names.get(dep['flow_id'], dep['flow_id'])}/{dep['name']}"

    @property
    def deployment_names(self) -> dict[str, str]:
        return {d["id"]: self.deployment_name(d) for d in self.deployments}

    def queue_key_by_id(self) -> dict[str, tuple[str, str]]:
        return {q["id"]: (q["work_pool_name"], q["name"]) for q in self.queues}

    def next_runs(self) -> dict[str, float]:
        """Deployment id -> next_scheduled_start_time of its earliest SCHEDULED run (deployments
        with one only)."""
        out: dict[str, float] = {}
        for r in self.runs:
            t = ts(r.get("next_scheduled_start_time"))
            dep = r.get("deployment_id")
            if r.get("state_type") == "SCHEDULED" and dep and t is not None:
                out[dep] = min(out.get(dep, t), t)
        return out

    def limit_labels(self, limit: dict, deployment_label: str = "name") -> dict[str, str]:
        """The ``kind`` and ``name`` labels of a V2 concurrency limit."""
        name = limit["name"]
        if name.startswith("tag:"):
            return {"kind": "tag", "name": name[4:]}
        if name.startswith("deployment:"):
            dep = name[len("deployment:"):]
            return {"kind": "deployment", "name": dep if deployment_label == "id" else self.deployment_names.get(dep, dep)}
        return {"kind": "global", "name": name}

    def fingerprint(self) -> Any:
        """What must not change between two reads for a scrape taken between them to be judged:
        everything but the wall clock."""
        def strip(items: list[dict], keys: tuple[str, ...]) -> list:
            return sorted(tuple(str(i.get(k)) for k in keys) for i in items)
        return (
            strip(self.work_pools, ("name", "type", "status", "is_paused", "concurrency_limit", "active_slots")),
            sorted((p, strip(w, ("name", "status", "last_heartbeat_time"))) for p, w in self.workers.items()),
            strip(self.queues, ("id", "name", "status", "is_paused", "concurrency_limit", "priority", "last_polled",
                                "active_slots")),
            strip(self.deployments, ("id", "name", "status", "paused", "work_queue_name", "work_pool_name",
                                     "schedules")),
            strip(self.runs, ("id", "state_type", "state_name", "next_scheduled_start_time", "work_queue_id",
                              "start_time", "end_time", "total_run_time")),
            sorted(self.last_finished.items()),
            strip(self.concurrency_limits, ("id", "name", "limit", "active", "active_slots")),
        )


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _paged(api: PrefectAPI, path: str, body: dict) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    offset = 0
    while True:
        page = api.post(path, {**body, "limit": 200, "offset": offset, "sort": "ID_DESC"} if "flow_runs" in path
                        else {**body, "limit": 200, "offset": offset})
        for item in page:
            if item["id"] not in seen:
                seen.add(item["id"])
                out.append(item)
        if len(page) < 200:
            return out
        offset += len(page)


# --------------------------------------------------------------------------------------------
# what the exporter must serve


@dataclass(frozen=True)
class Expect:
    lo: float
    hi: float
    optional: bool = False  # the series may be absent (it exists only at some times of the window)

    def ok(self, v: float | None) -> bool:
        if v is None:
            return self.optional
        tol = 1e-3 + 1e-9 * max(abs(self.lo), abs(self.hi))
        return self.lo - tol <= v <= self.hi + tol

    def __repr__(self) -> str:
        core = f"{self.lo:g}" if self.lo == self.hi else f"[{self.lo:g}, {self.hi:g}]"
        return core + ("?" if self.optional else "")


Key = tuple[str, frozenset]


@dataclass
class Settings:
    late_after: float = 15.0
    lateness_buckets: list[float] = field(default_factory=lambda: list(LATENESS_BUCKETS))
    # "name": runs carry flow/deployment; "id": the deployments were never read, runs carry the id.
    deployment_label: str = "name"


def _labels(**kw: str) -> frozenset:
    return frozenset(kw.items())


def _hist(out: dict[Key, float], name: str, labels: dict[str, str], bounds: list[float], values: list[float]) -> None:
    for b in bounds:
        out[(f"{name}_bucket", _labels(**labels, le=_le(b)))] = float(sum(1 for v in values if v <= b))
    out[(f"{name}_bucket", _labels(**labels, le="+Inf"))] = float(len(values))
    out[(f"{name}_count", _labels(**labels))] = float(len(values))
    out[(f"{name}_sum", _labels(**labels))] = float(sum(values))


def _le(b: float) -> str:
    return _norm_le(str(b))


def expected_at(world: World, t: float, settings: Settings, families: set[str]) -> dict[Key, float]:
    """Every series of ``families`` for the world's pools, for a poll made at time ``t``."""
    out: dict[Key, float] = {}
    pools = set(world.pools)
    names = world.deployment_names
    queue_of = world.queue_key_by_id()
    queue_keys = sorted({(q["work_pool_name"], q["name"]) for q in world.queues})

    def dep_label(run: dict) -> str:
        dep = run.get("deployment_id")
        if not dep:
            return ""
        if settings.deployment_label == "id":
            return dep
        return names.get(dep, dep)

    def run_queue(run: dict) -> tuple[str, str]:
        return (run.get("work_pool_name") or "", run.get("work_queue_name") or "")

    # run keys zero-filled: each deployment in its default queue, "" for queues no deployment targets
    run_keys: set[tuple[str, str, str]] = set()
    targeted: set[tuple[str, str]] = set()
    if settings.deployment_label == "name":
        for d in world.deployments:
            if d.get("work_pool_name") in pools:
                q = (d["work_pool_name"], d.get("work_queue_name") or "")
                targeted.add(q)
                run_keys.add((*q, names[d["id"]]))
    for q in queue_keys:
        if q not in targeted:
            run_keys.add((*q, ""))

    if "prefect_server_info" in families:
        out[("prefect_server_info", _labels(version=world.version, api_version=world.api_version))] = 1.0

    for p in world.work_pools:
        pool = p["name"]
        current = "PAUSED" if p.get("is_paused") else (p.get("status") or "NOT_READY")
        if "prefect_work_pool_info" in families:
            out[("prefect_work_pool_info", _labels(work_pool=pool, type=p["type"]))] = 1.0
        if "prefect_work_pool_status" in families:
            for s in ("READY", "NOT_READY", "PAUSED"):
                out[("prefect_work_pool_status", _labels(work_pool=pool, status=s))] = float(current == s)
        if "prefect_work_pool_concurrency_limit" in families and p.get("concurrency_limit") is not None:
            out[("prefect_work_pool_concurrency_limit", _labels(work_pool=pool))] = float(p["concurrency_limit"])
        if "prefect_work_pool_active_slots" in families and p.get("active_slots") is not None:
            out[("prefect_work_pool_active_slots", _labels(work_pool=pool))] = float(p["active_slots"])
        workers = world.workers.get(pool, [])
        if "prefect_work_pool_workers" in families:
            for s in ("ONLINE", "OFFLINE"):
                out[("prefect_work_pool_workers", _labels(work_pool=pool, status=s))] = float(
                    sum(1 for w in workers if (w.get("status") or "OFFLINE") == s))
        beats = [ts(w.get("last_heartbeat_time")) for w in workers if w.get("last_heartbeat_time")]
        if "prefect_work_pool_last_worker_heartbeat_timestamp_seconds" in families and beats:
            out[("prefect_work_pool_last_worker_heartbeat_timestamp_seconds", _labels(work_pool=pool))] = max(beats)

    for q in world.queues:
        lbl = dict(work_pool=q["work_pool_name"], work_queue=q["name"])
        current = "PAUSED" if q.get("is_paused") else (q.get("status") or "NOT_READY")
        if "prefect_work_queue_status" in families:
            for s in ("READY", "NOT_READY", "PAUSED"):
                out[("prefect_work_queue_status", _labels(**lbl, status=s))] = float(current == s)
        if "prefect_work_queue_concurrency_limit" in families and q.get("concurrency_limit") is not None:
            out[("prefect_work_queue_concurrency_limit", _labels(**lbl))] = float(q["concurrency_limit"])
        if "prefect_work_queue_priority" in families:
            out[("prefect_work_queue_priority", _labels(**lbl))] = float(q["priority"])
        if "prefect_work_queue_last_polled_timestamp_seconds" in families and q.get("last_polled"):
            out[("prefect_work_queue_last_polled_timestamp_seconds", _labels(**lbl))] = ts(q["last_polled"])
        if "prefect_work_queue_active_slots" in families and q.get("active_slots") is not None:
            out[("prefect_work_queue_active_slots", _labels(**lbl))] = float(q["active_slots"])

    for c in world.concurrency_limits:
        lbl = world.limit_labels(c, settings.deployment_label)
        if "prefect_concurrency_limit" in families:
            out[("prefect_concurrency_limit", _labels(**lbl))] = float(c["limit"])
        if "prefect_concurrency_limit_active_slots" in families:
            out[("prefect_concurrency_limit_active_slots", _labels(**lbl))] = float(c["active_slots"])
        if "prefect_concurrency_limit_active" in families:
            out[("prefect_concurrency_limit_active", _labels(**lbl))] = float(bool(c["active"]))

    for d in world.deployments:
        name = names[d["id"]]
        if "prefect_deployment_info" in families:
            out[("prefect_deployment_info", _labels(deployment=name, flow=world.flow_names.get(d["flow_id"], ""),
                                                     work_pool=d.get("work_pool_name") or "",
                                                     work_queue=d.get("work_queue_name") or ""))] = 1.0
        if "prefect_deployment_status" in families:
            for s in ("READY", "NOT_READY"):
                out[("prefect_deployment_status", _labels(deployment=name, status=s))] = float(
                    (d.get("status") or "NOT_READY") == s)
        if "prefect_deployment_paused" in families:
            out[("prefect_deployment_paused", _labels(deployment=name))] = float(bool(d.get("paused")))
        active_schedules = [s for s in d.get("schedules") or [] if s.get("active")]
        if "prefect_deployment_active_schedules" in families:
            out[("prefect_deployment_active_schedules", _labels(deployment=name))] = float(len(active_schedules))
        intervals = [float(s["schedule"]["interval"]) for s in active_schedules if "interval" in (s.get("schedule") or {})]
        if "prefect_deployment_schedule_interval_seconds" in families and intervals:
            out[("prefect_deployment_schedule_interval_seconds", _labels(deployment=name))] = min(intervals)

    # -- schedule health per deployment (its lookups were all answered) ---------------------------
    if families & set(COLLECTOR_FAMILIES["deployment_schedules"]):
        next_runs = world.next_runs()
        for d in world.deployments:
            name = names[d["id"]]
            if "prefect_deployment_has_scheduled_run" in families:
                out[("prefect_deployment_has_scheduled_run", _labels(deployment=name))] = float(d["id"] in next_runs)
            if "prefect_deployment_next_scheduled_run_timestamp_seconds" in families and d["id"] in next_runs:
                out[("prefect_deployment_next_scheduled_run_timestamp_seconds", _labels(deployment=name))] = \
                    next_runs[d["id"]]
            if "prefect_deployment_last_run_finished_timestamp_seconds" in families:
                for typ in TERMINAL:
                    if (d["id"], typ) in world.last_finished:
                        out[("prefect_deployment_last_run_finished_timestamp_seconds",
                             _labels(deployment=name, state_type=typ))] = world.last_finished[(d["id"], typ)]

    # -- flow runs now -----------------------------------------------------------------------------
    active = families & set(COLLECTOR_FAMILIES["flow_runs_active"])
    if active:
        states: dict[tuple, float] = {}
        late: dict[tuple, float] = {k: 0.0 for k in run_keys}
        lateness: dict[tuple, list[float]] = {q: [] for q in queue_keys}
        running: dict[tuple, list[float]] = {q: [] for q in queue_keys}
        for k in run_keys:
            for typ, nm in KNOWN_STATE_NAMES:
                states[(*k, typ, nm)] = 0.0
        for r in world.runs:
            typ = r.get("state_type")
            if typ not in NON_TERMINAL:
                continue
            q = run_queue(r)
            key = (*q, dep_label(r))
            if typ == "SCHEDULED":
                sched = ts(r.get("next_scheduled_start_time") or r.get("expected_start_time"))
                if sched is None or sched > t:
                    continue  # not due: counted as upcoming
                overdue = t - sched
                if overdue > settings.late_after:
                    late[key] = late.get(key, 0.0) + 1
                    lateness.setdefault(q, []).append(overdue)
            if typ == "RUNNING" and r.get("start_time"):
                running.setdefault(q, []).append(max(0.0, t - ts(r["start_time"])))
            sk = (*key, typ, r.get("state_name") or "")
            states[sk] = states.get(sk, 0.0) + 1
        if "prefect_flow_runs" in families:
            for (pool, queue, dep, typ, nm), v in states.items():
                out[("prefect_flow_runs", _labels(work_pool=pool, work_queue=queue, deployment=dep,
                                                  state_type=typ, state_name=nm))] = v
        if "prefect_flow_runs_late" in families:
            for (pool, queue, dep), v in late.items():
                out[("prefect_flow_runs_late", _labels(work_pool=pool, work_queue=queue, deployment=dep))] = v
        for (pool, queue), values in lateness.items():
            lbl = dict(work_pool=pool, work_queue=queue)
            if "prefect_flow_run_lateness_seconds" in families:
                _hist(out, "prefect_flow_run_lateness_seconds", lbl, settings.lateness_buckets, values)
            if "prefect_flow_run_max_lateness_seconds" in families:
                out[("prefect_flow_run_max_lateness_seconds", _labels(**lbl))] = max(values, default=0.0)
        for (pool, queue), values in running.items():
            lbl = dict(work_pool=pool, work_queue=queue)
            if "prefect_flow_run_running_seconds" in families:
                _hist(out, "prefect_flow_run_running_seconds", lbl, RUNNING_BUCKETS, values)
            if "prefect_flow_run_max_running_seconds" in families:
                out[("prefect_flow_run_max_running_seconds", _labels(**lbl))] = max(values, default=0.0)

    if "prefect_flow_runs_upcoming" in families:
        upcoming = {q: 0.0 for q in queue_keys}
        for r in world.runs:
            if r.get("state_type") != "SCHEDULED" or r.get("work_queue_id") not in queue_of:
                continue
            sched = ts(r.get("next_scheduled_start_time"))
            if sched is not None and sched > t:
                upcoming[queue_of[r["work_queue_id"]]] += 1
        for (pool, queue), v in upcoming.items():
            out[("prefect_flow_runs_upcoming", _labels(work_pool=pool, work_queue=queue))] = v

    # -- history: runs that finished or started since the exporter started --------------------------
    hist = families & set(COLLECTOR_FAMILIES["flow_runs_finished"])
    if hist and world.since is not None:
        since = world.since
        finished: dict[tuple, float] = {}
        for k in run_keys:
            for typ in TERMINAL:
                finished[(*k, typ)] = 0.0
        durations: dict[tuple, list[float]] = {(*q, typ): [] for q in queue_keys for typ in TERMINAL}
        delays: dict[tuple, list[float]] = {q: [] for q in queue_keys}
        for r in world.runs:
            typ = r.get("state_type")
            has_run = r.get("start_time") is not None and (r.get("run_count") or 0) != 0
            q = run_queue(r)
            end = ts(r.get("end_time"))
            if typ in TERMINAL and end is not None and end >= since:
                k = (*q, dep_label(r), typ)
                finished[k] = finished.get(k, 0.0) + 1
                if has_run:
                    durations.setdefault((*q, typ), []).append(max(0.0, float(r.get("total_run_time") or 0)))
            start = ts(r.get("start_time"))
            if start is not None and start >= since and has_run:
                expected = ts(r.get("expected_start_time")) or start
                delays.setdefault(q, []).append(max(0.0, start - expected))
        if "prefect_flow_runs_finished_total" in families:
            for (pool, queue, dep, typ), v in finished.items():
                out[("prefect_flow_runs_finished_total", _labels(work_pool=pool, work_queue=queue, deployment=dep,
                                                                 state_type=typ))] = v
        if "prefect_flow_run_duration_seconds" in families:
            for (pool, queue, typ), values in durations.items():
                _hist(out, "prefect_flow_run_duration_seconds", dict(work_pool=pool, work_queue=queue, state_type=typ),
                      DURATION_BUCKETS, values)
        if "prefect_flow_run_start_delay_seconds" in families:
            for (pool, queue), values in delays.items():
                _hist(out, "prefect_flow_run_start_delay_seconds", dict(work_pool=pool, work_queue=queue),
                      START_DELAY_BUCKETS, values)
    return out


def _events(world: World, settings: Settings, t_lo: float, t_hi: float) -> list[float]:
    """Times within (t_lo, t_hi) at which some time-dependent series changes."""
    out: set[float] = set()
    offsets = [0.0, settings.late_after, *settings.lateness_buckets]
    for r in world.runs:
        typ = r.get("state_type")
        if typ == "SCHEDULED":
            base = ts(r.get("next_scheduled_start_time") or r.get("expected_start_time"))
            if base is None:
                continue
            for off in offsets:
                if t_lo < base + off < t_hi:
                    out.add(base + off)
        elif typ == "RUNNING" and r.get("start_time"):
            base = ts(r["start_time"])
            for off in RUNNING_BUCKETS:
                if t_lo < base + off < t_hi:
                    out.add(base + off)
    return sorted(out)[:200]


def expected(world: World, t_lo: float, t_hi: float, families: Iterable[str],
             settings: Settings | None = None) -> dict[Key, Expect]:
    """The expectation for a poll made at some time within ``[t_lo, t_hi]``."""
    settings = settings or Settings()
    families = set(families)
    times = [t_lo, *(e + 1e-4 for e in _events(world, settings, t_lo, t_hi)), t_hi]
    samples = [expected_at(world, t, settings, families) for t in times]
    keys = set().union(*samples)
    out: dict[Key, Expect] = {}
    for k in keys:
        vals = [s[k] for s in samples if k in s]
        out[k] = Expect(min(vals), max(vals), optional=len(vals) < len(samples))
    return out


def in_scope(world: World, sample: str, labels: frozenset, deployment_ids: bool = False) -> bool:
    """Whether a served series belongs to the world's pools (the shared server holds other tests' data)."""
    d = dict(labels)
    if family_of(sample) == "prefect_server_info":
        return True
    if family_of(sample) in COLLECTOR_FAMILIES["concurrency_limits"]:
        return any(world.limit_labels(c, "id") == d or world.limit_labels(c, "name") == d
                   for c in world.concurrency_limits)
    if "work_pool" in d:
        return d["work_pool"] in world.pools
    if "deployment" in d:
        return d["deployment"] in set(world.deployment_names.values()) or d["deployment"] in world.deployment_names
    return False


def _norm(labels: frozenset) -> frozenset:
    return frozenset((k, _norm_le(v) if k == "le" else v) for k, v in labels)


def served(scrape: Scrape, world: World, families: Iterable[str]) -> dict[Key, float]:
    """The scrape's series of ``families`` that belong to the world's pools (``le`` normalised)."""
    families = set(families)
    return {(n, _norm(l)): v for (n, l), v in scrape.samples.items()
            if family_of(n) in families and not n.endswith("_created") and in_scope(world, n, l)}


def compare(scrape: Scrape, expectation: dict[Key, Expect], world: World, families: Iterable[str],
            limit: int = 40) -> list[str]:
    """Differences between the scrape and the expectation, for ``families``; [] when exact."""
    families = set(families)
    got = served(scrape, world, families)
    diffs: list[str] = []
    for k, e in sorted(expectation.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        if family_of(k[0]) not in families:
            continue
        if not e.ok(got.get(k)):
            diffs.append(f"{k[0]}{dict(k[1])}: expected {e!r}, served {got.get(k)}")
    for k, v in sorted(got.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        if k not in expectation:
            diffs.append(f"{k[0]}{dict(k[1])}: served {v}, not expected")
    return diffs[:limit] + ([f"... {len(diffs) - limit} more"] if len(diffs) > limit else [])


def poll_window(scrape: Scrape, slack: float = 0.5) -> tuple[float, float]:
    """When the exporter's last poll made its queries: between its start (end minus duration)
    and its end (``prefect_exporter_last_poll_success_timestamp_seconds``)."""
    end = scrape.value("prefect_exporter_last_poll_success_timestamp_seconds")
    duration = scrape.value("prefect_exporter_poll_duration_seconds", default=0.0)
    return end - duration - slack, end


def families_present(scrape: Scrape, world: World, families: Iterable[str]) -> set[str]:
    return {family_of(n) for (n, l) in served(scrape, world, families)}
