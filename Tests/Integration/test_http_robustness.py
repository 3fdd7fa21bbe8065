"""Faults on the exporter's HTTP side: sustained load, idle and slowloris connections, and
malformed requests. Polls of the real Prefect run all the while.

ROBUSTNESS_LOAD_SECONDS sets the length of the wrk load test (default 60, as issue 5 asks;
``ROBUSTNESS_LOAD_SECONDS=10 scripts/test -k load`` for a quick run).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from test_faults import RSS_BOUNDS, log_lines, rss_kb, timed_get

LOAD_SECONDS = int(os.environ.get("ROBUSTNESS_LOAD_SECONDS", "60"))
# libmicrohttpd's idle timeout (WebServerConfiguration.connectionTimeout, not a flag).
CONNECTION_TIMEOUT = 10.0

# What Prometheus sends to ask for OpenMetrics (falling back to the text format).
OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"

# wrk cycles through what Prometheus servers ask for: the text format plain and gzip-compressed,
# and OpenMetrics plain and compressed (an exporter without OpenMetrics answers the text format).
WRK_SCRIPT = """
local n = 0
local openmetrics = "%s"
request = function()
  n = n + 1
  local m = n %% 4
  if m == 1 then return wrk.format("GET", "/metrics", {["Accept-Encoding"] = "gzip"}) end
  if m == 2 then return wrk.format("GET", "/metrics", {["Accept"] = openmetrics}) end
  if m == 3 then return wrk.format("GET", "/metrics", {["Accept"] = openmetrics, ["Accept-Encoding"] = "gzip"}) end
  return wrk.format("GET", "/metrics")
