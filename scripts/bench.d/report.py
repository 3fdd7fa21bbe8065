#!/usr/bin/env python3
"""Prints the summary of a scripts/bench run from the files it left in its work directory:
render.json, wrk-<server>-<encoding>.txt, poll-<size>.json, flat.json, prefect-<size>.txt.

  report.py WORKDIR
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

MIB = 1024 * 1024


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(path: Path) -> dict | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    out: dict = {"errors": ""}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M):
            out[f"p{pct}"] = milliseconds(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        out["errors"] += f" non-2xx {m.group(1)}"
    if m := re.search(r"Socket errors: (.*)", text):
        out["errors"] += f" socket errors: {m.group(1)}"
    if m := re.search(r"(\d+) requests in", text):
        out["requests"] = int(m.group(1))
    return out if "rps" in out else None


def median_round(runs: list[dict]) -> dict | None:
    """The median of each figure over the rounds, with the range of requests/s."""
    if not runs:
        return None
    out = {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50", "p99") if all(key in r for r in runs)}
    out["errors"] = "".join(r["errors"] for r in runs)
    out["rounds"] = len(runs)
    out["range"] = f"{min(r['rps'] for r in runs):.0f}-{max(r['rps'] for r in runs):.0f}"
    return out


def verdict(ok: bool) -> str:
    return "MET   " if ok else "MISSED"


def pct(a: float, b: float) -> float:
    return (b - a) / a * 100 if a else float("nan")


def main() -> None:
    work = Path(sys.argv[1])
    params = load(work / "params.json") or {}
    print("==> summary")
    print(f"    machine: {params.get('machine', '?')}; load average at start: {params.get('load_start', '?')}, "
          f"at end: {(work / 'load_end.txt').read_text().strip() if (work / 'load_end.txt').exists() else '?'}")

    # -- scrape path -----------------------------------------------------------------------
    render = load(work / "render.json")
    rounds = {(s, e): [r for r in (parse_wrk(path) for path in sorted(work.glob(f"wrk-{s}-{e}-*.txt"))) if r]
              for s in ("ours", "static") for e in ("plain", "gzip")}
    wrk = {key: median_round(runs) for key, runs in rounds.items()}
    if render or any(wrk.values()):
        print()
        print("Scrape path")
        if render:
            print(f"  snapshot: {render['series']} series ({render['shape']}), plain {render['plainBytes']} B, "
                  f"gzip {render['gzipBytes']} B")
            print(f"  render ({render['repetitions']} runs, median / p90): build {render['buildSeconds']['median'] * 1e3:.1f} / "
                  f"{render['buildSeconds']['p90'] * 1e3:.1f} ms, encode {render['encodeSeconds']['median'] * 1e3:.1f} / "
                  f"{render['encodeSeconds']['p90'] * 1e3:.1f} ms, gzip {render['gzipSeconds']['median'] * 1e3:.1f} / "
                  f"{render['gzipSeconds']['p90'] * 1e3:.1f} ms; the exporter's whole render after a poll "
                  f"(ExpositionMerger.update: text and OpenMetrics, each plain and gzip) {render['mergerSeconds']['median'] * 1e3:.1f} / "
                  f"{render['mergerSeconds']['p90'] * 1e3:.1f} ms")
            print(f"  heap (anonymous RSS) of the snapshot: {(render['anonymousRSSFamilies'] - render['anonymousRSSStart']) / MIB:.1f} MiB "
                  f"for families + one rendering, {(render['anonymousRSSMerger'] - render['anonymousRSSStart']) / MIB:.1f} MiB "
                  f"with the merger's page")
        print(f"  {params.get('wrk', 'wrk')}, {params.get('rounds', 1)} interleaved rounds; medians over the rounds")
        print(f"  {'server':<8} {'encoding':<8} {'req/s':>10} {'(range)':>13} {'p50':>9} {'p99':>9} {'ours/static':>12}  errors")
        for encoding in ("plain", "gzip"):
            for server in ("ours", "static"):
                r = wrk[(server, encoding)]
                if not r:
                    print(f"  {server:<8} {encoding:<8} {'(not run)':>10}")
                    continue
                ratio = ""
                if server == "ours" and wrk[("static", encoding)]:
                    ratio = f"{r['rps'] / wrk[('static', encoding)]['rps']:.2f}"
                print(f"  {server:<8} {encoding:<8} {r['rps']:>10.0f} {'(' + r['range'] + ')':>13} {r.get('p50', float('nan')):>7.2f}ms "
                      f"{r.get('p99', float('nan')):>7.2f}ms {ratio:>12} {r['errors'] or ' none'}")
        for encoding in ("gzip", "plain"):
            ours, static = wrk[("ours", encoding)], wrk[("static", encoding)]
            if not ours:
                continue
            note = " (what Prometheus sends: Accept-Encoding: gzip)" if encoding == "gzip" else ""
            print(f"  targets, {encoding}{note}:")
            print(f"    {verdict(ours['rps'] >= 20000)} >= 20,000 scrapes/s: {ours['rps']:.0f}")
            static_p99 = f" (static server: {static['p99']:.2f} ms)" if static and "p99" in static else ""
            print(f"    {verdict(ours.get('p99', 1e9) <= 5)} p99 <= 5 ms: {ours.get('p99', float('nan')):.2f} ms{static_p99}")
            if static:
                print(f"    {verdict(ours['rps'] >= 0.5 * static['rps'])} >= 50% of the static server: "
                      f"{100 * ours['rps'] / static['rps']:.0f}% ({ours['rps']:.0f} / {static['rps']:.0f} req/s)")

    poll_path(work, params)
    pile_up(work)


def poll_path(work: Path, params: dict) -> None:
    sizes = [s for s in ("S", "M", "L", "W", "W2") if (work / f"poll-{s}.json").exists()]
    if not sizes:
        return
    print()
    print("Poll path (median of polls 2..K; bytes = response bodies on the wire; cpu = whole process, all threads)")
    print(f"  {'size':<4} {'runs':>7} {'pools/queues/deps':>17} {'polls':>5} {'requests':>8} {'bytes':>9} "
          f"{'wall ms':>8} {'cpu ms':>7} {'cpu/wall':>8} {'peak RSS':>9} {'anon RSS':>9}  exposition")
    polls = {}
    for size in sizes:
        p = load(work / f"poll-{size}.json")
        polls[size] = p
        inventory = load(work / f"prefect-{size}.json") or {}
        last = p["perPoll"][-1]
        label = size if size != "W2" else "W*"
        print(f"  {label:<4} {inventory.get('runs', '?'):>7} {inventory.get('shape', '?'):>17} {p['polls']:>5} "
              f"{p['requests']['median']:>8.0f} {p['bytes']['median']:>9.0f} {p['wallSeconds']['median'] * 1e3:>8.1f} "
              f"{p['cpuSeconds']['median'] * 1e3:>7.1f} {p['cpuPerWall'] * 100:>7.1f}% {p['peakRSSBytes'] / MIB:>5.1f} MiB "
              f"{last['anonymousRSSBytes'] / MIB:>5.1f} MiB  {last['exposedBytes']} B")
    if "W2" in polls:
        print("  W* = W again with MALLOC_ARENA_MAX=2 (glibc keeps one malloc arena per thread by default)")
    for size in sizes:
        collectors = polls[size]["collectorSeconds"]
        slow = sorted(collectors.items(), key=lambda kv: -kv[1])[:4]
        print(f"  {size if size != 'W2' else 'W*'} slowest collectors (median ms): " + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in slow))

    print("  targets:")
    if "M" in polls and "L" in polls:
        m, l = polls["M"], polls["L"]
        for key, name in (("requests", "requests"), ("bytes", "bytes")):
            change = pct(m[key]["median"], l[key]["median"])
            print(f"    {verdict(abs(change) <= 10)} M->L change in {name} per poll <= 10%: {change:+.1f}% "
                  f"({m[key]['median']:.0f} -> {l[key]['median']:.0f})")
        change = pct(m["cpuSeconds"]["median"], l["cpuSeconds"]["median"])
        print(f"    {verdict(abs(change) <= 10)} M->L change in exporter CPU per poll <= 10%: {change:+.1f}% "
              f"({m['cpuSeconds']['median'] * 1e3:.1f} -> {l['cpuSeconds']['median'] * 1e3:.1f} ms)")
        change = pct(m["wallSeconds"]["median"], l["wallSeconds"]["median"])
        print(f"    (info) M->L change in poll wall time: {change:+.1f}% (Prefect's query time; see the probes)")
    for size in sizes:
        p = polls[size]
        print(f"    {verdict(p['cpuPerWall'] <= 0.10)} CPU/wall <= 10% at {size if size != 'W2' else 'W*'}: {p['cpuPerWall'] * 100:.1f}%")
    if "L" in polls:
        l = polls["L"]
        last = l["perPoll"][-1]
        print(f"    {verdict(l['peakRSSBytes'] <= 30 * MIB)} peak RSS at L <= 30 MiB: {l['peakRSSBytes'] / MIB:.1f} MiB "
              f"(at the last poll: VmRSS {last['rssBytes'] / MIB:.1f} MiB = anon {last['anonymousRSSBytes'] / MIB:.1f} MiB "
              f"+ file-backed {last['fileRSSBytes'] / MIB:.1f} MiB, mostly shared-library text)")
    for size in ("L", "W"):
        e = load(work / f"exporter-{size}.json")
        if e:
            print(f"    (info) the real exporter at {size} ({e['seconds']:.0f}s, {e['polls']:.0f} polls, {e['scrapes']} scrapes): "
                  f"VmHWM {e['VmHWM'] / MIB:.1f} MiB, VmRSS {e['VmRSS'] / MIB:.1f} MiB = anon {e['RssAnon'] / MIB:.1f} "
                  f"+ file {e['RssFile'] / MIB:.1f} MiB")
    flat = load(work / "poll-flat.json")
    if flat:
        at = flat["rssAt"]
        checkpoints = ", ".join(f"{k}: {v / MIB:.1f} MiB" for k, v in sorted(at.items(), key=lambda kv: int(kv[0])))
        ok = abs(flat["rssDrift"]) <= 0.05 and flat["rssSpread"] <= 0.10
        print(f"    {verdict(ok)} RSS flat within +-5% over {flat['polls']} polls at {params.get('flat_size', '?')} "
              f"(interval {flat['intervalSeconds'] * 1e3:.0f} ms): drift over polls {flat['rssWindowStart']}-{flat['polls']} "
              f"{flat['rssDrift'] * 100:+.1f}% (spread {flat['rssSpread'] * 100:.1f}%), from poll 10 "
              f"{flat['rssDriftFromPoll10'] * 100:+.1f}%; RSS at poll {checkpoints}")


def median(polls: list[dict], key: str) -> float:
    return statistics.median(x[key] for x in polls)


def listing_polls(per_poll: list[dict]) -> int:
    """How many polls at the start list the pile: the first, and while the exporter lists a large
    pile over several polls (its flow_runs_active collector fails with reason listing_due_runs),
    every poll up to the one that completes the listing. From a driver that does not record
    failed collectors: every poll up to the last one with more than twice the final poll's requests."""
    if all("failedCollectors" in x for x in per_poll):
        for i, x in enumerate(per_poll):
            if not any(f.startswith("flow_runs_active: listing") for f in x["failedCollectors"]):
                return i + 1
        return len(per_poll)
    final = per_poll[-1]["requests"]
    heavy = [i for i, x in enumerate(per_poll) if x["requests"] > 2 * final]
    return max([1] + [i + 1 for i in heavy])


