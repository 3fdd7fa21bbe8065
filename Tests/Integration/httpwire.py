"""Reading one HTTP/1.1 request off a socket, for the test proxies (faultproxy.py, cloudproxy.py)."""

from __future__ import annotations

import socket


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
