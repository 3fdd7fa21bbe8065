"""The request budget against the real Prefect server, through the fault-injecting proxy, which
records every request the exporter sends:

- ``--prefect.max-requests-per-minute`` stretches the poll interval and bounds the request rate;
- a 429 on the flow_runs routes teaches the exporter a limit for them, which it keeps.

The Prefect-Cloud-shaped proxy (test_prefect_cloud.py) covers Retry-After and the Cloud URL layout.
"""

from __future__ import annotations

import re
import time

from faultproxy import FaultProxy, fault_proxy  # noqa: F401 - a fixture
from harness import Exporter

BUDGET = 600


def log_lines(exp: Exporter, pattern: str) -> list[str]:
    return [line for line in exp.log_path.read_text(errors="replace").splitlines() if re.search(pattern, line)]


def test_budget_stretches_the_interval_and_bounds_the_rate(fault_proxy: FaultProxy, start_exporter):
    exp = start_exporter(["--prefect.poll-interval", "1s", "--prefect.max-requests-per-minute", str(BUDGET)],
                         api_url=fault_proxy.api_url)
    s = exp.wait_polls(2, timeout=40)
    assert s.value("prefect_exporter_request_budget_per_minute", route="all") == BUDGET
    # A poll of N requests every second would be 60 N a minute; the budget makes it one every N / 10 s.
    interval = s.value("prefect_exporter_poll_interval_seconds")
    assert interval > 1.5, interval

    start = time.time()
    time.sleep(15)
    sent = len(fault_proxy.requests_since(start))
    s = exp.scrape()
    polls = s.value("prefect_exporter_polls_total", result="success")
    per_poll = s.sum("prefect_exporter_api_requests_total") / polls
    # At most the budget's rate plus one poll that started before the window; unbounded, it would
    # be about 15 polls' worth.
    assert sent <= BUDGET / 60 * 15 + per_poll * 1.5, (sent, per_poll)
    assert sent < 15 * per_poll / 2, (sent, per_poll)
    assert abs(s.value("prefect_exporter_poll_interval_seconds") - per_poll * 60 / BUDGET) < per_poll * 60 / BUDGET * 0.5

    stretched = log_lines(exp, r"level=warn.*polls exceed the request budget")
    assert len(stretched) == 1, stretched
    assert f"budget {BUDGET} requests a minute" in stretched[0]


def test_a_429_teaches_the_flow_runs_routes_a_limit(fault_proxy: FaultProxy, start_exporter):
    exp = start_exporter(["--prefect.poll-interval", "1s"], api_url=fault_proxy.api_url)
    exp.wait_polls(3, timeout=40)
    assert not exp.scrape().has("prefect_exporter_request_budget_per_minute")

    fault_proxy.set("status", status=429, paths=r"/flow_runs/", headers={"Retry-After": "1"})
    limited_at = None
    deadline = time.time() + 20
    while limited_at is None and time.time() < deadline:
        rejected = [r.time for r in fault_proxy.requests if r.fault == "status"]
        limited_at = rejected[0] if rejected else None
        time.sleep(0.05)
    fault_proxy.clear()
    assert limited_at is not None, "the exporter sent no flow_runs request in 20 s"

    s = exp.wait_scrape(lambda s: s.has("prefect_exporter_request_budget_per_minute", route="flow_runs"), timeout=10,
                        message="a learned limit for flow_runs")
    learned = s.value("prefect_exporter_request_budget_per_minute", route="flow_runs")
    # 90% of the flow_runs requests Prefect accepted in the minute before (a few in flight may
    # have reached the proxy just after the first 429).
    flow_runs = [r for r in fault_proxy.requests if "/flow_runs/" in r.path]
    accepted = len([r for r in flow_runs if r.time < limited_at and r.time > limited_at - 60])
    assert int(0.9 * (accepted - 4)) <= learned <= int(0.9 * (accepted + 4)), (learned, accepted)
    warned = log_lines(exp, r"level=warn.*Prefect rate-limited the flow_runs routes \(HTTP 429\)")
    assert len(warned) == 1 and f"at most {int(learned)} requests a minute" in warned[0], warned

    # From then on no 60-second window holds more flow_runs requests than the limit, while the
    # other routes are polled as before.
    time.sleep(12)
    flow_runs = [r.time for r in fault_proxy.requests if "/flow_runs/" in r.path]
    later = [t for t in flow_runs if t > limited_at + 1.5]
    for t in later:
        in_window = len([u for u in flow_runs if t - 60.5 < u <= t])
        assert in_window <= learned, f"{in_window} flow_runs requests in the minute up to {t - limited_at:.1f}s after the 429"
    others = fault_proxy.requests_since(limited_at + 1.5, path=r"/work_pools/filter")
    assert others, "the inventory stopped too"
