"""`prefect-exporter check` against real Prefect servers, `once` as node_exporter's textfile
collector reads it, shell completions, and the committed man page being up to date."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from faultproxy import fault_proxy  # noqa: F401 - a fixture
from harness import AUTH_STRING, REPO_ROOT, Scrape, exporter_binary, free_port, run_exporter_cli, utcnow, wait_for


def row(stdout: str, name: str) -> str:
    match = re.search(rf"^  {re.escape(name)}:\s+(.*)$", stdout, re.M)
    assert match, f"no '{name}:' row in:\n{stdout}"
    return match.group(1)


def test_check_reports_counts_and_warnings(prefect, prefect_server, unique_name):
    pool = unique_name("check-pool")
    prefect.create_pool(pool)  # no worker: NOT_READY
    paused = prefect.create_queue(pool, "paused", pause_after_create=True)
    dep = prefect.create_deployment(unique_name("check-flow"), "dep", pool=pool, queue="default")
    dep_paused = prefect.create_deployment(unique_name("check-flow"), "dep-paused", pool=pool, queue=paused["name"])
    prefect.create_run(dep, utcnow() - dt.timedelta(minutes=10))  # late
    prefect.create_run(dep_paused, utcnow() + dt.timedelta(hours=1))  # waiting behind a paused queue
    prefect.create_run(dep_paused, utcnow() + dt.timedelta(hours=2))

    r = run_exporter_cli(["check", "--prefect.api-url", prefect_server.api_url], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    out = r.stdout
    assert out.startswith("Configuration: OK (flags and environment; 1 Prefect target)\n")
    assert row(out, "version") == f"{prefect.server_version()} (API {prefect.version()})"
    assert row(out, "auth") == "none configured, none required"
    # The counts are Prefect's own, read the exporter's way.
    assert int(row(out, "work pools")) == len(prefect.post("/work_pools/filter", {"limit": 200}))
    assert int(row(out, "work queues")) == len([q for q in prefect.all_queues() if q.get("work_pool_name")])
    assert int(row(out, "deployments")) == len(prefect.deployments())
    not_finished = prefect.count_runs({"flow_runs": {"state": {"type": {
        "any_": ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"]}}}})
    assert row(out, "flow runs").startswith(f"{not_finished} not finished (")
    assert f"late run in work pool '{pool}'; the latest is 10m" in out
    assert f"work pool '{pool}' is NOT_READY: no worker has polled it recently" in out
    assert f"work queue 'paused' of work pool '{pool}' is paused with 2 scheduled runs" in out
    assert row(out, "result").startswith("OK (one poll: ")
    # What the poll cost, and what that makes a minute at the default interval of 30 s.
    requests = int(re.search(r", (\d+) requests\)$", row(out, "result")).group(1))
    assert row(out, "requests") == (f"{requests} in one poll; about {round(requests * 2)} a minute at the poll interval of "
                                    "30s (no budget set: --prefect.max-requests-per-minute)")
    assert "outside the versions" not in out


def test_check_sizes_the_request_budget(prefect_server):
    within = run_exporter_cli(["check", "--prefect.api-url", prefect_server.api_url,
                               "--prefect.max-requests-per-minute", "100000"], timeout=60)
    assert within.returncode == 0, within.stdout + within.stderr
    assert row(within.stdout, "requests").endswith("(within the budget of 100000 a minute)")

    # A budget below what polls every second would send: check says how often the exporter will poll.
    over = run_exporter_cli(["check", "--prefect.api-url", prefect_server.api_url, "--prefect.poll-interval", "1s",
                             "--prefect.max-requests-per-minute", "1000"], timeout=60)
    assert over.returncode == 0, over.stdout + over.stderr
    requests = int(re.search(r", (\d+) requests\)$", row(over.stdout, "result")).group(1))
    assert requests * 60 > 1000
    stretched = requests * 60 / 1000
    shown = f"{round(stretched)}s" if stretched == round(stretched) or stretched >= 10 else f"{round(stretched * 10) / 10}s"
    assert row(over.stdout, "requests") == (
        f"{requests} in one poll; about {requests * 60} a minute at the poll interval of 1s "
        f"(over the budget of 1000 a minute: polls will run every {shown})")


def test_check_warns_about_an_untested_prefect_version(prefect_server, fault_proxy):
    fault_proxy.set("rewrite", paths=r"/admin/version$", rewrite=lambda path, body: "3.2.1")
    r = run_exporter_cli(["check", "--prefect.api-url", fault_proxy.api_url], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr  # a warning, not a failure
    assert row(r.stdout, "version").startswith("3.2.1 (API ")
    assert ("Prefect 3.2.1 is outside the versions this exporter is tested with (3.4 to 3.9; CI runs 3.4.25 and 3.9.1)"
            in r.stdout), r.stdout


@pytest.mark.auth
def test_check_with_and_without_credentials(auth_prefect_server, tmp_path):
    r = run_exporter_cli(["check", "--prefect.api-url", auth_prefect_server.api_url], timeout=60)
    assert r.returncode == 1
    assert row(r.stdout, "auth") == "REJECTED (HTTP 401)"
    assert "Prefect rejected the credentials (HTTP 401)" in r.stderr
    assert "PREFECT_API_AUTH_STRING" in r.stderr

    r = run_exporter_cli(["check", "--prefect.api-url", auth_prefect_server.api_url],
                         env={"PREFECT_API_AUTH_STRING": "user:wrong"}, timeout=60)
    assert r.returncode == 1
    assert "check the user:pass" in r.stderr

    auth = tmp_path / "auth"
    auth.write_text(AUTH_STRING + "\n")
    r = run_exporter_cli(["check", "--prefect.api-url", auth_prefect_server.api_url, "--prefect.auth-string-file", str(auth)],
                         timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert row(r.stdout, "auth") == "accepted (basic auth)"


def test_check_names_a_missing_api_path(prefect_server):
    r = run_exporter_cli(["check", "--prefect.api-url", prefect_server.url], timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Prefect answered 404 to GET /version" in lines[0]
    assert f"(try {prefect_server.url}/api)" in lines[0]
    assert "FAILED" in row(r.stdout, "result")


def test_check_connection_refused(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/api"
    r = run_exporter_cli(["check", "--prefect.api-url", url, "--prefect.retries", "0"], timeout=60)
    assert r.returncode == 1
    assert f"check failed for {url}: cannot reach Prefect at {url} (GET /version): " in r.stderr
    assert "onnect" in r.stderr


@pytest.fixture
def self_signed_tls_server(tmp_path):
    """A TLS server on 127.0.0.1 with a self-signed certificate that answers nothing useful."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl binary")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1024)
            except (ssl.SSLError, OSError):
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


