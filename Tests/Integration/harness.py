"""Helpers for the integration tests: a real Prefect server, a seeding API client, the exporter
process and its scrapes.

Everything here is plain Python; conftest.py turns it into pytest fixtures. Tests import what
they need directly: ``from harness import wait_for, Scrape``.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]

# The basic-auth credentials of the auth_prefect_server fixture.
AUTH_STRING = "user:pass"

# Every child process we start, so that an interrupted run still cleans up.
_LIVE_PROCESSES: list[subprocess.Popen] = []


# --------------------------------------------------------------------------------------------
# small utilities


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(s: str | None) -> dt.datetime | None:
    if s is None:
        return None
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _xdist_worker_index() -> int | None:
    """0, 1, ... under pytest-xdist (PYTEST_XDIST_WORKER=gw<N>), else None."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return int(worker[2:])
    return None


# Under pytest-xdist every worker takes ports from its own block below Linux's ephemeral range
# (32768-60999 by default), so two workers never get the same port between free_port() and the
# bind by the process that uses it, and no outgoing connection takes it meanwhile. Ports handed
# out are not handed out again by this worker until the block wraps around.
_PORT_BLOCK_BASE = 20000
_PORT_BLOCK_SIZE = 1000
_port_cursor: int | None = None


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    global _port_cursor
    index = _xdist_worker_index()
    if index is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    start = _PORT_BLOCK_BASE + (index % 12) * _PORT_BLOCK_SIZE
    if _port_cursor is None:
        _port_cursor = (os.getpid() * 7) % _PORT_BLOCK_SIZE
    for _ in range(_PORT_BLOCK_SIZE):
        port = start + _port_cursor
        _port_cursor = (_port_cursor + 1) % _PORT_BLOCK_SIZE
        if _can_bind(port):
            return port
    raise RuntimeError(f"no free port in {start}-{start + _PORT_BLOCK_SIZE - 1}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2,
             message: str | Callable[[], str] = "condition") -> Any:
    """Calls ``predicate`` until it returns something truthy, and returns that.

    Exceptions raised by the predicate count as "not yet" (the last one is reported).
    Raises ``WaitTimeout`` (an AssertionError) after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - a wait treats errors as "not yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {text}; {detail}")
        time.sleep(interval)


def _kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (started with start_new_session), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Children of the group may outlive the leader; make sure none is left.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    if proc in _LIVE_PROCESSES:
        _LIVE_PROCESSES.remove(proc)


@atexit.register
def _cleanup_all() -> None:
    for proc in list(_LIVE_PROCESSES):
        _kill_group(proc, grace=3)


def tail(path: Path, max_bytes: int = 20000) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    if len(data) > max_bytes:
        data = b"...\n" + data[-max_bytes:]
    return data.decode("utf-8", "replace")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment without any PREFECT_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Prefect server


def prefect_executable() -> str:
    """The ``prefect`` CLI the test servers run.

    ``PREFECT_TEST_PREFECT_CLI`` if set (a path, relative to the repo root or absolute; e.g.
    ``.venv-prefect-3.4/bin/prefect`` to test an older server with the same pytest), else the
    repo's .venv, else next to the running Python, else PATH.
    """
    chosen = os.environ.get("PREFECT_TEST_PREFECT_CLI")
    if chosen:
        path = Path(chosen)
        if not path.is_absolute() and os.sep not in chosen:
            found = shutil.which(chosen)
            path = Path(found) if found else REPO_ROOT / path
        elif not path.is_absolute():
            path = REPO_ROOT / path
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"PREFECT_TEST_PREFECT_CLI={chosen}: {path} is not an executable file "
                               "(scripts/setup installs .venv-prefect-3.4/bin/prefect)")
        return str(path)
    candidates = [REPO_ROOT / ".venv" / "bin" / "prefect", Path(sys.executable).parent / "prefect"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("prefect")
    if found:
        return found
    raise RuntimeError("prefect CLI not found: run scripts/setup (it installs prefect into .venv/)")


@dataclass
class PrefectServer:
    """A ``prefect server start`` process on 127.0.0.1 with its own PREFECT_HOME."""

    port: int
    home: Path
    log_path: Path
    process: subprocess.Popen
    auth_string: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def log_tail(self, max_bytes: int = 20000) -> str:
        return tail(self.log_path, max_bytes)

    def stop(self) -> None:
        _kill_group(self.process)

    def client(self, **kw: Any) -> "PrefectAPI":
        return PrefectAPI(self.api_url, auth_string=self.auth_string, **kw)


# Server settings that make the tests quick and quiet.
DEFAULT_SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    # Overdue SCHEDULED runs are renamed Late by a server loop; check every second.
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "1",
    # Worker health: workers go OFFLINE after 3 missed heartbeats, checked every second.
    "PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": "1",
    # Events are not needed and their persister competes for the SQLite write lock.
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    # Nothing in the tests has a schedule; keep the scheduler from waking.
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}


def start_prefect_server(workdir: Path | None = None, env: dict[str, str] | None = None,
                         port: int | None = None, timeout: float = 90.0) -> PrefectServer:
    """Starts a Prefect server and waits for ``/api/health``.

    ``env`` adds or overrides server settings (e.g. ``PREFECT_SERVER_API_AUTH_STRING``).
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="prefect-it-"))
    home = workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "prefect-server.log"
    port = port or free_port()
    server_env = clean_env({"PREFECT_HOME": str(home), **DEFAULT_SERVER_ENV, **(env or {})})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=server_env, cwd=workdir, start_new_session=True,
        )
    _LIVE_PROCESSES.append(proc)
    server = PrefectServer(port=port, home=home, log_path=log_path, process=proc,
                           auth_string=(env or {}).get("PREFECT_SERVER_API_AUTH_STRING"))

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        r = httpx.get(f"{server.api_url}/health", timeout=2)
        return r.status_code == 200 and r.json() is True

    deadline = time.monotonic() + timeout
    while True:
        try:
            if healthy():
                break
        except RuntimeError:
            log_text = server.log_tail()
            server.stop()
            raise RuntimeError(f"prefect server died during start-up; log:\n{log_text}") from None
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            log_text = server.log_tail()
            server.stop()
            raise RuntimeError(f"prefect server not healthy after {timeout}s; log:\n{log_text}")
        time.sleep(0.25)
    return server


