"""--web.config.file: TLS, client certificates and basic auth on the real exporter binary.

Certificates are made with the openssl binary for this module, bcrypt hashes with Python's
bcrypt package (an implementation independent of the libcrypt the exporter uses), and every
request is made with the curl binary (OpenSSL), as a Prometheus server or a person would.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import free_port, run_exporter_cli, wait_for

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(not (CURL and OPENSSL), reason="needs the curl and openssl binaries")

PASSWORD = "correct horse battery staple"
WRONG = "correct horse battery stapler"


# --------------------------------------------------------------------------------------------
# fixtures


PKI_SCRIPT = r"""
set -e
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
    ec "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
leaf() {  # name issuer extendedKeyUsage commonName [subjectAltName]
    ec "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$4"
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n%s\n' "$3" "${5:-}" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" \
        -days 30 -extfile "$1.ext" 2>/dev/null
}
ca ca "prefect-exporter integration CA"
ca other-ca "another CA"
leaf server ca serverAuth localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client ca clientAuth prometheus
leaf other-client other-ca clientAuth intruder
ec self-signed.key
openssl req -x509 -new -key self-signed.key -out self-signed.pem -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1/localhost, a good client certificate, a client
    certificate from another CA and a self-signed server certificate."""
    d = tmp_path_factory.mktemp("pki")
    r = subprocess.run(["/bin/sh", "-c", PKI_SCRIPT], cwd=d, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def password_hash() -> str:
    bcrypt = pytest.importorskip("bcrypt", reason="pip install bcrypt (scripts/requirements-test.txt)")
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()


@dataclass
class Reply:
    rc: int          # curl's exit status: 0, or 35 (TLS handshake), 60 (untrusted certificate)...
    status: int | None
    headers: dict[str, str]
    body: str


def curl(url: str, *args: str) -> Reply:
    # Bytes, not text=True: universal newlines would turn the CRLFs that delimit the head into LFs.
    r = subprocess.run([CURL, "-sS", "-i", "--max-time", "10", "--noproxy", "*", *args, url],
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        return Reply(r.returncode, None, {}, r.stderr.decode("utf-8", "replace"))
    head, _, body = r.stdout.decode("utf-8", "replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(0, int(lines[0].split()[1]), headers, body)


def write_config(directory: Path, text: str) -> Path:
    """Writes web.yml in ``directory``; relative paths in it are relative to that directory."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "web.yml"
    path.write_text(text)
    return path


def tls_block(pki: Path, extra: str = "") -> str:
    # Relative paths: the exporter must resolve them against the config file's directory.
    return f"tls_server_config:\n  cert_file: ../pki/server.pem\n  key_file: ../pki/server.key\n{extra}"


@pytest.fixture
def secure_exporter(start_exporter, pki: Path, tmp_path: Path):
    """``secure_exporter(config_text, *curl_args_that_work)`` starts the exporter with that web
    config and waits until ``/-/ready`` answers 200 to curl with those arguments."""
    # The config lives in tmp_path/conf/, the certificates are reachable as ../pki/ from there.
    (tmp_path / "pki").symlink_to(pki, target_is_directory=True)

    def start(config: str, *good_args: str, scheme: str = "https"):
        path = write_config(tmp_path / "conf", config)
        exp = start_exporter(["--web.config.file", str(path), "--log.level", "debug"], wait=None)
        url = f"{scheme}://127.0.0.1:{exp.port}"

        def ready() -> bool:
            assert exp.alive(), f"exporter exited with {exp.process.returncode}:\n{exp.log_tail(4000)}"
            return curl(f"{url}/-/ready", *good_args).status == 200
        wait_for(ready, timeout=30, message=lambda: f"/-/ready over {scheme}; log:\n{exp.log_tail(4000)}")
        return exp, url
    return start


# --------------------------------------------------------------------------------------------
# TLS


