"""Prefect Cloud's shape around the real local Prefect (issue 13, part 1).

cloudproxy.CloudProxy serves the shared server's API under
``/api/accounts/<uuid>/workspaces/<uuid>``, requires ``Authorization: Bearer <key>``, has no
``/admin`` routes, rate-limits the ``flow_runs`` routes (429 + Retry-After) and can answer 503 +
Retry-After for a maintenance window. Through it the exporter must:

- serve every Prefect-derived series exactly as it does against the server directly, and as Prefect
  holds them (groundtruth.py);
- survive a wrong key (prefect_up 0, one log line naming HTTP 401 and the key file) and never show
  the key: not in its debug log, /metrics (text and OpenMetrics), ``check`` output, nor in what the
  proxy saw;
- report the server version sanely without /admin/version;
- back off on 503 and 429 with Retry-After: no request until the time asked for has passed, apart
  from those already in flight when the answer arrived.

Every test reads one work pool seeded once for the module (``--prefect.work-pool-include``), so
other tests' data on the shared server do not disturb it. Marked ``cloud``: deselect with
``-m "not cloud"``.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloudproxy import CloudProxy, CloudRequest, cloud_proxy  # noqa: F401 - cloud_proxy is a fixture
from groundtruth import ALL_FAMILIES, World, compare, expected, poll_window
from harness import Exporter, PrefectAPI, Scrape, run_exporter_cli, unique, utcnow, wait_for

pytestmark = pytest.mark.cloud

MAX_CONCURRENT = 4  # --prefect.max-concurrent-requests, passed explicitly below
# The exporter's own metrics differ legitimately between two exporters.
OWN = re.compile(r"^prefect_(?:up|exporter_.*)$")
# Samples whose value moves with the poll's wall-clock time: compared with a tolerance.
TIME_VALUED = re.compile(r"^prefect_flow_run_(?:max_)?(?:lateness|running)_seconds(?:_sum)?$")
PREFECT_FAMILIES = ALL_FAMILIES - {"prefect_server_info"}


# --------------------------------------------------------------------------------------------
# module data: one pool with queues, deployments, a worker and runs in several states


@dataclass
class Seed:
    api: PrefectAPI
    pool: str
    d1: dict
    d2: dict

    def world(self, since: float | None) -> World:
        return World.read(self.api, [self.pool], since)


@pytest.fixture(scope="module")
def seed(prefect) -> Seed:
    pool = unique("pool-cloud")
    prefect.create_pool(pool, concurrency_limit=7)
    prefect.create_queue(pool, "q1", priority=3, concurrency_limit=4)
    prefect.create_queue(pool, "q2")
    d1 = prefect.create_deployment(f"flow-{pool}", "d1", pool, "q1")
    d2 = prefect.create_deployment(f"flow-{pool}", "d2", pool, "q2")
    # A worker with a long heartbeat interval: ONLINE for the whole module.
    prefect.heartbeat(pool, "worker-cloud", heartbeat_interval_seconds=3600)
    now = utcnow()
    # Overdue runs far from every lateness bucket bound for the module's duration.
    prefect.create_run(d1, now - dt.timedelta(minutes=40), "Late")
    prefect.create_run(d1, now - dt.timedelta(minutes=20), "Late")
    prefect.create_run(d2, now - dt.timedelta(hours=2, minutes=30), "AwaitingRetry")
    # Upcoming.
    prefect.create_run(d1, now + dt.timedelta(hours=1))
    prefect.create_run(d2, now + dt.timedelta(hours=2))
    # In flight.
    prefect.run_in_state(d1, "RUNNING")
    prefect.run_in_state(d2, "RUNNING", "Retrying")
    prefect.run_in_state(d1, "PENDING")
    prefect.run_in_state(d2, "PAUSED")
    # History before any exporter starts: never counted as finished.
    prefect.run_in_state(d1, "COMPLETED")
    prefect.run_in_state(d2, "FAILED")
    return Seed(api=prefect, pool=pool, d1=d1, d2=d2)


# --------------------------------------------------------------------------------------------
# helpers


def key_file(tmp_path: Path, key: str, name: str = "api-key") -> Path:
    path = tmp_path / name
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def new_key() -> str:
    # Distinctive: a prefix that appears nowhere else, and 32 random hex digits.
    return "pnu_cloudtest_" + secrets.token_hex(16)


def cloud_args(seed: Seed, key_path: Path | None, *extra: str) -> list[str]:
    args = ["--prefect.work-pool-include", re.escape(seed.pool),
            "--prefect.max-concurrent-requests", str(MAX_CONCURRENT)]
    if key_path is not None:
        args += ["--prefect.api-key-file", str(key_path)]
    return [*args, *extra]


def prefect_series(s: Scrape) -> dict[tuple[str, frozenset], float]:
    """The Prefect-derived samples; prefect_server_info without its package-version label."""
    out: dict[tuple[str, frozenset], float] = {}
    for (name, labels), v in s.samples.items():
        if not name.startswith("prefect_") or OWN.match(name) or name.endswith("_created"):
            continue
        if name == "prefect_server_info":
            labels = frozenset((k, val) for k, val in labels if k != "version")
        out[(name, labels)] = v
    return out


def series_differences(a: Scrape, b: Scrape, tolerance: float) -> list[str]:
    sa, sb = prefect_series(a), prefect_series(b)
    diffs: list[str] = []
    for k in sorted(set(sa) | set(sb), key=lambda k: (k[0], sorted(k[1]))):
        va, vb = sa.get(k), sb.get(k)
        if va is None or vb is None:
            diffs.append(f"{k[0]}{dict(k[1])}: direct {va}, through the proxy {vb}")
        elif TIME_VALUED.match(k[0]):
            if abs(va - vb) > tolerance:
                diffs.append(f"{k[0]}{dict(k[1])}: direct {va}, through the proxy {vb} (tolerance {tolerance:.2f}s)")
        elif va != vb:
            diffs.append(f"{k[0]}{dict(k[1])}: direct {va}, through the proxy {vb}")
    return diffs


def exact_problems(exp: Exporter, seed: Seed, since: float, after: float) -> tuple[Scrape | None, list[str]]:
    """One judgement of a scrape whose poll started after ``after`` against what Prefect holds
    (read before and after the scrape; judged only when both reads agree)."""
    before = seed.world(since)
    t1 = time.time()
    s = exp.wait_scrape(lambda s: poll_window(s, slack=0.0)[0] > max(t1, after), timeout=20,
                        message="a poll after the read")
    world = seed.world(since)
    if world.fingerprint() != before.fingerprint():
        return None, ["Prefect's data changed while the scrape was taken"]
    lo, hi = poll_window(s)
    problems = compare(s, expected(world, lo, hi, PREFECT_FAMILIES), world, PREFECT_FAMILIES)
    if s.value("prefect_up", default=None) != 1:
        problems.append(f"prefect_up {s.value('prefect_up', default=None)}")
    return s, problems


def wait_exact(exp: Exporter, seed: Seed, since: float, after: float | None = None, timeout: float = 30) -> Scrape:
    deadline = time.monotonic() + timeout
    after = time.time() if after is None else after
    problems = ["no scrape judged"]
    while time.monotonic() < deadline:
        s, problems = exact_problems(exp, seed, since, after)
        if s is not None and not problems:
            return s
    raise AssertionError("no exact scrape within {:.0f}s; last problems:\n  {}\nexporter log:\n{}".format(
        timeout, "\n  ".join(problems[:40]), exp.log_tail(3000)))


def log_text(exp: Exporter) -> str:
    return exp.log_path.read_text(errors="replace")


def describe(records: list[CloudRequest], t0: float) -> str:
    return "\n".join(f"  +{r.mono - t0:7.3f}s {r.method} {r.path} -> {r.status}"
                     f"{' (forwarded)' if r.forwarded else ''}"
                     f"{f' Retry-After {r.retry_after}' if r.retry_after is not None else ''}"
                     for r in records)


class BackoffViolation(AssertionError):
    """The exporter sent requests while a Retry-After it had been given was pending."""


def backoff_violations(proxy: CloudProxy, status: int, since: float, until: float | None = None
                       ) -> tuple[list[str], int]:
    """For each answer ``status`` with Retry-After since ``since`` that opened a wait (it did not
    arrive within an earlier one's Retry-After): the requests that arrived after it was sent and
    before its Retry-After had passed. Up to MAX_CONCURRENT of them may have been in flight already
    (sent before the exporter read the answer); more is a violation. Returns the violations
    described, and how many waits were judged."""
    records = proxy.requests_since(since)
    until = until if until is not None else time.monotonic()
    violations: list[str] = []
    judged = 0
    waits: list[CloudRequest] = []
    for r in sorted((r for r in records if r.status == status and r.retry_after is not None),
                    key=lambda r: r.answered_mono):
        if r.answered_mono + r.retry_after > until:
            break
        if any(w.answered_mono <= r.answered_mono < w.answered_mono + w.retry_after for w in waits):
            continue
        waits.append(r)
        judged += 1
        end = r.answered_mono + r.retry_after
        after = sorted((q for q in records if r.answered_mono < q.mono < end), key=lambda q: q.mono)
        if len(after) > MAX_CONCURRENT:
            same_poll = [q for q in after if q.mono - r.answered_mono < 1.0]
            later = [q for q in after if q.mono - r.answered_mono >= 1.0]
            summary = (f"{len(after)} requests arrived within the Retry-After {r.retry_after}s of the {status} to "
                       f"{r.method} {r.path} (answered at +{r.answered_mono - since:.3f}s; at most {MAX_CONCURRENT} "
                       f"may have been in flight): {len(same_poll)} within 1 s of it "
                       f"({sorted({q.path for q in same_poll})}), {len(later)} later")
            if later:
                summary += (f", the first {later[0].mono - r.answered_mono:.3f}s after it "
                            f"({end - later[0].mono:.3f}s before the Retry-After had passed; paths "
                            f"{sorted({q.path for q in later})})")
            violations.append(summary + ":\n" + describe(after, since))
    return violations, judged


def check_backoff(proxy: CloudProxy, status: int, since: float) -> int:
    """Raises BackoffViolation when the exporter did not wait; returns the waits judged."""
    violations, judged = backoff_violations(proxy, status, since)
    assert judged >= 1, f"no {status} with Retry-After whose wait has passed was recorded"
    if violations:
        raise BackoffViolation("\n".join(violations))
    return judged


# --------------------------------------------------------------------------------------------
# the proxy itself


def test_proxy_is_cloud_shaped(cloud_proxy, prefect):
    key = new_key()
    proxy: CloudProxy = cloud_proxy(key)
    base = proxy.api_url
    good = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{base}/version", headers=good).json() == prefect.version()
        assert http.post(f"{base}/flow_runs/count", headers=good, json={}).status_code == 200
        assert http.get(f"{base}/version").status_code == 401
        assert http.get(f"{base}/version", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert http.get(f"{base}/version", headers={"Authorization": f"Basic {key}"}).status_code == 401
        twice = http.get(f"{base}/version", headers=[("Authorization", f"Bearer {key}"), ("Authorization", f"Bearer {key}")])
        assert twice.status_code == 401 and "detail" in twice.json()
        assert http.get(f"{base}/admin/version", headers=good).status_code == 404
        assert http.get(f"{proxy.url}/api/version", headers=good).status_code == 404
        assert http.get(f"{proxy.url}/api/accounts/{proxy.account}/workspaces/other/version",
                        headers=good).status_code == 404
        proxy.set_limit(2, window=30)
        t0 = time.monotonic()
        codes = [http.post(f"{base}/flow_runs/count", headers=good, json={}) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 429, 429]
        assert 1 <= int(codes[2].headers["Retry-After"]) <= 30 and "detail" in codes[2].json()
        assert http.get(f"{base}/version", headers=good).status_code == 200  # only flow_runs routes are limited
        proxy.set_limit(None)
        proxy.maintenance(30)
        m = http.get(f"{base}/version", headers=good)
        assert m.status_code == 503 and 1 <= int(m.headers["Retry-After"]) <= 30
        proxy.end_maintenance()
        proxy.maintenance(30, starting_at=r"^/flow_runs/")  # armed: opens at the next flow_runs request
        assert http.get(f"{base}/version", headers=good).status_code == 200
        assert http.post(f"{base}/flow_runs/filter", headers=good, json={}).status_code == 503
        assert http.get(f"{base}/version", headers=good).status_code == 503
        proxy.end_maintenance()
    schemes = [(r.path, r.status, r.auth_scheme, r.key_ok) for r in proxy.records]
    assert ("/version", 401, None, False) in schemes and ("/version", 401, "Basic", False) in schemes
    assert ("/version", 401, "multiple", False) in schemes
    assert proxy.max_in_window(t0, 30) == 2  # the rejected ones took no slot
    assert key not in repr(proxy.records)


# --------------------------------------------------------------------------------------------
# a. exactness


def test_series_exact_through_the_proxy(seed: Seed, cloud_proxy, start_exporter, tmp_path):
    key = new_key()
    proxy: CloudProxy = cloud_proxy(key)
    direct = start_exporter(cloud_args(seed, None))
    cloud = start_exporter(cloud_args(seed, key_file(tmp_path, key)), api_url=proxy.api_url)
    # Runs that finish while both exporters run: counted by both.
    seed.api.run_in_state(seed.d1, "COMPLETED")
    seed.api.run_in_state(seed.d2, "CRASHED")

    # Each equals Prefect's ground truth ...
    wait_exact(direct, seed, direct.started_at)
    s_cloud = wait_exact(cloud, seed, cloud.started_at)
    assert s_cloud.sum("prefect_flow_runs_finished_total") == 2

    # ... and the two serve the same Prefect-derived series (one pair of scrapes taken together).
    diffs: list[str] = ["no pair judged"]

    def same() -> bool:
        nonlocal diffs
        a, b = direct.scrape(), cloud.scrape()
        tolerance = abs(poll_window(a, 0)[1] - poll_window(b, 0)[1]) + 0.5
        diffs = series_differences(a, b, tolerance)
        return not diffs and bool(prefect_series(a))
    try:
        wait_for(same, timeout=15, interval=0.3)
    except AssertionError:
        raise AssertionError("the exporters differ:\n  " + "\n  ".join(diffs[:40])) from None

    # Both read the same API version; only the direct one can know the package version.
    version, api_version = seed.api.server_version(), seed.api.version()
    assert direct.scrape().value("prefect_server_info", version=version, api_version=api_version) == 1
    # Everything went through the workspace URL with one Bearer header.
    seen = proxy.requests_since(0)
    assert seen and all(r.auth_scheme == "Bearer" and r.key_ok for r in seen), \
        {(r.auth_scheme, r.key_ok) for r in seen}


# --------------------------------------------------------------------------------------------
# b. credentials


def assert_no_key(key: str, where: str, text: str) -> None:
    assert key not in text, f"the API key appears in {where}"
    assert key[-16:] not in text, f"part of the API key appears in {where}"


def test_wrong_key_and_the_key_never_shows(seed: Seed, cloud_proxy, start_exporter, tmp_path):
    key, wrong = new_key(), new_key()
    proxy: CloudProxy = cloud_proxy(key)
    wrong_path = key_file(tmp_path, wrong, "wrong-key")
    right_path = key_file(tmp_path, key, "right-key")

    bad = start_exporter(cloud_args(seed, wrong_path, "--log.level", "debug"), api_url=proxy.api_url, wait="metrics")
    s = bad.wait_scrape(lambda s: s.value("prefect_exporter_polls_total", default=0, result="failure") >= 2,
                        timeout=30, message="two failed polls")
    assert bad.alive()
    assert s.value("prefect_up") == 0
    assert s.sum("prefect_exporter_api_requests_total", code="401") >= 1
    assert set(s.series("prefect_exporter_api_requests_total")) and \
        {dict(l)["code"] for l in s.series("prefect_exporter_api_requests_total")} == {"401"}
    for collector in ("server_info", "work_pools", "work_queues", "deployments", "flow_runs_active"):
        assert s.value("prefect_exporter_collector_success", collector=collector) == 0, collector
    assert not s.series("prefect_flow_runs")
    errors = [line for line in log_text(bad).splitlines()
              if "HTTP 401" in line and "level=debug" not in line]
    assert len(errors) == 1, errors
    # It names where the key came from: the flag and the file.
    assert f"--prefect.api-key-file {wrong_path}" in errors[0], errors[0]
    assert_no_key(wrong, "the message itself", errors[0])

    good = start_exporter(cloud_args(seed, right_path, "--log.level", "debug"), api_url=proxy.api_url)
    good.wait_polls(2)

    # The keys never show: logs (debug), /metrics in both formats, check, the proxy's records.
    for exp, k in ((bad, wrong), (good, key)):
        assert_no_key(k, "the exporter's log", log_text(exp))
        for accept in ("text/plain", "application/openmetrics-text; version=1.0.0"):
            r = exp.get("/metrics", headers={"Accept": accept, "Accept-Encoding": "identity"})
            assert r.status_code == 200
            assert_no_key(k, f"/metrics ({accept})", r.text)
        assert_no_key(k, "the landing page", exp.get("/").text)
    for path, k, ok in ((right_path, key, True), (wrong_path, wrong, False)):
        r = run_exporter_cli(["check", "--prefect.api-url", proxy.api_url, "--prefect.api-key-file", str(path),
                              "--prefect.work-pool-include", re.escape(seed.pool)], timeout=60)
        out = r.stdout + r.stderr
        assert_no_key(k, "check's output", out)
        if ok:
            assert r.returncode == 0, out
        else:
            assert r.returncode != 0 and "401" in out, out
    assert_no_key(key, "the proxy's records", repr(proxy.records))
    assert_no_key(wrong, "the proxy's records", repr(proxy.records))
    schemes = {(r.auth_scheme, r.key_ok) for r in proxy.records}
    assert schemes <= {("Bearer", True), ("Bearer", False)}, schemes


# --------------------------------------------------------------------------------------------
# c. no /admin


def test_server_info_without_admin_routes(seed: Seed, cloud_proxy, start_exporter, tmp_path):
    key = new_key()
    proxy: CloudProxy = cloud_proxy(key)
    exp = start_exporter(cloud_args(seed, key_file(tmp_path, key)), api_url=proxy.api_url)
    s = exp.wait_polls(2)
    api_version = seed.api.version()
    info = s.series("prefect_server_info")
    assert info == {frozenset({("version", ""), ("api_version", api_version)}): 1.0}, info
    assert s.value("prefect_exporter_collector_success", collector="server_info") == 1
    assert s.value("prefect_exporter_polls_total", default=0, result="partial") == 0
    assert s.value("prefect_exporter_polls_total", default=0, result="failure") == 0
    admin = [r for r in proxy.records if r.path.startswith("/admin")]
    assert admin and all(r.status == 404 and not r.forwarded for r in admin), admin
    assert not [line for line in log_text(exp).splitlines() if "level=error" in line or "level=warn" in line]


# --------------------------------------------------------------------------------------------
# d. maintenance: 503 + Retry-After


def test_maintenance_window(seed: Seed, cloud_proxy, start_exporter, tmp_path):
    key = new_key()
    proxy: CloudProxy = cloud_proxy(key)
    exp = start_exporter(cloud_args(seed, key_file(tmp_path, key)), api_url=proxy.api_url)
    wait_exact(exp, seed, exp.started_at)
    skipped0 = exp.polls(result="skipped")
    t0 = time.monotonic()
    # The window opens at the poll's first flow_runs request: mid-poll, as a real one would.
    proxy.maintenance(6, starting_at=r"^/flow_runs/")
    s = exp.wait_scrape(lambda s: s.value("prefect_exporter_polls_total", default=0, result="skipped") >= skipped0 + 2,
                        timeout=20, message="skipped polls")
    assert s.value("prefect_up") == 0
    assert exp.alive()
    first = proxy.first(503, since=t0)
    assert first is not None and first.retry_after == 6 and first.flow_runs, first
    # Back after the window: exact again.
    wait_exact(exp, seed, exp.started_at, timeout=40)
    lines = [line for line in log_text(exp).splitlines() if "retry after" in line]
    assert lines and "503" in lines[0] and "skipped" in lines[0], lines
    waits = check_backoff(proxy, 503, t0)
    # Said once per answer that made the exporter wait: one line names it (and, when it came
    # mid-poll, the collectors it failed), not one line per collector. (A poll that starts just as
    # the window closes may meet a second 503: that is a second answer.)
    assert 1 <= len(lines) <= waits, (waits, lines)


# --------------------------------------------------------------------------------------------
# e. rate limit: 429 + Retry-After


def test_rate_limit_429_stops_every_request(seed: Seed, cloud_proxy, start_exporter, tmp_path, record_property):
    key = new_key()
    limit, window = 8, 6.0
    proxy: CloudProxy = cloud_proxy(key, limit=limit, window=window)
    exp = start_exporter(cloud_args(seed, key_file(tmp_path, key)), api_url=proxy.api_url, wait="metrics")
    t0 = time.monotonic()
    wait_for(lambda: proxy.first(429, since=t0), timeout=30, message="a 429 from the proxy")
    # Watch two Retry-After waits at least (window + a poll).
    time.sleep(2 * window + 2)
    assert exp.alive()
    s = exp.scrape()
    assert s.sum("prefect_exporter_api_requests_total", code="429") >= 1
    assert s.value("prefect_exporter_polls_total", default=0, result="skipped") >= 1
    assert proxy.max_in_window(t0, window) <= limit  # the proxy's own bound
    fr = proxy.requests_since(t0, flow_runs=True)
    record_property("flow_runs_requests", len(fr))
    record_property("answered_429", sum(1 for r in fr if r.status == 429))
    check_backoff(proxy, 429, t0)


# --------------------------------------------------------------------------------------------
# f. Cloud's per-minute limit: after one 429, never again


def test_a_per_minute_limit_is_never_exceeded_after_its_first_429(seed: Seed, cloud_proxy, start_exporter, tmp_path):
    """Cloud-sized window (60 s) and a limit a few polls use up: the first 429 makes the exporter
    wait out Retry-After, learn a flow_runs limit below the proxy's, and send within it from then
    on: no further 429 (beyond requests already in flight at the first), and the inventory goes on."""
    key = new_key()
    limit = 30
    proxy: CloudProxy = cloud_proxy(key, limit=limit, window=60.0)
    exp = start_exporter(cloud_args(seed, key_file(tmp_path, key), "--prefect.poll-interval", "1s"),
                         api_url=proxy.api_url, wait="metrics")
    first = wait_for(lambda: proxy.first(429), timeout=40, message="a 429 from the proxy")
    # It polls again once the Retry-After has passed: the first poll after it comes when it ends,
    # and its flow_runs requests go out as the burst before the 429 leaves the learned limit's
    # minute (until then they fail unsent, while the inventory is polled).
    resume_after = first.answered_mono + first.retry_after
    wait_for(lambda: [r for r in proxy.requests_since(resume_after, flow_runs=True) if r.forwarded],
             timeout=first.retry_after + 40, message="a flow_runs request forwarded after the Retry-After")
    # The poll after the wait came when it ended, not at the next step of the stretched interval's
    # cadence of skipped polls (up to an interval later).
    resumed_at = proxy.requests_since(resume_after)[0].mono
    assert resumed_at - resume_after < 3, f"first request {resumed_at - resume_after:.1f}s after the Retry-After"
    # Some polls into the learned limit (the stretched interval is several seconds).
    time.sleep(20)
    assert exp.alive()
    later = [r for r in proxy.requests_since(first.mono) if r.status == 429 and r.mono > first.answered_mono + 1.0]
    assert not later, f"{len(later)} more 429s after the first:\n{describe(later[:10], first.mono)}"
    in_flight = [r for r in proxy.requests_since(first.mono) if r.status == 429]
    assert len(in_flight) <= MAX_CONCURRENT, describe(in_flight, first.mono)
    s = exp.scrape()
    learned = s.value("prefect_exporter_request_budget_per_minute", route="flow_runs")
    assert 10 <= learned < limit, learned
    assert proxy.max_in_window(0.0, 60.0) <= limit
    assert s.value("prefect_exporter_poll_interval_seconds") > 1
