"""Secrets never leak: an API key, a basic-auth string or a password in the API URL, given by
environment, file or flag, appears nowhere in the exporter's output (logs at debug level,
/metrics, the landing page, error messages), whether Prefect accepts it, rejects it or is down.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from faultproxy import FaultProxy, fault_proxy  # noqa: F401 - fault_proxy is a fixture
from harness import free_port, run_exporter_cli

DEBUG = ["--log.level", "debug", "--prefect.timeout", "1s", "--prefect.connect-timeout", "1s",
         "--prefect.retries", "1"]


def _secret(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def _forms(secret: str) -> set[str]:
    """A secret as it could leak: as given, base64 (Basic auth) and its password part alone."""
    forms = {secret, base64.b64encode(secret.encode()).decode()}
    if ":" in secret:
        forms.add(secret.split(":", 1)[1])
    return forms


def _everything(exp) -> str:
    """Every output of a running exporter: its log, /metrics (plain and gzip), / and health."""
    parts = [exp.log_path.read_text(errors="replace")]
    for path in ("/metrics", "/", "/-/ready", "/-/healthy", "/nope"):
        parts.append(exp.get(path).text)
    parts.append(exp.get("/metrics", headers={"Accept-Encoding": "gzip"}).text)  # httpx inflates it
    return "\n".join(parts)


def _assert_no_leak(text: str, secrets: set[str]) -> None:
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"secret(s) {leaked} found in the exporter's output"


def _polls(exp, n: int = 3):
    return exp.wait_scrape(lambda s: s.sum("prefect_exporter_polls_total") >= n, timeout=30, message=f"{n} polls")


def _credentials_sent(proxy: FaultProxy) -> set[str]:
    return {v for r in proxy.requests for n, v in r.headers if n.lower() == "authorization"}


@pytest.mark.parametrize("how", ["env", "file"])
@pytest.mark.parametrize("answer", [None, 401, 403], ids=["accepted", "401", "403"])
def test_api_key(fault_proxy: FaultProxy, start_exporter, tmp_path, how, answer):
    key = _secret("pnu_")
    if answer:
        fault_proxy.set("status", status=answer, body=b'{"detail":"Invalid API key"}')
    args, env = list(DEBUG), {}
    if how == "env":
        env["PREFECT_API_KEY"] = key
    else:
        path = tmp_path / "key"
        path.write_text(key + "\n")
        args += ["--prefect.api-key-file", str(path)]
    exp = start_exporter(args, env=env, api_url=fault_proxy.api_url, wait="metrics")
    s = _polls(exp)
    assert s.value("prefect_up") == (0 if answer else 1)
    assert _credentials_sent(fault_proxy) == {f"Bearer {key}"}  # the key was really used
    _assert_no_leak(_everything(exp), _forms(key))


@pytest.mark.parametrize("how", ["env", "file"])
@pytest.mark.parametrize("answer", [None, 401], ids=["accepted", "401"])
def test_auth_string(fault_proxy: FaultProxy, start_exporter, tmp_path, how, answer):
    auth = _secret("user:pass-")
    if answer:
        fault_proxy.set("status", status=answer, body=b'{"exception_message":"Unauthorized"}')
    args, env = list(DEBUG), {}
    if how == "env":
        env["PREFECT_API_AUTH_STRING"] = auth
    else:
        path = tmp_path / "auth"
        path.write_text(auth)
        args += ["--prefect.auth-string-file", str(path)]
    exp = start_exporter(args, env=env, api_url=fault_proxy.api_url, wait="metrics")
    s = _polls(exp)
    assert s.value("prefect_up") == (0 if answer else 1)
    assert _credentials_sent(fault_proxy) == {f"Basic {base64.b64encode(auth.encode()).decode()}"}
    _assert_no_leak(_everything(exp), _forms(auth))


@pytest.mark.auth
def test_wrong_auth_string_against_a_real_auth_server(auth_prefect_server, start_exporter):
    auth = _secret("user:wrong-")
    exp = start_exporter(DEBUG, env={"PREFECT_API_AUTH_STRING": auth}, api_url=auth_prefect_server.api_url,
                         wait="metrics")
    s = _polls(exp)
    assert s.value("prefect_up") == 0
    assert s.sum("prefect_exporter_api_requests_total", code="401") >= 1
    _assert_no_leak(_everything(exp), _forms(auth))


@pytest.mark.parametrize("answer", [None, 401], ids=["accepted", "401"])
def test_password_in_the_url(fault_proxy: FaultProxy, start_exporter, answer):
    userinfo = _secret("urluser:urlpass-")
    if answer:
        fault_proxy.set("status", status=answer)
    url = f"http://{userinfo}@127.0.0.1:{fault_proxy.port}/api"
    exp = start_exporter(DEBUG, api_url=url, wait="metrics")
    s = _polls(exp)
    assert s.value("prefect_up") == (0 if answer else 1)
    assert _credentials_sent(fault_proxy)  # libcurl sends URL credentials as Basic auth
    text = _everything(exp)
    _assert_no_leak(text, _forms(userinfo))
    assert f"127.0.0.1:{fault_proxy.port}/api" in exp.get("/").text  # the landing page shows the URL, redacted


@pytest.mark.parametrize("kind", ["api-key", "auth-string", "url"])
def test_prefect_down(start_exporter, tmp_path, kind):
    secret = _secret("pnu_" if kind == "api-key" else "user:pass-")
    port = free_port()  # nothing listens
    url = f"http://127.0.0.1:{port}/api"
    env = {}
    if kind == "api-key":
        env["PREFECT_API_KEY"] = secret
    elif kind == "auth-string":
        env["PREFECT_API_AUTH_STRING"] = secret
    else:
        url = f"http://{secret}@127.0.0.1:{port}/api"
    exp = start_exporter(DEBUG, env=env, api_url=url, wait="metrics")
    s = _polls(exp)
    assert s.value("prefect_up") == 0
    _assert_no_leak(_everything(exp), _forms(secret))


def test_once_mode(fault_proxy: FaultProxy):
    key = _secret("pnu_")
    fault_proxy.set("status", status=401)
    r = run_exporter_cli(["--once", "--log.level", "debug", "--prefect.retries", "0",
                          "--prefect.api-url", fault_proxy.api_url], env={"PREFECT_API_KEY": key})
    assert r.returncode == 1, r.stderr
    _assert_no_leak(r.stdout + r.stderr, _forms(key))


# Configuration errors name the setting at fault, never the secret in it.
CONFIG_ERRORS = [
    ("key and auth string both set", [], {"PREFECT_API_KEY": "SECRET-A", "PREFECT_API_AUTH_STRING": "u:SECRET-B"}),
    ("auth string without a colon", [], {"PREFECT_API_AUTH_STRING": "SECRET-NOCOLON"}),
    ("URL with a password and a bad scheme", ["--prefect.api-url", "ftp://user:SECRET-FTP@example.com/api"], {}),
    ("URL with a password and a query", ["--prefect.api-url", "http://user:SECRET-Q@example.com/api?x=1"], {}),
    ("URL in the environment, bad scheme", [], {"PREFECT_API_URL": "gopher://user:SECRET-ENV@example.com/api"}),
    ("URL with a password, no host", ["--prefect.api-url", "http://user:SECRET-NOHOST@/api"], {}),
]


@pytest.mark.parametrize("args,env", [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS])
def test_configuration_errors(args, env, tmp_path):
    r = run_exporter_cli(["--web.listen-address", f"127.0.0.1:{free_port()}", *args], env=env)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "a configuration error says what is wrong"
    secrets = {part for value in [*args, *env.values()] for part in value.replace("@", ":").split(":")
               if "SECRET" in part}
    assert secrets
    _assert_no_leak(r.stdout + r.stderr, secrets)


def test_key_file_errors_do_not_print_the_file(tmp_path):
    path = tmp_path / "key"
    path.write_text("pnu_SECRET-LINE-1\npnu_SECRET-LINE-2\n")  # two lines: rejected
    r = run_exporter_cli(["--prefect.api-key-file", str(path), "--web.listen-address", f"127.0.0.1:{free_port()}"])
    assert r.returncode == 2, r.stderr
    assert str(path) in r.stderr
    _assert_no_leak(r.stdout + r.stderr, {"SECRET-LINE-1", "SECRET-LINE-2"})