PILE_WALL, PILE_REQUESTS, PILE_BYTES, PILE_RSS, PILE_CHANGE = 3.0, 60, 300_000, 40 * MIB, 10.0


def pile_up(work: Path) -> None:
    """Size P (issue 10): a pile-up of overdue runs, at each step of BENCH_PILE_OVERDUE."""
    try:
        steps = [s for s in (work / "pile-steps.txt").read_text().strip().split(",") if s]
    except OSError:
        return
    polls = {s: load(work / f"poll-{s}.json") for s in steps}
    steps = [s for s in steps if polls[s]]
    if not steps:
        return
    seconds = (work / "pile-seconds.txt").read_text().strip() if (work / "pile-seconds.txt").exists() else "?"
    print()
    print(f"Pile-up of overdue runs (size P, {seconds}s in all; bytes = response bodies; driver peak = VmHWM of the bench "
          f"driver). The first poll lists the pile (a large one over the first few polls, 'listing' below, up to the poll "
          f"that completes it); the others are steady-state polls.")
    steady_of = {}
    for step in steps:
        p, inventory = polls[step], load(work / f"prefect-{step}.json") or {}
        listing = listing_polls(p["perPoll"])
        steady_of[step] = p["perPoll"][listing:]
        print(f"  {step}: {inventory.get('late', '?')} overdue SCHEDULED runs, {inventory.get('runs', '?')} runs in all, "
              f"pools/queues/deployments {inventory.get('shape', '?')}")
        for poll in p["perPoll"]:
            what = ("first poll" if poll["poll"] == 1 else f"listing {poll['poll']}") if poll["poll"] <= listing else f"poll {poll['poll']:>4}"
            print(f"    {what:<10} requests {poll['requests']:>5}  bytes {poll['bytes']:>9}  wall {poll['wallSeconds']:>8.2f} s  "
                  f"cpu {poll['cpuSeconds'] * 1e3:>6.0f} ms  driver rss {poll['rssBytes'] / MIB:>5.1f} MiB, "
                  f"peak {poll['peakRSSBytes'] / MIB:>5.1f} MiB{'' if poll['success'] else '  FAILED'}"
                  f"{'  partial: ' + ', '.join(poll['failedCollectors']) if poll.get('failedCollectors') else ''}")
        steady = steady_of[step]
        if steady:
            print(f"    steady polls {steady[0]['poll']}-{steady[-1]['poll']}, median / max: requests "
                  f"{median(steady, 'requests'):.0f} / {max(x['requests'] for x in steady)}, bytes {median(steady, 'bytes'):.0f} / "
                  f"{max(x['bytes'] for x in steady)}, wall {median(steady, 'wallSeconds'):.2f} / "
                  f"{max(x['wallSeconds'] for x in steady):.2f} s, cpu {median(steady, 'cpuSeconds') * 1e3:.0f} ms (median); "
                  f"driver peak RSS {p['peakRSSBytes'] / MIB:.1f} MiB")
            if len(p["perPoll"]) > listing:
                print(f"    listing: {listing} poll(s), {sum(x['requests'] for x in p['perPoll'][:listing])} requests, "
                      f"{sum(x['bytes'] for x in p['perPoll'][:listing]) / 1e6:.1f} MB, "
                      f"{sum(x['wallSeconds'] for x in p['perPoll'][:listing]):.1f} s in all")
            settled = settled_polls(steady)
            print(f"    settled polls {settled[0]['poll']}-{settled[-1]['poll']} (the last {len(settled)}: after the deployment "
                  f"lookups that follow a start, {SCHEDULE_LOOKUPS} a poll until each deployment was looked up once), "
                  f"median / max: requests {median(settled, 'requests'):.0f} / {max(x['requests'] for x in settled)}, "
                  f"bytes {median(settled, 'bytes'):.0f} / {max(x['bytes'] for x in settled)}")
        else:
            print(f"    no steady-state poll: every poll of the {p['polls']} still listed the pile (raise BENCH_PILE_POLLS)")
        e = load(work / f"exporter-{step}.json")
        if e:
            print(f"    the real exporter ({e['seconds']:.0f}s, {e['polls']:.0f} answered polls, {e['scrapes']} scrapes): "
                  f"VmHWM {e['VmHWM'] / MIB:.1f} MiB, VmRSS {e['VmRSS'] / MIB:.1f} MiB = anon {e['RssAnon'] / MIB:.1f} "
                  f"+ file {e['RssFile'] / MIB:.1f} MiB")
    print("  targets (wall: the worst steady poll; requests and bytes: the worst settled poll):")
    for step in steps:
        p, e = polls[step], load(work / f"exporter-{step}.json")
        steady = steady_of[step] or p["perPoll"][-1:]
        worst_wall = max(x["wallSeconds"] for x in steady)
        settled = settled_polls(steady)
        worst_requests = max(x["requests"] for x in settled)
        worst_bytes = max(x["bytes"] for x in settled)
        print(f"    {verdict(worst_wall <= PILE_WALL)} {step} wall <= {PILE_WALL:.0f} s: {worst_wall:.2f} s "
              f"(median {median(steady, 'wallSeconds'):.2f} s; first poll {p['perPoll'][0]['wallSeconds']:.2f} s)")
        print(f"    {verdict(worst_requests <= PILE_REQUESTS)} {step} requests <= {PILE_REQUESTS} (settled polls): {worst_requests} "
              f"(with the start-up deployment lookups {max(x['requests'] for x in steady)}; first poll {p['perPoll'][0]['requests']})")
        print(f"    {verdict(worst_bytes <= PILE_BYTES)} {step} response bytes <= 300 KB (settled polls): {worst_bytes / 1000:.1f} KB "
              f"(with the start-up deployment lookups {max(x['bytes'] for x in steady) / 1000:.1f} KB; "
              f"first poll {p['perPoll'][0]['bytes'] / 1000:.1f} KB)")
        if e:
            print(f"    {verdict(e['VmHWM'] <= PILE_RSS)} {step} exporter peak RSS <= 40 MiB: {e['VmHWM'] / MIB:.1f} MiB "
                  f"(VmHWM of the real exporter over {e['seconds']:.0f}s, first poll included)")
        check = load(work / f"pile-check-{step}.json")
        if check:
            bad = [row[0].strip() for row in check["rows"] if not row[3]]
            print(f"    {verdict(check['ok'])} {step} late-run series equal Prefect's /flow_runs/count "
                  f"({check['late']:.0f} late; {len(check['rows'])} checks on the page after the exporter's answered poll "
                  f"{check.get('polls', 0):.0f}{': differ: ' + ', '.join(bad) if bad else ''})")
        else:
            print(f"    MISSED {step} ground-truth check: no result")
    if len(steps) > 1 and steady_of[steps[0]] and steady_of[steps[-1]]:
        first, last = settled_polls(steady_of[steps[0]]), settled_polls(steady_of[steps[-1]])
        for key, name in (("requests", "requests"), ("bytes", "bytes")):
            a, b = median(first, key), median(last, key)
            change = pct(a, b)
            print(f"    {verdict(abs(change) <= PILE_CHANGE)} {name} per settled poll {steps[-1]}/{steps[0]} within 10%: "
                  f"{b / a if a else float('nan'):.3f} ({a:.0f} -> {b:.0f}, {change:+.1f}%)")


# After a start, the deployment_schedules collector looks every deployment up once, at most this
# many one-run lookups a poll (issue 12): 13 polls for P's 50 deployments (5 lookups each). Those
# polls are steady for the due-run ledger but not yet for the poll as a whole.
SCHEDULE_LOOKUPS = 20
SETTLED_POLLS = 8


def settled_polls(steady: list[dict]) -> list[dict]:
    """The last SETTLED_POLLS steady polls (all of them when there are fewer): with BENCH_PILE_POLLS
    at its default, after the start-up deployment lookups."""
    return steady[-SETTLED_POLLS:]


if __name__ == "__main__":
    main()
