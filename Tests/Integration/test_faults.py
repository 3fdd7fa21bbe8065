"""Faults on the Prefect side, injected by faultproxy.FaultProxy in front of the real server.

For every fault the exporter must: say what happened (``prefect_up`` and
``prefect_exporter_api_requests_total{code=…}``), keep answering ``/metrics`` in milliseconds while
a poll is stuck, keep its memory bounded, log the cause once (not once per poll), and come back
by itself when the fault goes away.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from faultproxy import FaultProxy, fault_proxy  # noqa: F401 - fault_proxy is a fixture
from harness import Exporter, start_prefect_server, wait_for

# Scrapes are served from memory: even a debug build answers in a few ms. The bound is generous
# for a loaded 2-core CI machine.
SCRAPE_BOUND_SECONDS = 0.5
FAST_FAILURE = ["--prefect.timeout", "1s", "--prefect.connect-timeout", "1s", "--prefect.retries", "1"]


# --------------------------------------------------------------------------------------------
# helpers shared with the other robustness tests


# Under scripts/sanitize, shadow memory and ASan's quarantine make RSS meaningless: bounds are skipped.
RSS_BOUNDS = not os.environ.get("PREFECT_EXPORTER_SANITIZER")


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def log_lines(exp: Exporter, pattern: str, since: int = 0) -> list[str]:
    """Lines of the exporter's log (stdout and stderr) matching a regular expression, from byte
    offset `since` (``log_size``) on."""
    with exp.log_path.open("rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    return [line for line in text.splitlines() if re.search(pattern, line)]


def log_size(exp: Exporter) -> int:
    """The log's length in bytes now: ``log_lines(…, since=log_size(exp))`` reads what comes after."""
    return exp.log_path.stat().st_size


def timed_get(exp: Exporter, path: str = "/metrics") -> float:
    t0 = time.monotonic()
    r = exp.get(path, headers={"Accept-Encoding": "identity"})
    elapsed = time.monotonic() - t0
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return elapsed


