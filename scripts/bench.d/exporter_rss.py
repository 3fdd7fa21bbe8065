#!/usr/bin/env python3
"""Cross-checks the bench driver's memory figures on the real exporter binary: runs
prefect-exporter against a Prefect API for a while (polling every second, scraped every second
as Prometheus 3 scrapes: OpenMetrics asked for by its Accept header, gzip), then reads its memory
from /proc and its poll count from /metrics (the text format, asked for again after each scrape).

  exporter_rss.py --bin PATH --api URL [--seconds 30] [--json OUT] [--label L]
                  [--min-polls N --max-seconds S] [--metrics-out FILE]

With --min-polls it keeps running after --seconds until N polls that Prefect answered have
finished (at most --max-seconds in all); --metrics-out keeps the last /metrics page scraped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import time

import httpx

# What Prometheus 3 sends: it gets OpenMetrics, rendered on the first such scrape after each poll.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                     "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
                     "text/plain;version=0.0.4;q=0.2,*/*;q=0.1")


def status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answered(text: str) -> float:
    """Polls that Prefect answered, from a /metrics page: results success and partial (some collector failed)."""
    return sum(float(m.group(1)) for m in re.finditer(
        r'^prefect_exporter_polls_total\{result="(?:success|partial)"\} (\S+)', text, re.M))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--json")
    parser.add_argument("--label", default="")
    parser.add_argument("--min-polls", type=int, default=0, help="run on until this many polls were answered")
    parser.add_argument("--max-seconds", type=float, default=0, help="with --min-polls: give up after this long")
    parser.add_argument("--metrics-out", help="write the last /metrics page scraped to this file")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    argv = [args.bin, "--prefect.api-url", args.api, "--web.listen-address", f"127.0.0.1:{port}",
            "--prefect.poll-interval", "1s", "--log.level", "warn"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)  # in our process group: stopping the group stops it too
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        started = time.monotonic()
        deadline = started + args.seconds
        hard_deadline = started + max(args.seconds, args.max_seconds)
        scrapes = 0
        text = ""
        while time.monotonic() < deadline or (answered(text) < args.min_polls and time.monotonic() < hard_deadline):
            try:
                r = http.get("/metrics", headers={"Accept-Encoding": "gzip", "Accept": PROMETHEUS_ACCEPT})
                assert r.headers["content-type"].startswith("application/openmetrics-text"), r.headers["content-type"]
                scrapes += 1
                text = http.get("/metrics", headers={"Accept-Encoding": "gzip"}).text
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"exporter exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(1)
        memory = status(proc.pid)
        cpu = cpu_seconds(proc.pid)
        elapsed = time.monotonic() - started
        polls = answered(text)
        if args.metrics_out:
            with open(args.metrics_out, "w") as f:
                f.write(text)
        result = {"seconds": elapsed, "polls": polls, "scrapes": scrapes, "cpuSeconds": cpu, **memory,
                  "command": " ".join(argv)}
        mib = 1024 * 1024
        print(f"  exporter{args.label}: {' '.join(argv)}")
        print(f"  exporter{args.label}: after {elapsed:.0f}s, {polls:.0f} answered polls and {scrapes} OpenMetrics scrapes: "
              f"VmHWM {memory['VmHWM'] / mib:.1f} MiB, VmRSS {memory['VmRSS'] / mib:.1f} MiB "
              f"(anon {memory['RssAnon'] / mib:.1f}, file {memory['RssFile'] / mib:.1f}), CPU {cpu:.2f}s")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


if __name__ == "__main__":
    main()
