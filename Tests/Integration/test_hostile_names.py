"""Hostile names from Prefect: work pools, queues, flows and deployments named with quotes,
backslashes, line breaks, control characters, exposition syntax and 10 kB of text, and (through
the fault proxy, since Prefect cannot store them) lone UTF-16 surrogates and bytes that are not
UTF-8. None may break a poll, the exposition (promtool check metrics) or the log.

These tests use a Prefect server of their own: a pool whose name holds a line feed cannot be
deleted through Prefect's API (its name does not route), and would otherwise stay in the shared
server for every later test.
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import quote

import pytest

from faultproxy import FaultProxy
from harness import PrefectAPIError, promtool_check_metrics, start_prefect_server
from test_faults import log_lines

# Prefect (3.8) accepts all of these as names; it refuses '/', '%', '&', '<' and '>', and a
# string that is not valid Unicode fails its JSON encoder (HTTP 500).
HOSTILE = {
    "quote": 'a"b',
    "backslash": "a\\b",
    "newline": "a\nb",
    "crlf": "a\r\nb",
    "control": "a\x01\x1b[31m\x7fb",
    "exposition": 'x"} 1\nfake_metric{a="b"} 1\n# TYPE fake_metric counter\n',
    "escapes": 'a\\n\\"\\\\',
    "unicode": "a\u2603\U0001f600\u200bb",
    "long": "L" * 10240,
}


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-hostile"))
    yield server
    server.stop()


def _all_lines_structured(exp) -> list[str]:
    """Log lines that are not one whole logfmt record (a name must not break a line)."""
    text = exp.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if not line.startswith("ts=")]


def test_hostile_names_from_prefect(hostile_server, start_exporter):
    api = hostile_server.client()
    tag = uuid.uuid4().hex[:6]
    made = {}
    for key, hostile in HOSTILE.items():
        pool, queue, flow, name = (f"{hostile}{kind}{tag}" for kind in ("P", "Q", "F", "D"))
        api.create_pool(pool)
        dep = api.create_deployment(flow, name, pool, queue)  # creates the queue too
        api.run_in_state(dep, "RUNNING")
        try:
            api.post(f"/work_pools/{quote(pool, safe='')}/workers/heartbeat",
                     {"name": f"{hostile}W", "heartbeat_interval_seconds": 30})
        except PrefectAPIError:
            # Prefect's own routes cannot take a pool name with a line feed in the path (404).
            assert "\n" in pool, f"heartbeat failed for {key}"
        made[key] = (pool, queue, dep)

    exp = start_exporter(api_url=hostile_server.api_url)
    for _, _, dep in made.values():  # finished after the exporter started: counted
        api.run_in_state(dep, "COMPLETED")
    s = exp.wait_polls(2)
    assert s.value("prefect_up") == 1
    assert not s.duplicates, s.duplicates[:5]
    code, out = promtool_check_metrics(s.text)
    assert code == 0, out[:3000]
    for key, (pool, queue, dep) in made.items():
        full = dep["full_name"]
        assert s.value("prefect_work_pool_info", work_pool=pool, type="process") == 1, key
        assert s.value("prefect_deployment_info", deployment=full, flow=dep["flow_name"], work_pool=pool,
                       work_queue=queue) == 1, key
        labels = dict(work_pool=pool, work_queue=queue, deployment=full)
        assert s.value("prefect_flow_runs", state_type="RUNNING", state_name="Running", **labels) == 1, key
        assert s.value("prefect_flow_runs_finished_total", state_type="COMPLETED", **labels) == 1, key
        online = s.value("prefect_work_pool_workers", work_pool=pool, status="ONLINE")
        assert online == (0 if "\n" in pool else 1), (key, online)
    # Nothing was injected into the exposition.
    assert not any(n.startswith("fake_metric") for n in s.names())
    assert not re.search(r"^fake_metric", s.text, re.M)
    # A pool whose name does not route gets a 404 for its workers, which does not fail the poll.
    assert s.sum("prefect_exporter_api_requests_total", endpoint="/work_pools/{name}/workers/filter", code="404") >= 1
    assert s.value("prefect_exporter_collector_success", collector="workers") == 1
    # The log stays one record per line and quiet.
    assert not _all_lines_structured(exp), _all_lines_structured(exp)[:5]
    assert not log_lines(exp, r"level=(error|warn)"), log_lines(exp, r"level=(error|warn)")[:3]
    api.close()


# Strings JSON can carry but Prefect cannot store: lone surrogates (as \\udXXX escapes) and,
# from a broken server, raw bytes that are not UTF-8. Each becomes U+FFFD.
INVALID = {
    "pool": ("P", "p\udc80ool"),
    "queue": ("Q", "q\ud800ueue"),
    "flow": ("F", "f\udfffl\udbffow"),
    "deployment": ("D", b"d\xffe\xc3(p"),  # raw bytes: invalid UTF-8
    "state": ("Running", "Run\udc80ning"),
}


def test_names_that_are_not_unicode(hostile_server, start_exporter):
    api = hostile_server.client()
    tag = uuid.uuid4().hex[:6]
    real = {kind: f"{kind.lower()}-{tag}" for kind in ("P", "Q", "F", "D")}
    api.create_pool(real["P"])
    dep = api.create_deployment(real["F"], real["D"], real["P"], real["Q"])
    api.run_in_state(dep, "RUNNING")
    replace = {real[k] if k in real else k: v for k, v in INVALID.values()}
    markers = {}

    def swap(value):
        if isinstance(value, str) and value in replace:
            new = replace[value]
            if isinstance(new, bytes):
                marker = f"RAW-{uuid.uuid4().hex}"
                markers[marker] = new
                return marker
            return new
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    def rewrite(path, body):
        out = json.dumps(swap(body), ensure_ascii=True).encode()
        for marker, raw in markers.items():
            out = out.replace(marker.encode(), raw)
        return out

    proxy = FaultProxy(hostile_server.port)
    try:
        proxy.set("rewrite", rewrite=rewrite)
        exp = start_exporter(api_url=proxy.api_url)
        api.run_in_state(dep, "COMPLETED")
        s = exp.wait_polls(2)
        assert any(r.fault == "rewrite" for r in proxy.requests)  # the names really were swapped
        assert s.value("prefect_up") == 1
        code, out = promtool_check_metrics(s.text)
        assert code == 0, out[:3000]
        pool, queue, flow = "p\ufffdool", "q\ufffdueue", "f\ufffdl\ufffdow"
        deployment = f"{flow}/d\ufffde\ufffd(p"
        assert s.value("prefect_work_pool_info", work_pool=pool, type="process") == 1
        assert s.value("prefect_deployment_info", deployment=deployment, flow=flow, work_pool=pool,
                       work_queue=queue) == 1
        labels = dict(work_pool=pool, work_queue=queue, deployment=deployment)
        assert s.value("prefect_flow_runs", state_type="RUNNING", state_name="Run\ufffdning", **labels) == 1
        assert s.value("prefect_flow_runs_finished_total", state_type="COMPLETED", **labels) == 1
        assert not _all_lines_structured(exp)
        assert not log_lines(exp, r"level=(error|warn)"), log_lines(exp, r"level=(error|warn)")[:3]
    finally:
        proxy.close()
        api.close()