def test_check_tls_failure(self_signed_tls_server):
    url = f"https://127.0.0.1:{self_signed_tls_server}/api"
    r = run_exporter_cli(["check", "--prefect.api-url", url, "--prefect.retries", "0"], timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot reach Prefect at {url}" in r.stderr
    assert "--prefect.ca-file" in r.stderr  # the hint


def test_check_rejects_bad_flags_like_the_exporter():
    r = run_exporter_cli(["check", "--prefect.poll-interval", "soon"])
    assert r.returncode == 2
    assert r.stderr.strip() == "prefect-exporter: --prefect.poll-interval: 'soon' is not a duration; write e.g. 500ms, 15s, 1m, 1h30m"
    r = run_exporter_cli(["check", "--once"])
    assert r.returncode == 2


# -- once and the textfile collector ---------------------------------------------------------

def test_once_subcommand_and_flag_print_the_text_format(prefect_server):
    for args in (["once"], ["--once"]):
        r = run_exporter_cli([*args, "--prefect.api-url", prefect_server.api_url], timeout=60)
        assert r.returncode == 0, r.stderr
        s = Scrape.parse(r.stdout)
        assert s.value("prefect_up") == 1
        assert s.series("prefect_server_info")
        # node_exporter reports its own process_* metrics; ours would collide with them.
        assert not [n for n in s.names() if n.startswith("process_")]
        assert "# EOF" not in r.stdout
    r = run_exporter_cli(["once", "--prefect.api-url", f"http://127.0.0.1:{free_port()}/api", "--prefect.retries", "0"],
                         timeout=60)
    assert r.returncode == 1
    assert Scrape.parse(r.stdout).value("prefect_up") == 0


def test_once_output_is_accepted_by_the_textfile_collector(prefect_server, tmp_path):
    node_exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not node_exporter:
        pytest.skip("node_exporter is not installed (Debian: prometheus-node-exporter)")
    directory = tmp_path / "textfile"
    directory.mkdir()
    r = run_exporter_cli(["once", "--prefect.api-url", prefect_server.api_url], timeout=60)
    assert r.returncode == 0, r.stderr
    # The documented way: write a temporary file, then rename it into place.
    (directory / "prefect.prom.tmp").write_text(r.stdout)
    os.rename(directory / "prefect.prom.tmp", directory / "prefect.prom")
    port = free_port()
    log = tmp_path / "node_exporter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([node_exporter, "--collector.disable-defaults", "--collector.textfile",
                                 f"--collector.textfile.directory={directory}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        text = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, 20,
                        message="node_exporter /metrics")
        s = Scrape.parse(text)
        assert s.value("node_textfile_scrape_error") == 0
        assert s.value("prefect_up") == 1
        assert s.series("prefect_work_pool_info") or s.series("prefect_server_info")
        time.sleep(0.5)
        assert "error gathering metrics" not in log.read_text(), log.read_text()
    finally:
        proc.terminate()
        proc.wait(10)


