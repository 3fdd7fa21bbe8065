"""A small fault-injecting HTTP reverse proxy for the robustness tests.

``FaultProxy(upstream_port)`` listens on 127.0.0.1 and forwards HTTP/1.1 requests to a Prefect
server on 127.0.0.1:<upstream_port>, or answers them with an injected fault. The fault can be
switched at any time while the exporter runs; it applies to requests whose path matches
``paths`` (a regular expression searched in the request target; default: every request):

    proxy.set("pass")                              forward (the default)
    proxy.set("blackhole")                         read the request, never answer
    proxy.set("trickle", interval=0.5)             status line and headers, then a body byte per interval
    proxy.set("status", status=500)                answer with a status, a JSON body and extra headers:
    proxy.set("status", status=429, headers={"Retry-After": "3"})
    proxy.set("reset")                             accept the connection and close it at once
    proxy.set("truncate_json")                     200 with the real body cut in half (a valid HTTP message)
    proxy.set("truncate_body")                     Content-Length of the real body, half of it, then close
    proxy.set("invalid_json")                      200 with a body that is not JSON
    proxy.set("huge", size=50 << 20)               200 with a JSON array of ``size`` bytes, streamed
    proxy.set("gzip_bomb", size=50 << 20)          200, Content-Encoding gzip, ``size`` bytes once inflated
    proxy.set("rewrite", rewrite=fn)               forward, then answer ``fn(path, parsed JSON)``
                                                   serialised with ensure_ascii (so lone surrogates
                                                   go out as \\udXXX escapes); bytes are sent as they are
    proxy.refuse() / proxy.restore()               close the listener (connection refused) / reopen it

Every fault also takes ``request_body``: a regular expression (str or compiled) searched in the
request body, decoded as UTF-8; the fault then applies only to requests whose path matches
``paths`` AND whose body matches (e.g. to fail only the ``/flow_runs/filter`` calls that filter on
``end_time``): ``proxy.set("status", status=500, paths=r"/flow_runs/filter", request_body=r'"end_time"')``.

``proxy.requests`` records recent requests (time, method, path, fault, headers, body). The proxy is bounded: at
most ``max_connections`` client connections at once (more are closed at once), every socket
has a timeout, and a held (black-holed or trickled) connection is released when the fault
changes or after ``max_hold`` seconds. Everything binds 127.0.0.1 only.

Use the ``fault_proxy`` fixture (import it into a test module: ``from faultproxy import
fault_proxy``): a proxy in front of the shared Prefect server, closed after the test.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from harness import free_port
from httpwire import ConnectionServer, Upstream, read_request, send_head

_FAULTS = {"pass", "blackhole", "trickle", "status", "reset", "truncate_json", "truncate_body", "invalid_json",
           "huge", "gzip_bomb", "rewrite"}


@dataclass
class Fault:
    kind: str = "pass"
    paths: re.Pattern | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    interval: float = 0.5
    size: int = 50 << 20
    rewrite: Callable[[str, Any], Any] | None = None
    request_body: re.Pattern | None = None
    generation: int = 0

    def applies_to(self, target: str, body: bytes = b"") -> bool:
        return (self.kind != "pass" and (self.paths is None or self.paths.search(target) is not None)
                and (self.request_body is None or self.request_body.search(body.decode("utf-8", "replace")) is not None))


@dataclass
class SeenRequest:
    time: float
    method: str
    path: str
    fault: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class FaultProxy:
    def __init__(self, upstream_port: int, port: int | None = None, max_connections: int = 256,
                 max_hold: float = 120.0, socket_timeout: float = 60.0):
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.max_hold = max_hold
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._fault = Fault()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self._server = ConnectionServer(self.port, self._serve, max_connections=max_connections,
                                        socket_timeout=socket_timeout, name="faultproxy")
        self.restore()

    # -- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def set(self, kind: str, paths: str | None = None, **options: Any) -> None:
        """Switches the fault; connections held by the previous one are closed."""
        if kind not in _FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {sorted(_FAULTS)}")
        request_body = options.pop("request_body", None)
        if isinstance(request_body, str):
            request_body = re.compile(request_body, re.S)
        if kind == "gzip_bomb":
            # Compress it now, not in the first requests: several collectors' requests arrive at
            # once and each compressed the 50 MiB itself, which on a loaded machine took past the
            # exporter's 1 s timeout (timeouts were logged instead of response_too_large).
            _gzip_bomb(options.get("size", 50 << 20))
        with self._lock:
            generation = self._fault.generation + 1
            self._fault = Fault(kind=kind, paths=re.compile(paths) if paths else None, generation=generation,
                                request_body=request_body, **options)
            self._changed.notify_all()

    def clear(self) -> None:
        self.set("pass")

    @property
    def fault(self) -> Fault:
        with self._lock:
            return self._fault

    def refuse(self) -> None:
        """Closes the listener (new connections are refused) and every open connection."""
        with self._lock:
            # A new generation releases connections held by the current fault.
            self._fault = dataclasses.replace(self._fault, generation=self._fault.generation + 1)
            self._changed.notify_all()
        self._server.stop_listening()
        self._server.close_connections()

    def restore(self) -> None:
        """(Re)opens the listener on the same port."""
        self._server.open()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        self.refuse()
        self._server.close()

    def requests_since(self, t: float, path: str | None = None) -> list[SeenRequest]:
        with self._lock:
            return [r for r in self.requests if r.time >= t and (path is None or re.search(path, r.path))]

    # -- serving ---------------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        upstream = Upstream(self.upstream_port, timeout=30)
        try:
            rfile = client.makefile("rb")
            while True:
                request = read_request(rfile)
                if request is None:
                    return
                method, target, headers, body = request
                fault = self.fault
                applied = fault.kind if fault.applies_to(target, body) else "pass"
                with self._lock:
                    self.requests.append(SeenRequest(time.time(), method, target, applied, headers, body[:4096]))
                    if len(self.requests) > 20000:  # bounded: keep the recent half
                        del self.requests[:10000]
                if applied == "reset":
                    return
                if applied == "blackhole":
                    self._hold(fault, self.max_hold)
                    return
                if applied in ("status", "invalid_json", "huge", "gzip_bomb"):
                    keep = self._answer_synthetic(client, fault)
                    if not keep:
                        return
                    continue
                # Everything else needs the real answer first.
                try:
                    status, reason, up_headers, data = upstream.forward(method, target, headers, body)
                except (OSError, http.client.HTTPException):
                    return  # the client sees the connection close: what an unreachable upstream looks like
                if applied == "trickle":
                    self._trickle(client, fault, status, reason, up_headers, data)
                    return
                if applied == "truncate_body":
                    send_head(client, status, reason, up_headers, len(data), close=True)
                    client.sendall(data[: len(data) // 2])
                    return
                if applied == "truncate_json":
                    data = data[: max(1, len(data) // 2)]
                elif applied == "rewrite" and fault.rewrite is not None and data:
                    rewritten = fault.rewrite(target, json.loads(data))
                    data = rewritten if isinstance(rewritten, bytes) else json.dumps(rewritten, ensure_ascii=True).encode()
                send_head(client, status, reason, up_headers, len(data))
                client.sendall(data)
        finally:
            upstream.close()

    def _hold(self, fault: Fault, seconds: float) -> None:
        """Waits until the fault changes or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        with self._lock:
            while self._fault.generation == fault.generation and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(min(left, 1.0))

    def _changed_since(self, fault: Fault) -> bool:
        with self._lock:
            return self._fault.generation != fault.generation or self._closed

    def _trickle(self, client: socket.socket, fault: Fault, status: int, reason: str,
                 headers: list[tuple[str, str]], data: bytes) -> None:
        send_head(client, status, reason, headers, len(data), close=True)
        deadline = time.monotonic() + self.max_hold
        for i in range(len(data)):
            if self._changed_since(fault) or time.monotonic() > deadline:
                return
            client.sendall(data[i:i + 1])
            self._hold(fault, fault.interval)

    def _answer_synthetic(self, client: socket.socket, fault: Fault) -> bool:
        """Answers without asking upstream; returns whether the connection stays usable."""
        if fault.kind == "status":
            body = fault.body if fault.body is not None else json.dumps(
                {"detail": f"injected {fault.status}"}).encode()
            head = [("Content-Type", "application/json"), *fault.headers.items()]
            send_head(client, fault.status, http.client.responses.get(fault.status, "Status"), head, len(body))
            client.sendall(body)
            return True
        if fault.kind == "invalid_json":
            body = b"<html><body>502 Bad Gateway</body></html>{not json"
            send_head(client, 200, "OK", [("Content-Type", "application/json")], len(body))
            client.sendall(body)
            return True
        if fault.kind == "gzip_bomb":
            body = _gzip_bomb(fault.size)
            send_head(client, 200, "OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                       len(body))
            client.sendall(body)
            return True
        # huge: a valid JSON array of flow-run-like objects, streamed with a Content-Length.
        item = b'{"id":"00000000-0000-0000-0000-000000000000","name":"padding","state_type":"RUNNING"},'
        count = max(1, (fault.size - 2) // len(item))
        total = 2 + count * len(item) - 1
        send_head(client, 200, "OK", [("Content-Type", "application/json")], total)
        client.sendall(b"[")
        chunk_items = 4096
        sent = 0
        while sent < count:
            n = min(chunk_items, count - sent)
            block = item * n
            if sent + n == count:
                block = block[:-1]
            client.sendall(block)
            sent += n
            if self._changed_since(fault):
                return False
        client.sendall(b"]")
        return True


_BOMBS: dict[int, bytes] = {}


def _gzip_bomb(size: int) -> bytes:
    if size not in _BOMBS:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
        parts = [compressor.compress(b"[")]
        block = b" " * (1 << 20)
        for _ in range(size >> 20):
            parts.append(compressor.compress(block))
        parts.append(compressor.compress(b"]"))
        parts.append(compressor.flush())
        _BOMBS[size] = b"".join(parts)
    return _BOMBS[size]


@pytest.fixture
def fault_proxy(prefect_server):
    """A FaultProxy in front of the shared Prefect server, passing everything until told otherwise."""
    proxy = FaultProxy(prefect_server.port)
    yield proxy
    proxy.close()
