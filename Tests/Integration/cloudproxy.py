"""A reverse proxy that gives the local Prefect server the shape of Prefect Cloud.

``CloudProxy(upstream_port, api_key)`` listens on 127.0.0.1 and serves the Prefect API under
``/api/accounts/<account uuid>/workspaces/<workspace uuid>/…`` (``proxy.api_url``), forwarding each
request to the local server's ``/api/…``. As Prefect Cloud (from its docs; Cloud itself cannot be
reached from here) it

- answers 404 to anything outside that prefix, and to ``/admin/*`` under it (Cloud has no admin
  routes, so no ``/admin/version``);
- requires exactly one ``Authorization: Bearer <api_key>`` header: a missing header, a wrong key, a
  Basic header or two Authorization headers get 401 with a JSON body;
- rate-limits the ``flow_runs`` routes (paths starting with ``flow_runs/`` under the workspace
  prefix): at most ``limit`` requests in any sliding ``window`` seconds (``limit=None``: no limit).
  Past it the answer is 429 with ``Retry-After`` (whole seconds until the oldest counted request
  leaves the window, at least 1) and a JSON body; a rejected request takes no slot;
- answers 503 with ``Retry-After`` to every request while a maintenance window is open
  (``proxy.maintenance(seconds)``).

The order of the checks: maintenance (503), then the prefix (404), then the credentials (401),
then ``/admin`` (404), then the rate limit (429), then forwarding.

Every request is recorded in ``proxy.records`` (``CloudRequest``: monotonic and wall arrival time,
method, path below the workspace prefix, status answered, whether it was forwarded, and the
Authorization scheme only: ``"Bearer"``, ``"Basic"``, ``None`` or ``"multiple"``). The key itself is
never stored, recorded or printed; ``CloudRequest.key_ok`` says whether it matched.

Bounded like faultproxy.FaultProxy: at most ``max_connections`` client connections at once (more
are closed at once), a timeout on every socket, the record list capped, 127.0.0.1 only.
``close()`` closes the listener and every connection.

Use the ``cloud_proxy`` fixture (import it into a test module: ``from cloudproxy import
cloud_proxy``): a factory ``cloud_proxy(api_key, limit=None, window=60.0)`` of proxies in front of
the shared Prefect server, all closed after the test.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Iterable

import pytest

from harness import free_port
from httpwire import ConnectionServer, Upstream, read_request, send_head

MAX_RECORDS = 50_000


@dataclass(frozen=True)
class CloudRequest:
    mono: float          # time.monotonic() when the request had been read
    wall: float          # time.time() at the same moment
    method: str
    path: str            # below the workspace prefix, without the query (e.g. "/flow_runs/filter"); the raw
                         # path when outside the prefix
    status: int          # what the proxy answered (the upstream status when forwarded)
    forwarded: bool
    auth_scheme: str | None  # "Bearer", "Basic", another scheme, None (no header) or "multiple"
    key_ok: bool         # exactly one Bearer header carrying the right key
    answered_mono: float = 0.0  # time.monotonic() when the answer had been sent
    retry_after: int | None = None  # the Retry-After the proxy sent (429, 503)

    @property
    def flow_runs(self) -> bool:
        return self.path.startswith("/flow_runs/")


class CloudProxy:
    def __init__(self, upstream_port: int, api_key: str, *, account: str | None = None, workspace: str | None = None,
                 limit: int | None = None, window: float = 60.0, port: int | None = None,
                 max_connections: int = 64, socket_timeout: float = 30.0, upstream_timeout: float = 30.0):
        if not api_key or any(c.isspace() for c in api_key):
            raise ValueError("the API key must be a non-empty token without whitespace")
        self.upstream_port = upstream_port
        self.account = account or str(uuid.uuid4())
        self.workspace = workspace or str(uuid.uuid4())
        self.port = port or free_port()
        self.upstream_timeout = upstream_timeout
        self._key = api_key
        self._lock = threading.Lock()
        self._limit = limit
        self._window = window
        self._slots: deque[float] = deque()  # monotonic times of the flow_runs requests let through
        self._maintenance_until = 0.0        # monotonic
        self._maintenance_armed: tuple[re.Pattern, float] | None = None
        self._records: list[CloudRequest] = []
        self._prefix = f"/api/accounts/{self.account}/workspaces/{self.workspace}"
        self._server = ConnectionServer(self.port, self._serve, max_connections=max_connections,
                                        socket_timeout=socket_timeout, name="cloudproxy")
        self._server.open()

    # -- control -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The workspace URL, as Prefect Cloud's PREFECT_API_URL."""
        return f"{self.url}{self._prefix}"

    def set_limit(self, limit: int | None, window: float | None = None) -> None:
        """Changes the flow_runs rate limit; the requests already counted stay counted."""
        with self._lock:
            self._limit = limit
            if window is not None:
                self._window = window

    def maintenance(self, seconds: float, starting_at: str | None = None) -> None:
        """Answers 503 with Retry-After (the seconds left, rounded up) to everything for ``seconds``.

        ``starting_at``: a regular expression; the window then opens at the next request whose
        path (below the workspace prefix) it matches, and that request is the first answered 503.
        E.g. ``starting_at=r"^/flow_runs/"`` opens it in the middle of an exporter's poll."""
        with self._lock:
            if starting_at is None:
                self._maintenance_until = time.monotonic() + seconds
                self._maintenance_armed = None
            else:
                self._maintenance_armed = (re.compile(starting_at), seconds)

    def end_maintenance(self) -> None:
        with self._lock:
            self._maintenance_until = 0.0
            self._maintenance_armed = None

    @property
    def records(self) -> list[CloudRequest]:
        with self._lock:
            return list(self._records)

    def requests_since(self, mono: float, *, flow_runs: bool | None = None,
                       status: int | Iterable[int] | None = None) -> list[CloudRequest]:
        """Requests that arrived at or after ``mono`` (time.monotonic()), optionally only the flow_runs
        routes (or only the others), or only those answered with ``status``."""
        statuses = {status} if isinstance(status, int) else (set(status) if status is not None else None)
        return [r for r in self.records if r.mono >= mono
                and (flow_runs is None or r.flow_runs == flow_runs)
                and (statuses is None or r.status in statuses)]

    def first(self, status: int, since: float = 0.0) -> CloudRequest | None:
        return next((r for r in self.records if r.status == status and r.mono >= since), None)

    def max_in_window(self, since: float = 0.0, window: float | None = None, flow_runs: bool = True,
                      forwarded_only: bool = True) -> int:
        """The most (forwarded) flow_runs requests that arrived within any ``window`` seconds."""
        window = self._window if window is None else window
        times = sorted(r.mono for r in self.requests_since(since, flow_runs=flow_runs or None)
                       if (r.forwarded or not forwarded_only))
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - window:
                j += 1
            best = max(best, i - j + 1)
        return best

    def close(self) -> None:
        self._server.close()

    # -- serving -------------------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        upstream = Upstream(self.upstream_port, timeout=self.upstream_timeout)
        try:
            rfile = client.makefile("rb")
            while True:
                request = read_request(rfile, client)
                if request is None:
                    return
                method, target, headers, body = request
                mono, wall = time.monotonic(), time.time()
                status, extra, payload, forward_target, path = self._decide(method, target, headers, mono)
                scheme, key_ok = self._auth(headers)
                if forward_target is None:
                    send_head(client, status, http.client.responses.get(status, "Status"),
                              [("Content-Type", "application/json"), *extra], len(payload))
                    client.sendall(payload)
                    retry = next((int(v) for n, v in extra if n == "Retry-After"), None)
                    self._record(CloudRequest(mono, wall, method, path, status, False, scheme, key_ok, time.monotonic(),
                                              retry))
                    continue
                kept = [(n, v) for n, v in headers if n.lower() != "authorization"]
                try:
                    status, reason, up_headers, data = upstream.forward(method, forward_target, kept, body)
                except (OSError, http.client.HTTPException):
                    self._record(CloudRequest(mono, wall, method, path, 0, True, scheme, key_ok, time.monotonic()))
                    return  # the client sees the connection close
                send_head(client, status, reason, up_headers, len(data))
                client.sendall(data)
                self._record(CloudRequest(mono, wall, method, path, status, True, scheme, key_ok, time.monotonic()))
        finally:
            upstream.close()

    def _record(self, r: CloudRequest) -> None:
        with self._lock:
            self._records.append(r)
            if len(self._records) > MAX_RECORDS:
                del self._records[: MAX_RECORDS // 2]

    def _auth(self, headers: list[tuple[str, str]]) -> tuple[str | None, bool]:
        values = [v for n, v in headers if n.lower() == "authorization"]
        if not values:
            return None, False
        if len(values) > 1:
            return "multiple", False
        scheme, _, credentials = values[0].strip().partition(" ")
        return scheme or None, scheme == "Bearer" and credentials.strip() == self._key

    def _decide(self, method: str, target: str, headers: list[tuple[str, str]], mono: float
                ) -> tuple[int, list[tuple[str, str]], bytes, str | None, str]:
        """(status, extra headers, body, upstream target or None, recorded path)."""
        raw_path, _, query = target.partition("?")
        inside = raw_path.startswith(self._prefix + "/") or raw_path == self._prefix
        rest = raw_path[len(self._prefix):] if inside else raw_path
        path = rest or "/"
        with self._lock:
            armed = self._maintenance_armed
            if armed is not None and inside and armed[0].search(path):
                self._maintenance_until = mono + armed[1]
                self._maintenance_armed = None
            left = self._maintenance_until - mono
        if left > 0:
            retry = max(1, math.ceil(left))
            return 503, [("Retry-After", str(retry))], _json(
                {"detail": "Prefect Cloud is undergoing maintenance. Please try again later."}), None, path
        if not inside:
            return 404, [], _json({"detail": "Not Found"}), None, path
        _, key_ok = self._auth(headers)
        if not key_ok:
            return 401, [("WWW-Authenticate", "Bearer")], _json(
                {"detail": "Unauthorized: a valid API key is required (Authorization: Bearer <key>)"}), None, path
        if re.match(r"^/admin(/|$)", path):
            return 404, [], _json({"detail": "Not Found"}), None, path
        if path.startswith("/flow_runs/"):
            with self._lock:
                limit, window = self._limit, self._window
                if limit is not None:
                    while self._slots and self._slots[0] <= mono - window:
                        self._slots.popleft()
                    if len(self._slots) >= limit:
                        retry = max(1, math.ceil(self._slots[0] + window - mono)) if self._slots else max(1, math.ceil(window))
                        return 429, [("Retry-After", str(retry))], _json(
                            {"detail": f"Rate limit exceeded: at most {limit} requests per {window:g}s on the "
                                       f"flow_runs routes. Retry after {retry} seconds."}), None, path
                    self._slots.append(mono)
        return 200, [], b"", "/api" + path + (("?" + query) if query else ""), path


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.fixture
def cloud_proxy(prefect_server):
    """Factory: ``cloud_proxy(api_key, limit=None, window=60.0, **kw)`` -> a CloudProxy in front of the
    shared Prefect server; every proxy made is closed after the test."""
    made: list[CloudProxy] = []

    def make(api_key: str, limit: int | None = None, window: float = 60.0, **kw) -> CloudProxy:
        proxy = CloudProxy(prefect_server.port, api_key, limit=limit, window=window, **kw)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