class Watch:
    """Scrapes in a loop until a condition holds, timing each scrape and sampling RSS."""

    def __init__(self, exp: Exporter):
        self.exp = exp
        self.latencies: list[float] = []
        self.rss: list[int] = []

    def until(self, predicate, timeout: float, message: str):
        deadline = time.monotonic() + timeout
        while True:
            self.latencies.append(timed_get(self.exp))
            self.rss.append(rss_kb(self.exp.process.pid))
            s = self.exp.scrape()
            if predicate(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {message}; log:\n{self.exp.log_tail(3000)}")
            time.sleep(0.1)

    def assert_fast(self) -> None:
        assert self.latencies, "no scrape was timed"
        worst = max(self.latencies)
        assert worst < SCRAPE_BOUND_SECONDS, (
            f"slowest of {len(self.latencies)} scrapes took {worst * 1000:.0f} ms while a poll was failing")


def codes(s) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, v in s.series("prefect_exporter_api_requests_total").items():
        code = dict(labels)["code"]
        out[code] = out.get(code, 0) + v
    return out


def failures(s) -> float:
    return s.value("prefect_exporter_polls_total", default=0, result="failure")


def unsuccessful(s) -> float:
    """Polls in which at least one collector failed."""
    return failures(s) + s.value("prefect_exporter_polls_total", default=0, result="partial")


# --------------------------------------------------------------------------------------------
# one test per fault


# (fault, options, the code prefect_exporter_api_requests_total must count, the reason logged,
#  extra RSS allowed above the baseline in MB)
FAULTS = [
    ("blackhole", {}, "timeout", "timeout", 40),
    ("trickle", {"interval": 0.3}, "timeout", "timeout", 40),
    ("status", {"status": 500}, "500", "http_error", 40),
    ("status", {"status": 502, "body": b"<html>Bad gateway</html>"}, "502", "http_error", 40),
    ("status", {"status": 429}, "429", "rate_limited", 40),  # no Retry-After: retried like a 5xx
    ("reset", {}, "connection_error", "connection_error", 40),
    ("truncate_body", {}, "connection_error", "connection_error", 40),
    ("truncate_json", {}, "200", "invalid_response", 40),
    ("invalid_json", {}, "200", "invalid_response", 40),
    # maxResponseBytes is 32 MiB (HTTPClientConfiguration's default). A body whose Content-Length
    # is over it is refused before any of it is buffered, so memory stays flat. A compressed body
    # can only be measured while it inflates: up to --prefect.max-concurrent-requests (4) of them
    # are buffered up to 32 MiB each before they are cut off, hence the generous bound.
    ("huge", {"size": 50 << 20}, "response_too_large", "response_too_large", 40),
    ("gzip_bomb", {"size": 50 << 20}, "response_too_large", "response_too_large", 400),
]


@pytest.mark.parametrize("kind,options,code,reason,rss_mb", FAULTS,
                         ids=[f"{f[0]}-{f[1].get('status', '')}".rstrip("-") for f in FAULTS])
def test_fault(fault_proxy: FaultProxy, start_exporter, kind, options, code, reason, rss_mb):
    exp = start_exporter(FAST_FAILURE, api_url=fault_proxy.api_url)
    exp.wait_polls(1)
    baseline = rss_kb(exp.process.pid)
    before = exp.scrape()
    codes_before = codes(before)
    # Only what the exporter logs from the fault on: a poll before it may have timed out once on
    # a loaded machine (the timeout here is 1 s), and that line is about the machine, not the fault.
    since = log_size(exp)

    fault_proxy.set(kind, **options)
    watch = Watch(exp)
    # A trickle of 0.3 s a byte times out the answers longer than 3 bytes, not the empty lists,
    # and a body cut in half is still whole when it is one byte (a count of 0): the collectors
    # that get such an answer succeed (prefect_up 1, a partial poll) unless every inventory
    # collector failed first, which depends on what the shared server holds. Every other fault
    # hits every request, so every collector fails.
    everything_fails = kind not in ("trickle", "truncate_json")
    target = unsuccessful(before) + 3
    s = watch.until(lambda s: unsuccessful(s) >= target and (s.value("prefect_up") == 0 or not everything_fails),
                    timeout=60, message=f"3 failed polls under {kind}")
    # Scrapes taken while polls were failing (and, for blackhole and trickle, stuck) were fast.
    watch.assert_fast()
    assert exp.alive()
    if everything_fails:
        assert s.value("prefect_up") == 0
    grown = codes(s).get(code, 0) - codes_before.get(code, 0)
    assert grown >= 3, f"expected requests counted with code={code!r}; codes: {codes(s)}"
    assert any(v == 0 for v in s.series("prefect_exporter_collector_success").values())
    # Memory stays bounded.
    peak = max(watch.rss)
    assert peak < baseline + rss_mb * 1024 or not RSS_BOUNDS, f"RSS grew from {baseline} kB to {peak} kB under {kind}"
    # The cause is logged once, at error level, whatever the number of failed polls: as one
    # 'poll failed' line when every collector fails, and once for each failing collector while
    # others succeed (also in the poll that was under way when the fault began, which can fail
    # only in part).
    errors = log_lines(exp, r"level=error", since)
    poll_lines = [line for line in errors if "poll failed" in line]
    collectors = [re.search(r"collector=(\S+)", line).group(1) for line in errors if "poll failed" not in line]
    assert len(collectors) == len(set(collectors)), "a collector logged its cause twice:\n" + "\n".join(errors)
    if everything_fails:
        assert len(poll_lines) == 1, f"expected one 'poll failed' line, got {len(poll_lines)}:\n" + "\n".join(errors)
    else:
        assert (collectors or poll_lines) and len(poll_lines) <= 1, "\n".join(errors)
    assert all(f"reason={reason}" in line for line in errors), errors
    # A 429 (here without Retry-After) teaches the flow_runs routes a limit and stretches the
    # interval to fit it: said once each, at warn level. Nothing else warns.
    rate_limited = kind == "status" and options.get("status") == 429
    learned = r"Prefect rate-limited the flow_runs routes|polls exceed the request budget"
    warnings = [line for line in log_lines(exp, r"level=warn", since) if not (rate_limited and re.search(learned, line))]
    assert not warnings, warnings
    # (Whether it learns depends on how many flow_runs requests the polls before the fault sent:
    # at least 10 in the minute before, test_request_budget.py covers that case exactly.)
    assert len(log_lines(exp, r"level=warn.*Prefect rate-limited the flow_runs routes", since)) <= 1

    fault_proxy.clear()
    # Polls every second recover within a few; under a learned limit they come every half minute or so,
    # and the first may still find the route's minute full.
    s = exp.wait_scrape(lambda s: s.value("prefect_up") == 1 and all(v == 1 for v in s.series("prefect_exporter_collector_success").values()),
                        timeout=150 if rate_limited else 20, message="every collector succeeding after the fault")
    assert s.series("prefect_server_info")
    if poll_lines:
        assert len(log_lines(exp, r"level=info.*Prefect polls succeed again", since)) == 1
    else:
        for collector in collectors:
            assert len(log_lines(exp, rf"level=info.*collector {collector} succeeds again", since)) == 1, collector
    # And stays within the same bound afterwards (glibc keeps some freed memory in its arenas).
    exp.wait_polls(1, timeout=90 if rate_limited else None)
    after = rss_kb(exp.process.pid)
    assert after < baseline + rss_mb * 1024 or not RSS_BOUNDS, f"RSS {baseline} kB before, {after} kB after {kind}"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_skips_polls(fault_proxy: FaultProxy, start_exporter, status):
    """429 and 503 with Retry-After: no retries within the poll, and no request at all until the
    time Prefect asked for has passed (polls are counted as skipped)."""
    exp = start_exporter(["--prefect.retries", "2"], api_url=fault_proxy.api_url)
    t0 = time.time()
    fault_proxy.set("status", status=status, headers={"Retry-After": "3"})
    watch = Watch(exp)
    s = watch.until(lambda s: s.value("prefect_exporter_polls_total", default=0, result="skipped") >= 4
                    and failures(s) >= 2, timeout=30, message="skipped polls")
    watch.assert_fast()
    assert s.value("prefect_up") == 0
    assert codes(s).get(str(status), 0) >= 2

    injected = sorted(r.time for r in fault_proxy.requests_since(t0) if r.fault == "status")
    bursts: list[list[float]] = []
    for t in injected:
        if bursts and t - bursts[-1][-1] < 1.0:
            bursts[-1].append(t)
        else:
            bursts.append([t])
    assert len(bursts) >= 2, bursts
    for a, b in zip(bursts, bursts[1:]):
        assert b[0] - a[0] >= 2.7, f"a poll asked Prefect again {b[0] - a[0]:.2f}s after Retry-After: 3"
    # No retries within a poll: one request per endpoint (the 5 inventory collectors).
    assert all(len(b) <= 5 for b in bursts), [len(b) for b in bursts]

    errors = log_lines(exp, r"level=error.*poll failed")
    assert len(errors) == 1, errors
    assert "retry after 3s" in errors[0] and "reason=rate_limited" in errors[0], errors[0]

    fault_proxy.clear()
    exp.wait_scrape(lambda s: s.value("prefect_up") == 1, timeout=20, message="prefect_up 1 after Retry-After")


# --------------------------------------------------------------------------------------------
# a newer Prefect: unknown fields and unknown enum values


def test_unknown_fields_and_enum_values(prefect, unique_name, fault_proxy: FaultProxy, start_exporter):
    pool = unique_name("pool")
    prefect.create_pool(pool)
    prefect.heartbeat(pool, "worker-x")
    dep = prefect.create_deployment(f"flow-{pool}", "d", pool, "q")
    prefect.run_in_state(dep, "RUNNING")  # a plain RUNNING run, counted as usual
    teleporting = prefect.run_in_state(dep, "RUNNING")
    hovering = prefect.run_in_state(dep, "RUNNING")
    # An end time inside the exporter's first window: started before, finished after it starts.
    vanished = prefect.run_in_state(dep, "RUNNING")

    def newer_prefect(path: str, body):
        if not isinstance(body, list):
            return body
        for item in body:
            if not isinstance(item, dict):
                continue
            item["x_future_field"] = {"nested": [1, {"deep": None}], "unicode": "\u2603"}
            item["x_future_number"] = 1e308
            if "/flow_runs/filter" in path:
                if item.get("id") == teleporting["id"]:
                    item["state_type"], item["state_name"] = "TELEPORTING", "Teleporting"
                    if isinstance(item.get("state"), dict):
                        item["state"]["type"], item["state"]["name"] = "TELEPORTING", "Teleporting"
                elif item.get("id") == hovering["id"]:
                    item["state_name"] = "Hovering"  # a known type with a new name
                elif item.get("id") == vanished["id"]:
                    item["state_type"] = "VANISHED"
            if "/work_pools/filter" in path and item.get("name") == pool:
                item["status"] = "DEGRADED"
                item["concurrency_limit"] = "ten"  # a known field with an unexpected type
            if "/workers/filter" in path:
                item["status"] = "HIBERNATING"
            if "/work_queues/filter" in path and item.get("work_pool_name") == pool:
                item["status"] = "SLEEPY"
                item["last_polled"] = "not a timestamp"
            if "/deployments/filter" in path and item.get("id") == dep["id"]:
                item["status"] = "WARMING"
        return body

    fault_proxy.set("rewrite", rewrite=newer_prefect)
    exp = start_exporter(api_url=fault_proxy.api_url)
    prefect.set_state(vanished["id"], "COMPLETED")
    s = exp.wait_polls(3)
    assert s.value("prefect_up") == 1
    assert failures(s) == 0
    base = dict(work_pool=pool, work_queue="q", deployment=dep["full_name"])
    # Runs with an unknown state type are left out of the state series (there is no zero-filled
    # series to put them in, and their meaning is unknown); the others still count.
    runs = s.series("prefect_flow_runs", **base)
    assert not [l for l in runs if dict(l)["state_type"] in ("TELEPORTING", "VANISHED")], runs
    assert s.value("prefect_flow_runs", state_type="RUNNING", state_name="Running", **base) == 1
    # A new state name of a known type gets its own series.
    assert s.value("prefect_flow_runs", state_type="RUNNING", state_name="Hovering", **base) == 1
    # An unknown terminal type is not counted as finished (and makes no series of its own).
    assert sum(s.series("prefect_flow_runs_finished_total", **base).values()) == 0
    assert not [l for l in s.series("prefect_flow_runs_finished_total") if dict(l)["state_type"] == "VANISHED"]
    # Unknown statuses: every one-hot series is 0 (none of the known ones is current).
    for status in ("READY", "NOT_READY", "PAUSED"):
        assert s.value("prefect_work_pool_status", work_pool=pool, status=status) == 0
        assert s.value("prefect_work_queue_status", work_pool=pool, work_queue="q", status=status) == 0
    for status in ("READY", "NOT_READY"):
        assert s.value("prefect_deployment_status", deployment=dep["full_name"], status=status) == 0
    for status in ("ONLINE", "OFFLINE"):
        assert s.value("prefect_work_pool_workers", work_pool=pool, status=status) == 0
    # Unparseable values of known fields are treated as absent.
    assert not s.series("prefect_work_pool_concurrency_limit", work_pool=pool)
    assert not s.series("prefect_work_queue_last_polled_timestamp_seconds", work_pool=pool)
    assert not log_lines(exp, r"level=(error|warn)")


# --------------------------------------------------------------------------------------------
# Prefect down at start, going away and coming back


def _prefect_families(s) -> set[str]:
    own = ("prefect_up", "prefect_exporter_")
    return {n for n in s.names() if n.startswith("prefect_") and not n.startswith(own)}


def test_prefect_down_at_start_then_data_within_one_poll_interval(prefect, unique_name, fault_proxy: FaultProxy,
                                                                   start_exporter):
    pool = unique_name("pool")
    prefect.create_pool(pool)
    interval = 3.0
    fault_proxy.refuse()
    exp = start_exporter(["--prefect.poll-interval", f"{interval:g}s", *FAST_FAILURE],
                         api_url=fault_proxy.api_url, wait="metrics")
    watch = Watch(exp)
    s = watch.until(lambda s: failures(s) >= 2, timeout=30, message="two failed polls")
    watch.assert_fast()
    assert s.value("prefect_up") == 0
    assert s.series("prefect_exporter_build_info") and s.series("process_resident_memory_bytes")
    assert not _prefect_families(s), _prefect_families(s)
    assert "connection_error" in codes(s), codes(s)
    assert exp.get("/-/ready").status_code == 200  # ready: the first poll was attempted

    fault_proxy.restore()
    back = time.monotonic()

    def up():
        s = exp.scrape()
        return s if s.value("prefect_up") == 1 else None
    s = wait_for(up, timeout=20, interval=0.05, message="prefect_up 1 after Prefect came back")
    took = time.monotonic() - back
    # The next poll starts within one interval (+10% jitter); it then takes a fraction of a second.
    assert took <= interval * 1.1 + 2.0, f"real data {took:.1f}s after Prefect came back (interval {interval}s)"
    assert s.value("prefect_work_pool_info", work_pool=pool, type="process") == 1


def test_finished_counters_across_an_outage(prefect, unique_name, fault_proxy: FaultProxy, start_exporter):
    """Runs that finish while the exporter cannot reach Prefect are counted once it can again:
    no run lost, none counted twice, and the counter never goes down."""
    pool = unique_name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "d", pool, "q")
    key = dict(work_pool=pool, work_queue="q", deployment=dep["full_name"])
    exp = start_exporter(FAST_FAILURE, api_url=fault_proxy.api_url)
    seen: list[float] = []

    def completed(s) -> float:
        v = s.value("prefect_flow_runs_finished_total", state_type="COMPLETED", default=0, **key)
        seen.append(v)
        return v

    for _ in range(2):
        prefect.run_in_state(dep, "COMPLETED")
    exp.wait_scrape(lambda s: completed(s) == 2, timeout=20, message="2 completed runs")

    fault_proxy.refuse()
    exp.wait_scrape(lambda s: completed(s) >= 0 and failures(s) >= 1 and s.value("prefect_up") == 0, timeout=20,
                    message="a failed poll")
    for _ in range(3):
        prefect.run_in_state(dep, "COMPLETED")
    prefect.run_in_state(dep, "FAILED")
    start = failures(exp.scrape())
    exp.wait_scrape(lambda s: completed(s) >= 0 and failures(s) >= start + 2, timeout=20, message="2 more failures")

    fault_proxy.restore()
    s = exp.wait_scrape(lambda s: completed(s) >= 5 and s.value("prefect_up") == 1, timeout=20,
                        message="the runs finished during the outage counted")
    for _ in range(5):
        s = exp.wait_polls(1)
        completed(s)
    assert completed(s) == 5
    assert s.value("prefect_flow_runs_finished_total", state_type="FAILED", **key) == 1
    assert all(b >= a for a, b in zip(seen, seen[1:])), f"the counter went down: {seen}"
    assert max(seen) == 5, seen