# --------------------------------------------------------------------------------------------
# Prefect API client for seeding

STATE_DEFAULT_NAMES = {
    "SCHEDULED": "Scheduled", "PENDING": "Pending", "RUNNING": "Running", "COMPLETED": "Completed",
    "FAILED": "Failed", "CANCELLED": "Cancelled", "CRASHED": "Crashed", "PAUSED": "Paused",
    "CANCELLING": "Cancelling",
}
TERMINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class PrefectAPIError(AssertionError):
    pass


class PrefectAPI:
    """A thin httpx wrapper over Prefect's REST API, for seeding and checking test data.

    Every call raises ``PrefectAPIError`` on an unexpected status. 503 (SQLite busy) is retried.
    """

    def __init__(self, api_url: str, auth_string: str | None = None, timeout: float = 30.0):
        auth = None
        if auth_string:
            user, _, password = auth_string.partition(":")
            auth = httpx.BasicAuth(user, password)
        self.api_url = api_url.rstrip("/")
        self.http = httpx.Client(base_url=self.api_url, timeout=timeout, auth=auth)

    def close(self) -> None:
        self.http.close()

    # -- raw ---------------------------------------------------------------------------------

    def request(self, method: str, path: str, json: Any = None, expect: Iterable[int] = (200, 201, 204)) -> Any:
        for attempt in range(8):
            r = self.http.request(method, path, json=json)
            if r.status_code == 503 and attempt < 7:
                time.sleep(0.25 * (attempt + 1))
                continue
            break
        if r.status_code not in tuple(expect):
            raise PrefectAPIError(f"{method} {path} -> {r.status_code}: {r.text[:2000]}")
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json if json is not None else {}, **kw)

    def patch(self, path: str, json: Any, **kw: Any) -> Any:
        return self.request("PATCH", path, json=json, **kw)

    # -- server ------------------------------------------------------------------------------

    def version(self) -> str:
        return self.get("/version")

    def server_version(self) -> str:
        return self.get("/admin/version")

    # -- work pools, queues, workers ---------------------------------------------------------

    def create_pool(self, name: str, type: str = "process", concurrency_limit: int | None = None,
                    paused: bool = False) -> dict:
        body: dict[str, Any] = {"name": name, "type": type}
        if concurrency_limit is not None:
            body["concurrency_limit"] = concurrency_limit
        pool = self.post("/work_pools/", body)
        if paused:
            self.pause_pool(name)
            pool = self.get_pool(name)
        return pool

    def get_pool(self, name: str) -> dict:
        return self.get(f"/work_pools/{name}")

    def pause_pool(self, name: str, paused: bool = True) -> None:
        self.patch(f"/work_pools/{name}", {"is_paused": paused})

    def create_queue(self, pool: str, name: str, priority: int | None = None,
                     concurrency_limit: int | None = None, paused: bool = False,
                     pause_after_create: bool = False) -> dict:
        """Creates a queue in ``pool``.

        ``paused=True`` creates it paused (Prefect then reports status NOT_READY with
        is_paused=true); ``pause_after_create=True`` pauses it with a PATCH afterwards
        (Prefect then reports status PAUSED).
        """
        body: dict[str, Any] = {"name": name}
        if priority is not None:
            body["priority"] = priority
        if concurrency_limit is not None:
            body["concurrency_limit"] = concurrency_limit
        if paused:
            body["is_paused"] = True
        queue = self.post(f"/work_pools/{pool}/queues", body)
        if pause_after_create:
            self.pause_queue(queue["id"])
            queue = self.get_queue(queue["id"])
        return queue

    def pause_queue(self, queue_id: str, paused: bool = True) -> None:
        self.patch(f"/work_queues/{queue_id}", {"is_paused": paused})

    def get_queue(self, queue_id: str) -> dict:
        return self.get(f"/work_queues/{queue_id}")

    def pool_queues(self, pool: str) -> list[dict]:
        return self.post(f"/work_pools/{pool}/queues/filter", {})

    def all_queues(self) -> list[dict]:
        out: list[dict] = []
        offset = 0
        while True:
            page = self.post("/work_queues/filter", {"limit": 200, "offset": offset})
            out.extend(page)
            if len(page) < 200:
                return out
            offset += 200

    def heartbeat(self, pool: str, worker: str = "worker-1", heartbeat_interval_seconds: int = 30) -> None:
        """What a worker sends: registers the worker (ONLINE) and makes the pool READY."""
        self.post(f"/work_pools/{pool}/workers/heartbeat",
                  {"name": worker, "heartbeat_interval_seconds": heartbeat_interval_seconds})

    def poll_as_worker(self, pool: str, queue_names: list[str] | None = None, timeout: float = 40.0) -> list[dict]:
        """What a worker does to fetch work (``POST /work_pools/{pool}/get_scheduled_flow_runs``).

        Prefect marks the polled queues READY with a fresh ``last_polled``, and their
        deployments READY, in a background task shortly *after* answering (on a busy shared
        server that task can wait many seconds for SQLite's write lock: "database is locked" was
        seen once, hence the 40 s default); this waits for
        both. Returns the runs Prefect handed out. (The exporter must never make this call.)
        """
        queues = [q for q in self.pool_queues(pool) if queue_names is None or q["name"] in queue_names]
        ids = {q["id"] for q in queues}
        before_q = {q["id"]: q["last_polled"] for q in queues}
        names = {q["name"] for q in queues}
        # Prefect 3.4 has no work_queue_id on deployments; its work_queue_name is unique in the pool.
        deps = [d for d in self.deployments(pool)
                if (d["work_queue_id"] in ids if "work_queue_id" in d else d.get("work_queue_name") in names)]
        before_d = {d["id"]: d["last_polled"] for d in deps}
        body: dict[str, Any] = {}
        if queue_names is not None:
            body["work_queue_names"] = queue_names
        runs = self.post(f"/work_pools/{pool}/get_scheduled_flow_runs", body)

        def marked() -> bool:
            now_q = {q["id"]: q["last_polled"] for q in self.pool_queues(pool) if q["id"] in ids}
            now_d = {d["id"]: (d["last_polled"], d["status"]) for d in self.deployments(pool) if d["id"] in before_d}
            return (all(now_q[i] is not None and now_q[i] != before_q[i] for i in ids)
                    and all(lp is not None and lp != before_d[i] and st == "READY" for i, (lp, st) in now_d.items()))
        wait_for(marked, timeout, message=f"Prefect to mark the queues of {pool} polled")
        return runs

    def workers(self, pool: str) -> list[dict]:
        return self.post(f"/work_pools/{pool}/workers/filter", {})

    # -- flows and deployments ---------------------------------------------------------------

    def create_flow(self, name: str) -> dict:
        """Creates (or returns the existing) flow with this name."""
        return self.post("/flows/", {"name": name})

    def create_deployment(self, flow: str | dict, name: str, pool: str | None = None,
                          queue: str | None = None, paused: bool = False) -> dict:
        """Creates a deployment of ``flow`` (a flow name or a flow dict).

        The returned dict gets an extra key ``full_name`` = ``flow-name/deployment-name``,
        the exporter's ``deployment`` label. A queue name that does not exist is created.
        """
        flow_obj = self.create_flow(flow) if isinstance(flow, str) else flow
        body: dict[str, Any] = {"name": name, "flow_id": flow_obj["id"]}
        if pool is not None:
            body["work_pool_name"] = pool
        if queue is not None:
            body["work_queue_name"] = queue
        if paused:
            body["paused"] = True
        dep = self.post("/deployments/", body)
        dep["full_name"] = f"{flow_obj['name']}/{dep['name']}"
        dep["flow_name"] = flow_obj["name"]
        return dep

    def get_deployment(self, deployment_id: str) -> dict:
        return self.get(f"/deployments/{deployment_id}")

    def pause_deployment(self, deployment_id: str) -> None:
        self.post(f"/deployments/{deployment_id}/pause_deployment")

    def deployments(self, pool: str | None = None) -> list[dict]:
        body: dict[str, Any] = {"limit": 200}
        if pool:
            body["work_pools"] = {"name": {"any_": [pool]}}
        return self.post("/deployments/filter", body)

    # -- flow runs ---------------------------------------------------------------------------

    def create_run(self, deployment: dict | str, scheduled_time: dt.datetime | None = None,
                   state_name: str = "Scheduled", work_queue_name: str | None = None) -> dict:
        """A SCHEDULED run of a deployment (``POST /deployments/{id}/create_flow_run``).

        ``scheduled_time`` may be in the past (an overdue run) or the future (an upcoming
        one); it defaults to now. ``state_name`` may be e.g. ``Late`` or ``AwaitingRetry``.
        """
        dep_id = deployment if isinstance(deployment, str) else deployment["id"]
        when = scheduled_time or utcnow()
        body: dict[str, Any] = {"state": {"type": "SCHEDULED", "name": state_name,
                                          "state_details": {"scheduled_time": iso(when)}}}
        if work_queue_name:
            body["work_queue_name"] = work_queue_name
        return self.post(f"/deployments/{dep_id}/create_flow_run", body)

    def create_adhoc_run(self, flow: str | dict, state_type: str = "RUNNING", state_name: str | None = None) -> dict:
        """A run with no deployment, pool or queue (``POST /flow_runs/``), like a flow called directly."""
        flow_obj = self.create_flow(flow) if isinstance(flow, str) else flow
        state: dict[str, Any] = {"type": state_type}
        if state_name:
            state["name"] = state_name
        return self.post("/flow_runs/", {"flow_id": flow_obj["id"], "state": state})

    def set_state(self, run_id: str, state_type: str, state_name: str | None = None, force: bool = True,
                  scheduled_time: dt.datetime | None = None, expect_status: str | None = "ACCEPT") -> dict:
        """``POST /flow_runs/{id}/set_state``; returns Prefect's orchestration result.

        The result is ``{"state": {...}, "status": "ACCEPT"|"REJECT"|..., "details": {...}}``,
        with HTTP 201 either way. By default anything but ACCEPT raises.
        """
        state: dict[str, Any] = {"type": state_type}
        if state_name:
            state["name"] = state_name
        if scheduled_time is not None:
            state["state_details"] = {"scheduled_time": iso(scheduled_time)}
        result = self.post(f"/flow_runs/{run_id}/set_state", {"state": state, "force": force})
        if expect_status and result.get("status") != expect_status:
            raise PrefectAPIError(f"set_state {state_type}/{state_name} on {run_id}: {result}")
        return result

    def run_in_state(self, deployment: dict | str, state_type: str, state_name: str | None = None,
                     scheduled_time: dt.datetime | None = None, work_queue_name: str | None = None) -> dict:
        """A deployment run brought to ``state_type``/``state_name`` the way a worker would.

        SCHEDULED runs are created directly (give ``scheduled_time``). PENDING, RUNNING, PAUSED:
        created scheduled for ``scheduled_time`` (default now) and moved there. CANCELLING goes
        through RUNNING (Prefect rejects SCHEDULED -> CANCELLING and cancels the run instead).
        Terminal states go through RUNNING, so the run has really started.
        Returns the run as read back after the last transition.
        """
        if state_type == "SCHEDULED":
            return self.create_run(deployment, scheduled_time, state_name or "Scheduled", work_queue_name)
        run = self.create_run(deployment, scheduled_time, "Scheduled", work_queue_name)
        path: list[tuple[str, str | None]]
        if state_type in ("PENDING", "PAUSED"):
            path = [(state_type, state_name)]
        elif state_type == "RUNNING":
            path = [("PENDING", None), ("RUNNING", state_name)]
        elif state_type == "CANCELLING" or state_type in TERMINAL_STATES:
            path = [("PENDING", None), ("RUNNING", None), (state_type, state_name)]
        else:
            path = [(state_type, state_name)]
        for typ, name in path:
            self.set_state(run["id"], typ, name)
        return self.get_run(run["id"])

    def get_run(self, run_id: str) -> dict:
        return self.get(f"/flow_runs/{run_id}")

    def runs(self, flow_runs_filter: dict | None = None, **filters: Any) -> list[dict]:
        body: dict[str, Any] = {"limit": 200, "sort": "EXPECTED_START_TIME_ASC", **filters}
        if flow_runs_filter:
            body["flow_runs"] = flow_runs_filter
        return self.post("/flow_runs/filter", body)

    def count_runs(self, body: dict | None = None) -> int:
        return self.post("/flow_runs/count", body or {})


