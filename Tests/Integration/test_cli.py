"""Command-line handling: bad input exits 2 with one line naming the problem; --help, --version."""

from __future__ import annotations

import re

import pytest

from harness import REPO_ROOT, free_port, run_exporter_cli


def readme_flags() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    flags = re.findall(r"^\| `(--[a-z0-9.\-]+)`", section, re.M)
    assert len(flags) >= 15, flags
    return flags


def _one_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


@pytest.mark.parametrize("args, mentions", [
    (["--no-such-flag"], "no-such-flag"),
    (["--prefect.api-url", "not a url"], "api-url"),
    (["--prefect.api-url", "ftp://example.com/api"], "api-url"),
    (["--prefect.poll-interval", "10x"], "poll-interval"),
    (["--prefect.poll-interval", "0s"], "poll-interval"),
    (["--prefect.late-after", "-5s"], "late-after"),
    (["--prefect.lateness-buckets", "60,30"], "lateness-buckets"),
    (["--log.level", "chatty"], "log.level"),
    (["--log.format", "xml"], "log.format"),
    (["--web.listen-address", "127.0.0.1:notaport"], "listen-address"),
    (["--prefect.api-key-file", "/nonexistent/prefect-api-key"], "/nonexistent/prefect-api-key"),
    (["--prefect.auth-string-file", "/nonexistent/auth-string"], "/nonexistent/auth-string"),
    (["--prefect.ca-file", "/nonexistent/ca.pem"], "/nonexistent/ca.pem"),
])
def test_bad_input_exits_2_with_one_line(args, mentions):
    port = free_port()
    r = run_exporter_cli(["--web.listen-address", f"127.0.0.1:{port}", *args]
                         if "--web.listen-address" not in args else args)
    assert r.returncode == 2, f"exit {r.returncode}; stderr:\n{r.stderr}"
    line = _one_line(r.stderr)
    assert mentions in line, line


def test_unreadable_key_file(tmp_path):
    """A path that exists but cannot be read as a file."""
    # root reads files whatever their mode: use a directory, which no one can read as a file.
    r = run_exporter_cli(["--web.listen-address", f"127.0.0.1:{free_port()}", "--prefect.api-key-file", str(tmp_path)])
    assert r.returncode == 2, r.stderr
    assert str(tmp_path) in _one_line(r.stderr)


def test_listen_address_in_use():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run_exporter_cli(["--web.listen-address", f"127.0.0.1:{port}"], timeout=15)
    assert r.returncode != 0
    assert str(port) in r.stderr


def test_help_mentions_every_flag():
    r = run_exporter_cli(["--help"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    missing = [f for f in readme_flags() if f not in out]
    assert not missing, f"--help does not mention {missing}:\n{out}"


def test_version():
    r = run_exporter_cli(["--version"])
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+|[0-9a-f]{7}|dev", r.stdout), r.stdout
    assert len(r.stdout.strip().splitlines()) <= 3