def test_prefect_restart_on_same_port_and_database(unique_name, start_exporter, tmp_path):
    """A dedicated Prefect server is stopped and started again on the same port with the same
    database while the exporter runs: nothing crashes, counters stay exact and monotonic."""
    workdir = tmp_path / "restart"
    server = start_prefect_server(workdir)
    try:
        api = server.client()
        pool = unique_name("pool")
        api.create_pool(pool)
        dep = api.create_deployment(f"flow-{pool}", "d", pool, "q")
        key = dict(work_pool=pool, work_queue="q", deployment=dep["full_name"])
        exp = start_exporter(FAST_FAILURE, api_url=server.api_url)
        seen: list[float] = []

        def completed(s) -> float:
            v = s.value("prefect_flow_runs_finished_total", state_type="COMPLETED", default=0, **key)
            seen.append(v)
            return v

        for _ in range(2):
            api.run_in_state(dep, "COMPLETED")
        exp.wait_scrape(lambda s: completed(s) == 2, timeout=20, message="2 completed runs")

        server.stop()
        api.close()
        exp.wait_scrape(lambda s: completed(s) >= 0 and s.value("prefect_up") == 0, timeout=20, message="prefect_up 0")
        server = start_prefect_server(workdir, port=server.port)
        api = server.client()
        for _ in range(3):
            api.run_in_state(dep, "COMPLETED")
        s = exp.wait_scrape(lambda s: completed(s) >= 5 and s.value("prefect_up") == 1, timeout=30,
                            message="counters after the restart")
        for _ in range(4):
            s = exp.wait_polls(1)
            completed(s)
        assert completed(s) == 5
        assert all(b >= a for a, b in zip(seen, seen[1:])), f"the counter went down: {seen}"
        assert exp.alive()
        # Refused connections while it is down; a restarting server may also answer a 5xx once.
        assert 1 <= len(log_lines(exp, r"level=error.*poll failed")) <= 2
        assert len(log_lines(exp, r"Prefect polls succeed again")) == 1
        api.close()
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# credentials rejected


