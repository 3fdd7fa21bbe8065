"""pytest fixtures for the integration tests: a real Prefect server, a seeding client and the
exporter process. See harness.py for the helpers behind them.

Fixtures
    prefect_server        session  the shared Prefect server (harness.PrefectServer)
    prefect               session  a harness.PrefectAPI client for it, to seed and read data
    auth_prefect_server   session  a second server with basic auth user:pass (started lazily)
    unique_name           function unique_name("pool") -> "pool-<test>-<hex>", to isolate tests
    start_exporter        function factory: start_exporter(args=(), env=None, api_url=None,
                                   wait="up") -> harness.Exporter, stopped after the test

Environment
    PREFECT_EXPORTER_BIN      the exporter binary (default .build/debug/prefect-exporter)
    PREFECT_TEST_PREFECT_CLI  the ``prefect`` CLI the test servers run (default .venv/bin/prefect),
                              e.g. ``.venv-prefect-3.4/bin/prefect`` with ``-m core`` to test the
                              older Prefect line that scripts/setup installs next to .venv

Markers (pytest.ini)
    core   the subset run against the older Prefect line too: exact series, the read-only
           guarantee, counters
    auth   needs the second server with basic auth

Under pytest-xdist (``-n N --dist loadfile``, as scripts/test runs it) every worker has its own
session servers, temporary directories and block of ports (harness.free_port).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Iterable

import pytest

from harness import (
    AUTH_STRING,
    Exporter,
    PrefectServer,
    clean_env,
    default_exporter_args,
    free_port,
    start_prefect_server,
)

_servers: list[PrefectServer] = []


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    server = start_prefect_server(tmp_path_factory.mktemp("prefect"))
    _servers.append(server)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prefect(prefect_server: PrefectServer):
    api = prefect_server.client()
    yield api
    api.close()


@pytest.fixture(scope="session")
def auth_prefect_server(tmp_path_factory: pytest.TempPathFactory):
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-auth"),
                                  env={"PREFECT_SERVER_API_AUTH_STRING": AUTH_STRING})
    _servers.append(server)
    yield server
    server.stop()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest):
    """Names unique to this test: ``unique_name("pool")`` -> ``pool-<test name>-<8 hex>``."""
    import uuid

    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_")).strip("-")[:24]

    def make(prefix: str) -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"
    return make


@pytest.fixture
def start_exporter(request: pytest.FixtureRequest, tmp_path: Path):
    """Factory for exporter processes; every one is stopped when the test ends.

    ``start_exporter(args=(), env=None, api_url=None, wait="up", defaults=True)``:
      - ``args``: extra flags, appended after the defaults (``--prefect.api-url <shared
        server>``, ``--web.listen-address 127.0.0.1:<free port>``, ``--prefect.poll-interval 1s``,
        ``--prefect.late-after 15s``); later flags win if the exporter allows repeats, so pass
        ``defaults=False`` to control every flag yourself (the listen address is still added).
      - ``env``: environment additions; PREFECT_* variables of the caller are never inherited.
      - ``api_url``: the Prefect API URL (default: the shared server, started on demand).
      - ``wait``: ``"up"`` (``/-/ready`` then ``prefect_up 1``), ``"ready"``, ``"metrics"``
        (``/metrics`` answers) or ``None``.
    """
    exporters: list[Exporter] = []
    request.node._exporters = exporters  # for the failure report hook

    def start(args: Iterable[str] = (), env: dict[str, str] | None = None, api_url: str | None = None,
              wait: str | None = "up", defaults: bool = True, timeout: float = 30.0) -> Exporter:
        if api_url is None:
            api_url = request.getfixturevalue("prefect_server").api_url
        port = free_port()
        if defaults:
            argv = default_exporter_args(api_url, port, args)
        else:
            argv = ["--web.listen-address", f"127.0.0.1:{port}", *args]
        log = Path(tempfile.mkstemp(prefix="exporter-", suffix=".log", dir=tmp_path)[1])
        exp = Exporter(argv, clean_env(env), port, log)
        exporters.append(exp)
        if wait in ("up", "ready"):
            exp.wait_ready(timeout)
        if wait == "up":
            exp.wait_up(timeout)
        elif wait == "metrics":
            exp.wait_metrics(timeout)
        return exp

    yield start
    for exp in exporters:
        exp.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for i, exp in enumerate(getattr(item, "_exporters", [])):
        report.sections.append((f"exporter {i} log ({' '.join(exp.args)})", exp.log_tail(8000)))
    if report.when in ("setup", "call"):
        for server in _servers:
            report.sections.append((f"prefect server :{server.port} log (tail)", server.log_tail(6000)))


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than in pytest.ini (see test_prefect_cloud.py).
    config.addinivalue_line("markers", "cloud: Prefect-Cloud-shaped tests through cloudproxy.CloudProxy "
                                       "(about 1 to 1.5 minutes); deselect with -m \"not cloud\"")