end
""" % OPENMETRICS_ACCEPT


def _seed(prefect, unique_name, pools: int = 3) -> None:
    for i in range(pools):
        pool = unique_name(f"pool{i}")
        prefect.create_pool(pool)
        dep = prefect.create_deployment(f"flow-{pool}", "d", pool, "q")
        prefect.run_in_state(dep, "RUNNING")
        prefect.run_in_state(dep, "COMPLETED")


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the hard limit on open files is {hard}; this test needs {need}")
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    # Raised in the test process before the exporter starts, so the exporter inherits it too.
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _page_generation_bytes(exp) -> int:
    """What one poll publishes: the page in both formats, plain and gzip (Content-Length of each)."""
    total = 0
    for accept in (None, OPENMETRICS_ACCEPT):
        for encoding in ("identity", "gzip"):
            headers = {"Accept-Encoding": encoding, **({"Accept": accept} if accept else {})}
            r = exp.get("/metrics", headers=headers)
            assert r.status_code == 200
            total += int(r.headers["content-length"])
    return total


def _wrk(url: str, seconds: int, tmp_path) -> dict:
    wrk = shutil.which("wrk")
    if not wrk:
        pytest.fail("wrk not found: run scripts/setup (it installs Debian's wrk package)")
    script = tmp_path / "alternate.lua"
    script.write_text(WRK_SCRIPT)
    r = subprocess.run([wrk, "-t2", "-c64", f"-d{seconds}s", "-s", str(script), url],
                       capture_output=True, text=True, timeout=seconds + 60)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    requests = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(requests.group(1)) if requests else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
        "output": out,
    }


def test_load_while_polling(prefect, unique_name, start_exporter, tmp_path):
    """wrk -t2 -c64 for ROBUSTNESS_LOAD_SECONDS: no errors, polls keep running, RSS flat.

    Flat means two things. No trend: the last third of the RSS samples under load has a median
    within 5% of the first third's. And the load adds no more than what it holds in flight: the
    highest RSS under load is at most 5% over the highest RSS of 10 s of polling without load,
    plus libmicrohttpd's memory pool of each open connection (32 KiB each), plus three page
    generations (while a poll publishes, its page exists as the rendered bytes and as the response
    copy, and slow scrapes can still hold the previous poll's page). Both references scale with
    what polling costs (the session's Prefect holds every earlier test's pools); a leak does not.
    """
    _seed(prefect, unique_name)
    exp = start_exporter()
    url = f"{exp.url}/metrics"
    # Warm-up: the first scrapes size the server's buffers and the allocator's per-thread arenas.
    # From then on RSS stays flat, because the exporter returns what each poll freed to the
    # system (malloc_trim) instead of letting glibc's arenas creep up poll after poll.
    warm = _wrk(url, 5, tmp_path)
    assert warm["non2xx"] == 0 and warm["socket_errors"] == 0, warm["output"]
    generation_kb = _page_generation_bytes(exp) // 1024
    # Polling alone, no load: the reference, with each poll's own transient memory in it.
    idle = []
    for _ in range(20):
        time.sleep(0.5)
        idle.append(rss_kb(exp.process.pid))
    baseline, idle_max = statistics.median(idle), max(idle)
    polls_before = exp.polls(result="success")

    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append(rss_kb(exp.process.pid))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = _wrk(url, LOAD_SECONDS, tmp_path)
    finally:
        stop.set()
        sampler.join()

    assert result["requests"] > LOAD_SECONDS * 100, result["output"]
    assert result["non2xx"] == 0, result["output"]
    assert result["socket_errors"] == 0, result["output"]
    assert exp.alive()
    # Polls ran during the load (interval 1s): the poll loop is not starved by scrapes.
    s = exp.scrape()
    assert s.value("prefect_up") == 1
    assert exp.polls(s, "success") >= polls_before + LOAD_SECONDS // 2
    assert samples
    lo, hi = min(samples), max(samples)
    third = max(1, len(samples) // 3)
    first, last = statistics.median(samples[:third]), statistics.median(samples[-third:])
    connections_kb = 64 * 32  # wrk -c64 and WebServerConfiguration's per-connection memory limit
    bound = idle_max * 1.05 + connections_kb + 3 * generation_kb
    detail = (f"without load median {baseline:.0f} kB, max {idle_max}; under load min {lo}, max {hi} "
              f"({(hi / baseline - 1) * 100:+.1f}% over the median), bound {bound:.0f} (page generation "
              f"{generation_kb} kB), median first third {first:.0f}, last third {last:.0f} (samples {samples[::4]})")
    print(f"RSS: {detail}; {result['requests']} requests in {LOAD_SECONDS} s")
    assert last <= first * 1.05 or not RSS_BOUNDS, f"RSS grows under load: {detail}"
    assert hi <= bound or not RSS_BOUNDS, f"RSS beyond the pages in flight: {detail}"
    assert not log_lines(exp, r"level=(error|warn)"), log_lines(exp, r"level=(error|warn)")


def test_idle_connections_time_out_and_new_clients_are_served(start_exporter):
    """1000 connections that send nothing, against the default --web.max-connections 512:
    libmicrohttpd stops accepting at the limit (the rest wait in the kernel's backlog) and closes
    idle connections after its 10 s timeout, so a new client is served within about that."""
    _raise_fd_limit(4096)
    exp = start_exporter()
    idle: list[socket.socket] = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", exp.port), timeout=5))
        t0 = time.monotonic()
        r = httpx.get(f"{exp.url}/metrics", timeout=CONNECTION_TIMEOUT * 3)
        waited = time.monotonic() - t0
        assert r.status_code == 200
        assert waited < CONNECTION_TIMEOUT + 5, f"a new client waited {waited:.1f}s"
        # Once the idle ones are gone, scrapes are fast again.
        assert timed_get(exp) < 0.5
        assert exp.alive()
        # The idle connections the server accepted were closed by it.
        closed = 0
        for s in idle:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        assert closed >= 500, f"only {closed} of 1000 idle connections were closed by the server"
    finally:
        for s in idle:
            s.close()
    # Nothing about it floods the log (client-caused messages are logged at debug).
    assert not log_lines(exp, r"level=(error|warn)"), log_lines(exp, r"level=(error|warn)")


def test_slowloris_with_raised_connection_limit(start_exporter):
    """1000 slowloris connections, each sending a header line every 2 s so that it never times
    out, with --web.max-connections 2000: new clients are still served in milliseconds.
    (With more such connections than --web.max-connections, new clients wait: size the limit
    above the number of connections an attacker on the network could hold.)"""
    _raise_fd_limit(4096)
    exp = start_exporter(["--web.max-connections", "2000"])
    rss_before = rss_kb(exp.process.pid)
    conns: list[socket.socket] = []
    try:
        for _ in range(1000):
            c = socket.create_connection(("127.0.0.1", exp.port), timeout=5)
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            conns.append(c)
        latencies = []
        deadline = time.monotonic() + 12  # longer than the idle timeout: they must stay open
        i = 0
        while time.monotonic() < deadline:
            for c in conns:
                try:
                    c.sendall(b"X-Slow-%d: a\r\n" % i)
                except OSError:
                    pass
            i += 1
            for _ in range(4):
                latencies.append(timed_get(exp))
                time.sleep(0.5)
        assert max(latencies) < 0.5, f"slowest scrape {max(latencies) * 1000:.0f} ms among {len(latencies)}"
        assert exp.alive()
        # The slowloris connections were really held open (else the test proves nothing).
        still_open = 0
        for c in conns:
            c.setblocking(False)
            try:
                still_open += c.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        assert still_open >= 900, f"only {still_open} slowloris connections were still open"
        assert rss_kb(exp.process.pid) < rss_before + 100 * 1024 or not RSS_BOUNDS
    finally:
        for c in conns:
            c.close()
    assert timed_get(exp) < 0.5
    assert not log_lines(exp, r"level=(error|warn)"), log_lines(exp, r"level=(error|warn)")


# What each malformed request gets. libmicrohttpd answers most; the exporter's router answers
# well-formed requests with an unknown method (405) or path (404).
MALFORMED = [
    ("garbage bytes", bytes(range(256)) * 4 + b"\r\n\r\n", {400}),
    ("100 kB header", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", {431}),
    ("5000 headers", b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n", {431}),
    ("100 kB URL", b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
    ("bad method", b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n", {405}),
    ("method with separators", b"G(T) /metrics HTTP/1.1\r\nHost: x\r\n\r\n", {400, 405}),
    ("HTTP/0.9 request line", b"GET /metrics\r\n\r\n", {400}),
    ("HTTP/0.9 line, no blank line", b"GET /metrics\r\n", {400}),
    ("header without a colon", b"GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", {400}),
    ("Content-Length not a number", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", {400}),
    ("negative Content-Length", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", {400}),
    ("Content-Length over 2^64", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     {400, 413}),
    ("NUL in the path", b"GET /met\x00rics HTTP/1.1\r\nHost: x\r\n\r\n", {400, 404}),
    ("bad percent-encoding", b"GET /%zz%00%ff HTTP/1.1\r\nHost: x\r\n\r\n", {400, 404}),
    # RFC 9110 15.6.6: 505 is the answer to a protocol version the server does not support.
    ("HTTP/9.9", b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", {505}),
    ("HTTP/2 preface on HTTP/1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505}),
    # No line end yet, so no request to answer: HTTP has no status for "not a request line", and the
    # server closes the connection once it exceeds the memory limit or idles out.
    ("100 kB of binary, no line end", (bytes(range(1, 256)) * 400).replace(b"\n", b".").replace(b"\r", b"."),
     {"closed", 400, 414}),
    ("TLS ClientHello on the plain port", bytes.fromhex("16030100a5010000a10303") + bytes(100), {"closed", 400}),
]


def _exchange(port: int, data: bytes, wait: float) -> str | int:
    """Sends ``data`` and returns the response's status code, or "closed" if the server closed
    the connection without an answer, or "open" if it did neither within ``wait`` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may close before reading everything: judged by what comes back
        received = b""
        deadline = time.monotonic() + wait
        while b"\r\n" not in received and time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            except OSError:
                chunk = b""
            if not chunk:
                break
            received += chunk
    if not received:
        return "closed" if time.monotonic() < deadline else "open"
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", received)
    return int(m.group(1)) if m else f"not HTTP: {received[:60]!r}"


def test_malformed_requests(prefect_server, start_exporter):
    exp = start_exporter()
    wait = CONNECTION_TIMEOUT + 5
    # Concurrently, so the cases the server can only close on its idle timeout cost 10 s once.
    with ThreadPoolExecutor(len(MALFORMED)) as pool:
        results = list(pool.map(lambda case: _exchange(exp.port, case[1], wait), MALFORMED))
    wrong = [(name, got, sorted(map(str, allowed)))
             for (name, _, allowed), got in zip(MALFORMED, results) if got not in allowed]
    assert not wrong, f"unexpected answers (case, got, allowed): {wrong}"
    assert exp.alive()
    s = exp.scrape()
    assert s.value("prefect_up") == 1
    assert timed_get(exp) < 0.5
    # Keep-alive still works for a well-formed client after all that.
    with httpx.Client(base_url=exp.url) as client:
        for _ in range(3):
            assert client.get("/metrics").status_code == 200
    assert not log_lines(exp, r"level=(error|warn)"), log_lines(exp, r"level=(error|warn)")
