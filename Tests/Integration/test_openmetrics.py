"""OpenMetrics 1.0.0 on request: the exact Accept headers Prometheus 2.x and 3.x send get
OpenMetrics, checked with prometheus_client's OpenMetrics parser; anything else gets the text
format 0.0.4. Both pages come from the same poll, rendered once, not per scrape."""

from __future__ import annotations

import datetime as dt
import gzip
import time

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from harness import Scrape, utcnow, wait_for

# Prometheus 2.x (the scrapeAcceptHeader constant, and the scrape_protocols default since 2.49).
PROMETHEUS_2 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
# Prometheus 3.x with the default scrape_protocols.
PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
                "text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def get(exp, accept: str | None, encoding: str = "identity") -> httpx.Response:
    headers = {"Accept-Encoding": encoding}
    if accept is not None:
        headers["Accept"] = accept
    r = exp.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text[:300]
    return r


def openmetrics_samples(text: str) -> tuple[dict, dict]:
    """(samples by (name, labels), families by name) from the OpenMetrics parser, which raises on any error."""
    samples, families = {}, {}
    for family in parse_openmetrics(text):
        families[family.name] = family
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def seed(prefect, unique_name) -> dict:
    pool = unique_name("om-pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(unique_name("om-flow"), "dep", pool=pool, queue="default")
    prefect.create_run(dep, utcnow() - dt.timedelta(minutes=3))  # late
    return {"pool": pool, "deployment": dep}


def test_prometheus_gets_openmetrics_that_a_real_parser_accepts(prefect, start_exporter, unique_name):
    seeded = seed(prefect, unique_name)
    exp = start_exporter(["--prefect.poll-interval", "1s"])
    wait_for(lambda: any(dict(l).get("work_pool") == seeded["pool"] for l in exp.scrape().series("prefect_work_pool_info")),
             20, message="the seeded pool")
    # A run that finishes, so that prefect_flow_runs_finished_total has a counted series.
    prefect.run_in_state(seeded["deployment"], "COMPLETED")
    exp.wait_scrape(lambda s: s.sum("prefect_flow_runs_finished_total", work_pool=seeded["pool"]) >= 1, 30,
                    "the finished run counted")
    for accept in (PROMETHEUS_2, PROMETHEUS_3):
        r = get(exp, accept)
        assert r.headers["content-type"] == OPENMETRICS, accept
        assert r.headers["vary"] == "Accept, Accept-Encoding"
        assert r.text.endswith("\n# EOF\n")
        samples, families = openmetrics_samples(r.text)

        # Counters: family without _total, samples _total and _created.
        assert families["prefect_exporter_polls"].type == "counter"
        assert families["prefect_flow_runs_finished"].type == "counter"
        assert ("prefect_exporter_polls_total", frozenset({("result", "success")})) in samples
        assert any(n == "prefect_flow_runs_finished_created" for n, _ in samples)
        # Info families.
        for name in ("prefect_work_pool", "prefect_deployment", "prefect_server", "prefect_exporter_build"):
            assert families[name].type == "info", name
        pool_info = [dict(l) for n, l in samples if n == "prefect_work_pool_info"]
        assert {"work_pool": seeded["pool"], "type": "process"} in pool_info
        # Units.
        assert families["prefect_flow_run_lateness_seconds"].unit == "seconds"
        assert families["process_resident_memory_bytes"].unit == "bytes"
        assert families["prefect_exporter_last_poll_success_timestamp_seconds"].unit == "seconds"
        # One-hot statuses stay gauges with their status label (see the README).
        assert families["prefect_work_pool_status"].type == "gauge"
        assert samples[("prefect_work_pool_status", frozenset({("work_pool", seeded["pool"]), ("status", "NOT_READY")}))] == 1
        assert families["prefect_flow_run_lateness_seconds"].type == "histogram"


def test_both_formats_have_the_same_series_from_the_same_poll(start_exporter):
    exp = start_exporter(["--prefect.poll-interval", "5s"])

    def same_poll():
        om = get(exp, PROMETHEUS_3).text
        text = get(exp, None).text
        om_samples, _ = openmetrics_samples(om)
        t = Scrape.parse(text)
        key = ("prefect_exporter_polls_total", frozenset({("result", "success")}))
        return (om_samples, t) if om_samples.get(key) == t.samples.get(key) else None
    om_samples, text_scrape = wait_for(same_poll, 20, message="an OpenMetrics and a text scrape of the same poll")
    created = {k: v for k, v in om_samples.items() if k[0].endswith("_created")}
    assert created
    without_created = {k: v for k, v in om_samples.items() if not k[0].endswith("_created")}
    # prometheus_client's text parser reports counters with _total; OpenMetrics writes the same names.
    assert set(without_created) == set(text_scrape.samples)
    for key, value in without_created.items():
        assert value == text_scrape.samples[key] or (value != value and text_scrape.samples[key] != text_scrape.samples[key]), key


def test_created_times(start_exporter):
    before = time.time()
    exp = start_exporter()
    samples, _ = openmetrics_samples(get(exp, PROMETHEUS_2).text)
    process_start = samples[("process_start_time_seconds", frozenset())]
    for (name, labels), value in samples.items():
        if name.startswith(("prefect_exporter_", "process_")) and name.endswith("_created"):
            # The exporter's own counters started with the exporter.
            assert abs(value - process_start) < 5, (name, labels, value, process_start)
        elif name.endswith("_created"):
            # Prefect counters and cumulative histograms: when the series first appeared.
            assert before - 5 <= value <= time.time(), (name, labels, value)
    # Snapshot histograms (lateness, running) have no _created.
    assert not any(n.startswith(("prefect_flow_run_lateness_seconds", "prefect_flow_run_running_seconds"))
                   and n.endswith("_created") for n, _ in samples)


def test_other_clients_get_the_text_format(start_exporter):
    exp = start_exporter()
    for accept in (None, "*/*", "text/plain", "text/plain;version=0.0.4;q=0.6,*/*;q=0.5",
                   "application/openmetrics-text;version=0.0.1", "text/html,application/xhtml+xml,*/*;q=0.8"):
        r = get(exp, accept)
        assert r.headers["content-type"] == TEXT, accept
        assert "# EOF" not in r.text
        assert r.headers["vary"] == "Accept, Accept-Encoding"
        Scrape.parse(r.text)


def test_gzip_in_both_formats(start_exporter):
    exp = start_exporter(["--prefect.poll-interval", "30s"])
    for accept, content_type in ((PROMETHEUS_2, OPENMETRICS), (None, TEXT)):
        plain = get(exp, accept).content
        headers = {"Accept-Encoding": "gzip"}
        if accept:
            headers["Accept"] = accept
        with httpx.Client() as client:
            raw = client.send(client.build_request("GET", f"{exp.url}/metrics", headers=headers), stream=True)
            body = raw.read() if raw.headers.get("content-encoding") != "gzip" else b"".join(raw.iter_raw())
            raw.close()
        assert raw.headers["content-type"] == content_type
        assert raw.headers["content-encoding"] == "gzip"
        assert gzip.decompress(body) == plain


def test_pages_are_rendered_per_poll_not_per_scrape(start_exporter):
    exp = start_exporter(["--prefect.poll-interval", "30s"])
    first = get(exp, PROMETHEUS_3).content
    # Between polls every scrape gets the very same bytes, whatever the format.
    for _ in range(5):
        assert get(exp, PROMETHEUS_2).content == first
    text = get(exp, None).content
    assert all(get(exp, "text/plain").content == text for _ in range(3))