# -- completions and man page ------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell, tmp_path):
    r = run_exporter_cli(["--generate-completion-script", shell])
    assert r.returncode == 0, r.stderr
    script = r.stdout
    for word in ("check", "once", "--config.file", "--prefect.poll-interval", "--metrics.max-series-per-family"):
        if shell == "fish":
            word = word.lstrip("-")  # fish writes -l 'config.file'
        assert word in script, (shell, word)
    interpreter = shutil.which(shell)
    if interpreter and shell in ("bash", "zsh"):
        path = tmp_path / f"completion.{shell}"
        path.write_text(script)
        check = subprocess.run([interpreter, "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def generate_manual_tool() -> Path:
    """swift-argument-parser's generate-manual (what its GenerateManual plugin runs), built next to the exporter."""
    binary = exporter_binary().resolve()
    tool = binary.parent / "generate-manual"
    scratch = binary.parent.parent
    if scratch.name != ".build" and scratch.parent.name.startswith(".build"):
        scratch = scratch.parent  # <scratch>/<triple>/debug
    if not tool.is_file() and not scratch.name.startswith(".build"):
        # A copy of the exporter outside a build tree (PREFECT_EXPORTER_BIN=/tmp/...): the tool
        # only renders the binary's --experimental-dump-help, so the repo's own build serves.
        tool = REPO_ROOT / ".build" / "debug" / "generate-manual"
        scratch = REPO_ROOT / ".build"
    if not tool.is_file():
        swift = shutil.which("swift")
        if not swift:
            pytest.fail(f"{tool} not found and no swift to build it")
        subprocess.run([swift, "build", "--scratch-path", str(scratch), "--product", "generate-manual"],
                       cwd=REPO_ROOT, check=True, capture_output=True, timeout=600)
    assert tool.is_file(), tool
    return tool


def test_man_page_is_up_to_date(tmp_path):
    committed = (REPO_ROOT / "docs" / "prefect-exporter.1").read_text()
    match = re.search(r"^\.Dd (\w+) (\d+), (\d+)$", committed, re.M)
    assert match, "no .Dd line in docs/prefect-exporter.1"
    date = dt.datetime.strptime(" ".join(match.groups()), "%B %d %Y").strftime("%Y-%m-%d")
    subprocess.run([str(generate_manual_tool()), str(exporter_binary()), "--date", date, "--output-directory", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    generated = (tmp_path / "prefect-exporter.1").read_text()
    assert generated == committed, "docs/prefect-exporter.1 is out of date: run scripts/gen-manpage"
    for word in ("check", "once", "config.file", "metrics.max-series-per-family"):
        assert word in committed


def test_check_reports_a_collector_refused_while_prefect_answers(prefect, unique_name, fault_proxy):
    """A 403 on one endpoint (a key whose role lacks one permission): PARTIAL, the collector and
    the endpoint named, exit 1; the counts Prefect did answer are still printed."""
    pool = unique_name("check-partial")
    prefect.create_pool(pool)
    fault_proxy.set("status", status=403, paths=r"/workers/filter", body=b'{"detail":"Forbidden"}')
    r = run_exporter_cli(["check", "--prefect.api-url", fault_proxy.api_url], timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert int(row(out, "work pools")) == len(prefect.post("/work_pools/filter", {"limit": 200}))
    assert row(out, "collectors") == "1 of 10 failed"
    assert "    - workers: Prefect refused POST /work_pools/{name}/workers/filter" in out
    assert "lack permission for this endpoint" in out and "PREFECT_API_KEY" not in out
    assert row(out, "result").startswith("PARTIAL: Prefect answered, but these collectors failed: workers")
    assert "check failed for" in r.stderr and "workers" in r.stderr