# --------------------------------------------------------------------------------------------
# scrapes


def _norm_le(v: str) -> str:
    try:
        f = float(v)
    except ValueError:
        return v
    return "+Inf" if f == float("inf") else repr(f)


@dataclass
class Scrape:
    """One ``/metrics`` response, parsed.

    ``samples`` maps ``(sample_name, frozenset(labels.items()))`` to the value. ``types`` maps
    each sample name to its family's TYPE. ``le`` label values are kept as sent; ``bucket()``
    compares them as numbers.
    """

    text: str
    status: int
    headers: httpx.Headers
    time: float  # wall clock (time.time()) when the response arrived
    samples: dict[tuple[str, frozenset], float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    duplicates: list[tuple[str, frozenset]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, status: int = 200, headers: httpx.Headers | None = None,
              at: float | None = None) -> "Scrape":
        s = cls(text=text, status=status, headers=headers or httpx.Headers(), time=at or time.time())
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                if key in s.samples:
                    s.duplicates.append(key)
                s.samples[key] = float(sample.value)
                s.types.setdefault(sample.name, family.type)
        return s

    # -- lookups -----------------------------------------------------------------------------

    def series(self, name: str, **labels: str) -> dict[frozenset, float]:
        """Every series of sample ``name`` whose labels include ``labels`` (a subset match)."""
        want = set(labels.items())
        return {lbls: v for (n, lbls), v in self.samples.items() if n == name and want <= lbls}

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def value(self, name: str, default: float | None = None, **labels: str) -> float:
        """The value of the series with exactly these labels.

        Without ``default`` a missing series fails the test with the series of that name that
        do exist.
        """
        key = (name, frozenset(labels.items()))
        if key in self.samples:
            return self.samples[key]
        if default is not None:
            return default
        near = [dict(l) for (n, l) in self.samples if n == name][:30]
        raise AssertionError(f"no series {name}{labels}; series of that name ({len(near)} shown): {near}")

    def sum(self, name: str, **labels: str) -> float:
        """Sum over the series of ``name`` whose labels include ``labels``."""
        return sum(self.series(name, **labels).values())

    def bucket(self, name: str, le: float | str, **labels: str) -> float:
        """A histogram bucket ``name_bucket{labels, le}`` with ``le`` compared numerically."""
        want = _norm_le(str(le))
        for lbls, v in self.series(f"{name}_bucket", **labels).items():
            d = dict(lbls)
            if _norm_le(d.get("le", "")) == want and set(d) - {"le"} == set(labels):
                return v
        raise AssertionError(f"no bucket {name}_bucket{{{labels}, le={le}}}; have "
                             f"{[dict(l) for l in self.series(f'{name}_bucket', **labels)][:20]}")

    def buckets(self, name: str, **labels: str) -> dict[float, float]:
        """All buckets of one histogram series as {upper bound: cumulative count}."""
        out: dict[float, float] = {}
        for lbls, v in self.series(f"{name}_bucket", **labels).items():
            d = dict(lbls)
            if set(d) - {"le"} == set(labels):
                out[float(d["le"])] = v
        return dict(sorted(out.items()))

    def names(self) -> set[str]:
        return {n for (n, _) in self.samples}


# --------------------------------------------------------------------------------------------
# exporter process


def exporter_binary() -> Path:
    path = Path(os.environ.get("PREFECT_EXPORTER_BIN", REPO_ROOT / ".build" / "debug" / "prefect-exporter"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


class Exporter:
    """A running ``prefect-exporter`` process listening on 127.0.0.1:<port>."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, log_path: Path):
        self.args = args
        self.port = port
        self.log_path = log_path
        binary = exporter_binary()
        if not binary.is_file():
            raise AssertionError(f"exporter binary not found at {binary} (set PREFECT_EXPORTER_BIN or run swift build)")
        self.started_at = time.time()
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([str(binary), *args], stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        _LIVE_PROCESSES.append(self.process)
        self.http = httpx.Client(base_url=self.url, timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, max_bytes: int = 20000) -> str:
        return tail(self.log_path, max_bytes)

    def alive(self) -> bool:
        return self.process.poll() is None

    def _check_alive(self) -> None:
        if not self.alive():
            raise AssertionError(f"exporter exited with {self.process.returncode}; log:\n{self.log_tail()}")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def scrape(self, path: str = "/metrics", headers: dict[str, str] | None = None) -> Scrape:
        """GETs the metrics page (uncompressed unless ``headers`` ask otherwise) and parses it."""
        self._check_alive()
        h = {"Accept-Encoding": "identity", **(headers or {})}
        r = self.http.get(path, headers=h)
        if r.status_code != 200:
            raise AssertionError(f"GET {path} -> {r.status_code}: {r.text[:500]}")
        return Scrape.parse(r.text, r.status_code, r.headers, time.time())

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            self._check_alive()
            return self.http.get("/-/ready").status_code == 200
        wait_for(ready, timeout, message=lambda: f"exporter /-/ready; log:\n{self.log_tail(4000)}")

    def wait_metrics(self, timeout: float = 30.0) -> Scrape:
        """Waits until ``/metrics`` answers 200 and returns that scrape."""
        def answered() -> Scrape | None:
            self._check_alive()
            return self.scrape()
        return wait_for(answered, timeout, message=lambda: f"exporter /metrics; log:\n{self.log_tail(4000)}")

    def wait_scrape(self, predicate: Callable[[Scrape], Any], timeout: float = 20.0,
                    message: str = "a scrape matching the predicate",
                    show: Callable[[Scrape], Any] | None = None) -> Scrape:
        """Scrapes until ``predicate(scrape)`` is truthy; returns that scrape.

        On timeout the error names ``message`` and, if given, ``show(last scrape)``.
        """
        last: list[Scrape] = []

        def check() -> Scrape | None:
            s = self.scrape()
            last[:] = [s]
            return s if predicate(s) else None

        def describe() -> str:
            if not last:
                return message
            if show is not None:
                try:
                    return f"{message}; last scrape: {show(last[0])!r}"
                except Exception as exc:  # noqa: BLE001
                    return f"{message}; show() failed: {exc!r}"
            prefect = sorted({n for n in last[0].names() if n.startswith("prefect_")})
            return f"{message} (last scrape had {len(last[0].samples)} samples; families: {prefect[:60]})"
        return wait_for(check, timeout, interval=0.25, message=describe)

    def wait_up(self, timeout: float = 30.0) -> Scrape:
        return self.wait_scrape(lambda s: s.value("prefect_up", default=-1) == 1, timeout,
                                "prefect_up 1")

    def polls(self, scrape: Scrape | None = None, result: str | None = None) -> float:
        s = scrape or self.scrape()
        if result:
            return s.value("prefect_exporter_polls_total", default=0, result=result)
        return s.sum("prefect_exporter_polls_total")

    def wait_polls(self, n: int, timeout: float | None = None, result: str | None = "success") -> Scrape:
        """Waits until ``n`` more polls (of ``result``; None = any) have finished; returns a scrape
        taken after them."""
        start = self.polls(result=result)
        return self.wait_scrape(lambda s: self.polls(s, result) >= start + n, timeout or 10 + 3 * n,
                                f"{n} more polls (result={result})")

    def wait_fresh_poll(self, after: float | None = None, timeout: float = 20.0) -> Scrape:
        """Waits for a scrape whose last successful poll finished after ``after`` (default now)
        plus one more poll, so that the poll also started after ``after``."""
        after = time.time() if after is None else after
        first = self.wait_scrape(
            lambda s: s.value("prefect_exporter_last_poll_success_timestamp_seconds", default=0) > after,
            timeout, f"a successful poll finishing after {after}")
        t = first.value("prefect_exporter_last_poll_success_timestamp_seconds")
        return self.wait_scrape(
            lambda s: s.value("prefect_exporter_last_poll_success_timestamp_seconds", default=0) > t,
            timeout, "one more successful poll")

    def stop(self) -> None:
        self.http.close()
        _kill_group(self.process, grace=5)


def default_exporter_args(api_url: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    return [
        "--prefect.api-url", api_url,
        "--web.listen-address", f"127.0.0.1:{port}",
        "--prefect.poll-interval", "1s",
        "--prefect.late-after", "15s",
        *extra,
    ]


def run_exporter_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 15.0) -> subprocess.CompletedProcess:
    """Runs the exporter binary to completion (for flag handling tests)."""
    binary = exporter_binary()
    if not binary.is_file():
        raise AssertionError(f"exporter binary not found at {binary} (set PREFECT_EXPORTER_BIN or run swift build)")
    return subprocess.run([str(binary), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=clean_env(env), timeout=timeout)


# --------------------------------------------------------------------------------------------
# promtool


def promtool_path() -> str:
    p = shutil.which("promtool")
    if not p:
        raise AssertionError("promtool not found: run scripts/setup (it installs Debian's prometheus package)")
    return p


def promtool_check_metrics(text: str) -> tuple[int, str]:
    """``promtool check metrics`` on an exposition; returns (exit code, combined output)."""
    r = subprocess.run([promtool_path(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()