def test_tls_with_the_right_ca_serves_metrics(secure_exporter, pki):
    exp, url = secure_exporter(tls_block(pki), "--cacert", str(pki / "ca.pem"))
    ca = ("--cacert", str(pki / "ca.pem"))

    def up() -> bool:
        r = curl(f"{url}/metrics", *ca)
        return r.status == 200 and "\nprefect_up 1" in r.body
    wait_for(up, timeout=30, message="prefect_up 1 over HTTPS")
    r = curl(f"{url}/metrics", *ca, "--compressed")
    assert r.status == 200 and r.headers.get("content-encoding") == "gzip" and "\nprefect_up 1" in r.body
    by_name = curl(f"https://localhost:{exp.port}/", *ca, "--resolve", f"localhost:{exp.port}:127.0.0.1")
    assert by_name.status == 200 and "Prefect Exporter" in by_name.body


def test_tls_fails_with_a_wrong_ca_or_no_ca(secure_exporter, pki):
    exp, url = secure_exporter(tls_block(pki), "--cacert", str(pki / "ca.pem"))
    assert curl(f"{url}/metrics", "--cacert", str(pki / "other-ca.pem")).rc == 60
    assert curl(f"{url}/metrics").rc == 60  # the system's CAs do not know ours
    plain = curl(f"http://127.0.0.1:{exp.port}/metrics")
    assert plain.rc != 0 and plain.status is None
    assert exp.alive()


def test_self_signed_server_certificate_is_not_trusted(secure_exporter, pki):
    config = "tls_server_config:\n  cert_file: ../pki/self-signed.pem\n  key_file: ../pki/self-signed.key\n"
    exp, url = secure_exporter(config, "--cacert", str(pki / "self-signed.pem"))
    assert curl(f"{url}/metrics", "--cacert", str(pki / "ca.pem")).rc == 60


def test_min_version_tls13_refuses_tls12(secure_exporter, pki):
    exp, url = secure_exporter(tls_block(pki, "  min_version: TLS13\n"), "--cacert", str(pki / "ca.pem"))
    old = curl(f"{url}/-/healthy", "--cacert", str(pki / "ca.pem"), "--tls-max", "1.2")
    assert old.rc == 35, old  # handshake failure
    assert curl(f"{url}/-/healthy", "--cacert", str(pki / "ca.pem"), "--tlsv1.3").status == 200


