"""Self-hosted basic auth (PREFECT_SERVER_API_AUTH_STRING on the server). These tests start a
second Prefect server (about 10 s); deselect them with -m "not auth"."""

from __future__ import annotations

import pytest

from harness import AUTH_STRING

pytestmark = pytest.mark.auth


def test_server_rejects_anonymous_requests(auth_prefect_server):
    import httpx
    assert httpx.get(f"{auth_prefect_server.api_url}/health").status_code == 200
    assert httpx.get(f"{auth_prefect_server.api_url}/version").status_code == 401
    assert auth_prefect_server.client().version()  # with credentials


def test_auth_string_from_environment(auth_prefect_server, start_exporter):
    exp = start_exporter(env={"PREFECT_API_AUTH_STRING": AUTH_STRING}, api_url=auth_prefect_server.api_url)
    s = exp.scrape()
    assert s.value("prefect_up") == 1
    codes = {dict(l)["code"] for l in s.series("prefect_exporter_api_requests_total")}
    assert codes == {"200"}, codes


def test_auth_string_from_file(auth_prefect_server, start_exporter, tmp_path):
    path = tmp_path / "auth"
    path.write_text(AUTH_STRING + "\n")  # as `echo user:pass > file` writes it
    exp = start_exporter(["--prefect.auth-string-file", str(path)], api_url=auth_prefect_server.api_url)
    assert exp.scrape().value("prefect_up") == 1


def test_wrong_auth_string(auth_prefect_server, start_exporter):
    exp = start_exporter(env={"PREFECT_API_AUTH_STRING": "user:wrong"}, api_url=auth_prefect_server.api_url,
                         wait="metrics")
    s = exp.wait_scrape(lambda s: s.value("prefect_exporter_polls_total", default=0, result="failure") >= 1,
                        timeout=30, message="a failed poll")
    assert s.value("prefect_up") == 0
    assert s.sum("prefect_exporter_api_requests_total", code="401") >= 1
    assert not s.series("prefect_flow_runs")
    assert exp.alive()


def test_no_auth_string(auth_prefect_server, start_exporter):
    exp = start_exporter(api_url=auth_prefect_server.api_url, wait="metrics")
    s = exp.wait_scrape(lambda s: s.value("prefect_exporter_polls_total", default=0, result="failure") >= 1,
                        timeout=30, message="a failed poll")
    assert s.value("prefect_up") == 0
    assert s.sum("prefect_exporter_api_requests_total", code="401") >= 1
