"""--config.file: a YAML file with a key for every flag. Precedence: flags > environment > file >
defaults. Unknown keys, wrong types and bad YAML exit 2 with one line naming the key."""

from __future__ import annotations

import textwrap

import pytest

from harness import free_port, run_exporter_cli, wait_for


def write(tmp_path, text: str, name: str = "prefect-exporter.yml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def one_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def test_exporter_runs_from_a_config_file(prefect_server, start_exporter, tmp_path):
    config = write(tmp_path, f"""\
        prefect:
          api_url: {prefect_server.api_url}
          poll_interval: 1s
          late_after: 15s
          lateness_buckets: [10, 60, 600]
        web:
          telemetry_path: /prom
        metrics:
          deployment_label: false
        log:
          level: debug
          format: json
        """)
    exp = start_exporter(["--config.file", config], defaults=False, wait="ready")
    s = wait_for(lambda: (lambda s: s if s.value("prefect_up", default=0) == 1 else None)(exp.scrape("/prom")), 30,
                 message="prefect_up 1 on /prom")
    assert exp.get("/metrics").status_code == 404
    bounds = {dict(l)["le"] for l in s.series("prefect_flow_run_lateness_seconds_bucket")}
    assert bounds == {"10", "60", "600", "+Inf"}, bounds
    assert not any("deployment" in dict(l) for l in s.series("prefect_flow_runs"))
    assert '"level":"debug"' in exp.log_tail()


def test_flags_win_over_the_file_and_the_environment_over_the_file(prefect_server, start_exporter, tmp_path):
    closed = free_port()
    config = write(tmp_path, f"""\
        prefect:
          api_url: http://127.0.0.1:{closed}/api
          poll_interval: 1h
        web:
          telemetry_path: /from-file
        """)
    # The environment's URL wins over the file's (which points at nothing); the flag's telemetry path and
    # poll interval win over the file's.
    exp = start_exporter(["--config.file", config, "--web.telemetry-path", "/metrics", "--prefect.poll-interval", "1s"],
                         defaults=False, env={"PREFECT_API_URL": prefect_server.api_url})
    first = exp.scrape()
    assert first.value("prefect_up") == 1
    assert exp.get("/from-file").status_code == 404
    exp.wait_polls(2)  # a 1h interval from the file would not poll again


def test_check_reads_the_config_file(prefect_server, tmp_path):
    config = write(tmp_path, f"prefect:\n  api_url: {prefect_server.api_url}\n")
    r = run_exporter_cli(["check", "--config.file", config], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert config in r.stdout
    assert prefect_server.api_url in r.stdout


@pytest.mark.parametrize("yaml, mentions", [
    ("prefect:\n  pol_interval: 30s\n", ":2: prefect.pol_interval: unknown key; did you mean prefect.poll_interval?"),
    ("web:\n  listen: ':1'\n", ":2: web.listen: unknown key"),
    ("loggging:\n  level: info\n", ":1: loggging: unknown key"),
    ("prefect:\n  retries: two\n", ":2: prefect.retries: expected an integer, got 'two'"),
    ("metrics:\n  deployment_label: sometimes\n", ":2: metrics.deployment_label: expected true or false"),
    ("prefect:\n  poll_interval: soon\n", ":2: prefect.poll_interval: 'soon' is not a duration"),
    ("prefect:\n  api_url: ftp://x/api\n", ":2: prefect.api_url: 'ftp://x/api' is not an http(s) URL"),
    ("prefect:\n  poll_interval: [1, 2\n", "invalid YAML at line"),
    ("prefect:\n  retries: 1\n  retries: 2\n", "appears more than once"),
    ("targets:\n  - name: a\n", ":2: targets[0].api_url: missing"),
    ("targets:\n  - name: a\n    api_url: http://127.0.0.1:1/api\n    token: x\n", ":4: targets[0].token: unknown key"),
    ("prefect:\n  api_url: http://a/api\ntargets:\n  - {name: a, api_url: http://b/api}\n",
     ":2: prefect.api_url: cannot be combined with targets"),
])
def test_config_errors_exit_2_with_one_line(tmp_path, yaml, mentions):
    config = write(tmp_path, yaml)
    for command in ([], ["check"], ["once"]):
        r = run_exporter_cli([*command, "--config.file", config, "--web.listen-address", f"127.0.0.1:{free_port()}"])
        assert r.returncode == 2, f"{command}: exit {r.returncode}; stderr:\n{r.stderr}"
        line = one_line(r.stderr)
        assert line.startswith(f"prefect-exporter: {config}"), line
        assert mentions in line, line


def test_missing_config_file(tmp_path):
    r = run_exporter_cli(["--config.file", str(tmp_path / "nope.yml")])
    assert r.returncode == 2
    assert one_line(r.stderr) == f"prefect-exporter: --config.file: cannot read {tmp_path / 'nope.yml'}"


def test_a_flag_given_with_targets_is_an_error(tmp_path):
    config = write(tmp_path, "targets:\n  - {name: a, api_url: 'http://127.0.0.1:1/api'}\n")
    r = run_exporter_cli(["--config.file", config, "--prefect.api-url", "http://127.0.0.1:2/api"])
    assert r.returncode == 2
    assert "--prefect.api-url: cannot be combined with the targets of" in one_line(r.stderr)