def test_mutual_tls_require_and_verify(secure_exporter, pki):
    good = ("--cacert", str(pki / "ca.pem"), "--cert", str(pki / "client.pem"), "--key", str(pki / "client.key"))
    exp, url = secure_exporter(
        tls_block(pki, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ../pki/ca.pem\n"), *good)
    none = curl(f"{url}/metrics", "--cacert", str(pki / "ca.pem"))
    assert none.status == 403 or none.rc != 0, none
    wrong = curl(f"{url}/metrics", "--cacert", str(pki / "ca.pem"),
                 "--cert", str(pki / "other-client.pem"), "--key", str(pki / "other-client.key"))
    assert wrong.status == 403 or wrong.rc != 0, wrong
    assert wrong.status != 200
    ok = curl(f"{url}/metrics", *good)
    assert ok.status == 200 and "prefect_exporter_build_info" in ok.body


# --------------------------------------------------------------------------------------------
# basic auth


def test_basic_auth_over_tls(secure_exporter, pki, password_hash):
    ca = ("--cacert", str(pki / "ca.pem"))
    config = tls_block(pki) + f"basic_auth_users:\n  prometheus: '{password_hash}'\n" \
        + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    exp, url = secure_exporter(config, *ca, "-u", f"prometheus:{PASSWORD}")
    ok = curl(f"{url}/metrics", *ca, "-u", f"prometheus:{PASSWORD}")
    assert ok.status == 200 and "prefect_exporter_build_info" in ok.body
    assert ok.headers.get("x-frame-options") == "deny"
    for args in (("-u", f"prometheus:{WRONG}"), ("-u", f"nobody:{PASSWORD}"), ()):
        r = curl(f"{url}/metrics", *ca, *args)
        assert r.status == 401, (args, r)
        assert r.headers.get("www-authenticate") == 'Basic realm="prefect-exporter"'
        assert r.headers.get("x-frame-options") == "deny"
    # Everything is protected, health endpoints included (as in exporter-toolkit).
    for path in ("/-/healthy", "/-/ready", "/"):
        assert curl(f"{url}{path}", *ca).status == 401, path
        assert curl(f"{url}{path}", *ca, "-u", f"prometheus:{PASSWORD}").status == 200, path
    # Neither the hash nor a password reaches the log, even at debug level.
    log = exp.log_tail(200_000)
    for secret in (password_hash, PASSWORD, WRONG):
        assert secret not in log


def test_basic_auth_over_plain_http_warns(secure_exporter, pki, password_hash):
    exp, url = secure_exporter(f"basic_auth_users:\n  prometheus: '{password_hash}'\n",
                               "-u", f"prometheus:{PASSWORD}", scheme="http")
    assert curl(f"{url}/metrics").status == 401
    assert curl(f"{url}/metrics", "-u", f"prometheus:{WRONG}").status == 401
    assert curl(f"{url}/metrics", "-u", f"prometheus:{PASSWORD}").status == 200
    assert "clear text" in exp.log_tail()


# --------------------------------------------------------------------------------------------
# bad configurations exit 2 with one line


@pytest.mark.parametrize("name, config, mentions", [
    ("unknown key", "tls_server_config:\n  cert_file: ../pki/server.pem\n  key_file: ../pki/server.key\n  cert_fiel: x\n",
     "tls_server_config.cert_fiel: unknown key"),
    ("missing key_file", "tls_server_config:\n  cert_file: ../pki/server.pem\n", "tls_server_config.key_file: required"),
    ("missing certificate", "tls_server_config:\n  cert_file: ../pki/nope.pem\n  key_file: ../pki/server.key\n",
     "tls_server_config.cert_file: cannot read"),
    ("key mismatch", "tls_server_config:\n  cert_file: ../pki/server.pem\n  key_file: ../pki/client.key\n",
     "tls_server_config.key_file: the key does not match"),
    ("verify without CA", "tls_server_config:\n  cert_file: ../pki/server.pem\n  key_file: ../pki/server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file: required"),
    ("cipher suites", "tls_server_config:\n  cert_file: ../pki/server.pem\n  key_file: ../pki/server.key\n"
     "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n", "tls_server_config.cipher_suites: not supported"),
    ("bad hash", "basic_auth_users:\n  prometheus: $2y$10$tooShortToBeAHash\n", "basic_auth_users.prometheus: not a bcrypt hash"),
    ("reserved header", "http_server_config:\n  headers:\n    Content-Type: text/html\n",
     "http_server_config.headers.Content-Type: this header cannot be configured"),
    ("yaml", "basic_auth_users:\n  a: x\n b: y\n", "invalid YAML at line 3"),
])
def test_bad_web_config_exits_2(name, config, mentions, pki, tmp_path):
    (tmp_path / "pki").symlink_to(pki, target_is_directory=True)
    path = write_config(tmp_path / "conf", config)
    r = run_exporter_cli(["--web.listen-address", f"127.0.0.1:{free_port()}", "--web.config.file", str(path)])
    assert r.returncode == 2, f"exit {r.returncode}; stderr:\n{r.stderr}"
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert "--web.config.file" in lines[0] and str(path) in lines[0], lines[0]
    assert mentions in lines[0], lines[0]
    assert "tooShortToBeAHash" not in r.stderr


def test_missing_web_config_file_exits_2(tmp_path):
    r = run_exporter_cli(["--web.listen-address", f"127.0.0.1:{free_port()}",
                          "--web.config.file", str(tmp_path / "absent.yml")])
    assert r.returncode == 2, r.stderr
    assert "absent.yml" in r.stderr and "no such file" in r.stderr


def test_empty_web_config_file_means_plain_http(start_exporter, tmp_path):
    path = write_config(tmp_path, "# nothing configured\n")
    exp = start_exporter(["--web.config.file", str(path)], wait="ready")
    assert exp.get("/-/healthy").status_code == 200
