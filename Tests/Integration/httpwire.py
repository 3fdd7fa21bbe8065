"""HTTP/1.1 plumbing shared by the test proxies (faultproxy.py, cloudproxy.py).

- ``ConnectionServer``: a bounded listener on 127.0.0.1 that serves each connection on a thread.
- ``Upstream``: a kept-alive connection to the local Prefect server that survives its idle timeout.
- ``read_request``, ``send_head``, ``hard_close``: reading a request and writing an answer.
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any, Callable

# Headers that describe one hop (or that the proxies set themselves): never passed on.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length", "content-encoding", "accept-encoding", "host"}


def read_request(rfile, client: socket.socket | None = None) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    """One HTTP/1.1 request: (method, target, headers, body); None when the client closed or sent
    something else. Answers ``Expect: 100-continue`` so that clients need not wait for it."""
    line = rfile.readline(65537)
    if not line or not line.strip():
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        return None
    method, target, _version = parts
    headers: list[tuple[str, str]] = []
    for _ in range(200):
        raw = rfile.readline(65537)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lowered = {n.lower(): v for n, v in headers}
    if any(n.lower() == "transfer-encoding" for n, _ in headers):
        return None  # not needed by the exporter; refuse rather than misread
    length = int(lowered.get("content-length", "0") or 0)
    if length > 16 << 20:
        return None
    if client is not None and lowered.get("expect", "").lower() == "100-continue":
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = rfile.read(length) if length else b""
    return method, target, headers, body


def send_head(client: socket.socket, status: int, reason: str, headers: list[tuple[str, str]] | Any,
              length: int, close: bool = False) -> None:
    """The status line and headers of an answer with a ``Content-Length`` body."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in headers:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def hard_close(s: socket.socket) -> None:
    """Shuts a socket down both ways and closes it, ignoring a peer that is already gone."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class Upstream:
    """A kept-alive HTTP/1.1 connection to a server on 127.0.0.1, for one client connection.

    The server may close the connection while it is idle (uvicorn does after 5 s): a request on a
    reused connection that fails is sent once more on a fresh one. A failure on a fresh connection
    raises ``OSError`` or ``http.client.HTTPException``: the server is unreachable or misbehaving.
    """

    def __init__(self, port: int, timeout: float):
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
                ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Sends the request without its hop-by-hop headers and asks for an uncompressed answer;
        returns (status, reason, headers without hop-by-hop ones, body)."""
        out = {name: value for name, value in headers if name.lower() not in HOP_BY_HOP}
        out["Accept-Encoding"] = "identity"
        while True:
            reused = self._connection is not None
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self._connection.request(method, target, body=body or None, headers=out)
                response = self._connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if reused:
                    continue
                raise
            kept = [(n, v) for n, v in response.getheaders() if n.lower() not in HOP_BY_HOP]
            return response.status, response.reason, kept, data

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class ConnectionServer:
    """Listens on 127.0.0.1:``port`` and serves each accepted connection on a thread of its own
    with ``serve(client)``; the connection is closed when ``serve`` returns.

    Bounded: at most ``max_connections`` connections at once (more are closed at once), and
    ``socket_timeout`` on every client socket. The listener can be closed and reopened on the
    same port (``stop_listening``, ``open``), so that a test can refuse connections for a while.
    """

    def __init__(self, port: int, serve: Callable[[socket.socket], None], *, max_connections: int,
                 socket_timeout: float, name: str):
        self.port = port
        self.max_connections = max_connections
        self.socket_timeout = socket_timeout
        self._serve = serve
        self._name = name
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def open(self) -> None:
        """Starts listening; does nothing when already listening or closed for good."""
        with self._lock:
            if self._listener is not None or self._closed:
                return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name=f"{self._name}-accept")
        with self._lock:
            self._listener, self._thread = listener, thread
        thread.start()

    def stop_listening(self) -> None:
        """Closes the listener: new connections are refused. Open connections stay."""
        with self._lock:
            listener, self._listener = self._listener, None
            thread, self._thread = self._thread, None
        if listener is not None:
            # shutdown() first: on Linux, close() alone leaves a socket that another thread is
            # blocked in accept() on listening, and connections would still be accepted.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        if thread is not None:
            thread.join(timeout=5)

    def close_connections(self) -> None:
        """Closes every open client connection."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            hard_close(client)

    def close(self) -> None:
        """Stops listening for good and closes every connection."""
        with self._lock:
            self._closed = True
        self.stop_listening()
        self.close_connections()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                refuse = self._closed or len(self._clients) >= self.max_connections
                if not refuse:
                    self._clients.add(client)
            if refuse:
                hard_close(client)
                continue
            client.settimeout(self.socket_timeout)
            threading.Thread(target=self._run, args=(client,), daemon=True, name=f"{self._name}-conn").start()

    def _run(self, client: socket.socket) -> None:
        try:
            self._serve(client)
        except (OSError, ValueError):  # a peer gone, or a request that cannot be read: close
            pass
        finally:
            with self._lock:
                self._clients.discard(client)
            hard_close(client)