@pytest.mark.parametrize("status,env,hint", [
    (401, {"PREFECT_API_KEY": "pnu_faultkey0123456789"}, "PREFECT_API_KEY"),
    (403, {"PREFECT_API_AUTH_STRING": "admin:faultpass"}, "PREFECT_API_AUTH_STRING"),
    (401, {}, "set PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING"),
], ids=["401-api-key", "403-auth-string", "401-no-credentials"])
def test_rejected_credentials_logged_once(fault_proxy: FaultProxy, start_exporter, status, env, hint):
    fault_proxy.set("status", status=status, body=b'{"detail":"Not authenticated"}')
    exp = start_exporter(FAST_FAILURE, env=env, api_url=fault_proxy.api_url, wait="metrics")
    s = exp.wait_scrape(lambda s: failures(s) >= 4, timeout=30, message="4 failed polls")
    assert s.value("prefect_up") == 0
    assert codes(s).get(str(status), 0) >= 4
    # No retries: a rejected credential does not get better by asking again within a poll (one
    # request for each of the 5 inventory collectors; the runs stage sends nothing).
    assert codes(s)[str(status)] <= failures(s) * 5
    lines = log_lines(exp, r"level=(error|warn)")
    assert len(lines) == 1, lines
    assert "rejected the credentials" in lines[0] and hint in lines[0] and f"HTTP {status}" in lines[0], lines[0]
    for secret in env.values():
        assert secret not in exp.log_path.read_text(errors="replace")
