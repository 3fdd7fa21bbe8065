#!/usr/bin/env python3
"""Static checks of prefect-exporter's alert rules and Grafana dashboards.

Run by scripts/check-monitoring (which also runs promtool). Checks:

- alerts/prefect-exporter.rules.yml and dashboards/*.json equal what alerts/generate.py and
  dashboards/generate.py write;
- every PromQL expression (alerts and dashboard panels, after substituting the Grafana
  variables) parses with the `promql-parser` package and only uses metrics and labels of the
  README's "Metrics" contract;
- alert conventions: `for`, a `severity` label, a static summary, a description with labels
  and the value, a runbook_url whose anchor is a heading of docs/runbook.md, and promtool unit
  tests with a firing case (exact labels and annotations) and a quiet case for every alert,
  whose input series carry exactly the exporter's label sets;
- dashboard conventions: datasource variable used by every panel and target; multi-value
  job/instance/work_pool/work_queue variables with "All"; filters on every selector whose
  metric has the label; $__rate_interval in every range; unit, title and description on every
  panel; fixed uid, tags, schemaVersion.

`--list-queries` prints every dashboard query (and each variable's series selector) with the
variables set to "All", one JSON object per line, for end-to-end tests against a Prometheus.

Needs PyYAML and promql-parser (scripts/requirements-test.txt).
"""

import argparse
import datetime
import glob
import importlib.util
import json
import os
import re
import sys

try:
    import promql_parser
    import yaml
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write("check-monitoring: missing Python package (%s); install scripts/requirements-test.txt "
                     "with `%s -m pip install -r scripts/requirements-test.txt`\n" % (exc, sys.executable))
    sys.exit(2)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(ROOT, "README.md")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")
RULES_GLOB = os.path.join(ROOT, "alerts", "*.rules.yml")
TESTS_GLOB = os.path.join(ROOT, "alerts", "tests", "*.test.yml")
DASHBOARDS_GLOB = os.path.join(ROOT, "dashboards", "*.json")
RUNBOOK_BASE_URL = "https://github.com/prefect-exporter/prefect-exporter/blob/main/docs/runbook.md"

SCRAPE_LABELS = {"job", "instance"}
SEVERITIES = {"critical", "warning", "info"}
DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSIONS = range(38, 41)  # Grafana 10.0 writes 38, 10.3-11.2 write 39, 11.3+ 40
FILTER_VARIABLES = ("job", "instance", "prefect", "work_pool", "work_queue")
# "All" of each filter variable. work_pool/work_queue: ".*", so that runs without a work pool
# (empty labels, README "Metrics") are included.
ALL_VALUES = {"job": ".+", "instance": ".+", "prefect": ".*", "work_pool": ".*", "work_queue": ".*"}
RATE_SENTINEL = "7777s"
VARIABLE_RE = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?::[\w]+)?\}|([A-Za-z_]\w*))")
LABEL_VALUES_RE = re.compile(r"^\s*label_values\((.*),\s*([A-Za-z_]\w*)\s*\)\s*$", re.S)


class Report:
    def __init__(self, quiet=False):
        self.failures = []
        self.passed = 0
        self.quiet = quiet

    def check(self, ok, where, message):
        if ok:
            self.passed += 1
        else:
            failure = "%s: %s" % (where, message)
            if failure not in self.failures:  # a selector can be reached twice (range and instant)
                self.failures.append(failure)
        return ok

    def fail(self, where, message):
        return self.check(False, where, message)


def rel(path):
    return os.path.relpath(path, ROOT)


# ---------------------------------------------------------------------------------------------
# The metric contract, from README.md's "Metrics" section
# ---------------------------------------------------------------------------------------------

def load_contract(report):
    """{series name: set of labels}, plus the set of metric names documented as sometimes absent."""
    try:
        text = open(README, encoding="utf-8").read()
    except OSError as exc:
        report.fail("README.md", "cannot read the metric contract: %s" % exc)
        return {}, set()
    section = text.split("\n## Metrics", 1)
    if len(section) < 2:
        report.fail("README.md", 'no "## Metrics" section: cannot read the metric contract')
        return {}, set()
    body = section[1].split("\n## ", 1)[0]
    series, optional = {}, set()
    row = re.compile(r"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(\w+)\s*\|([^|]*)\|(.*)\|\s*$")
    for line in body.splitlines():
        match = row.match(line)
        if not match:
            continue
        name, kind, labels, meaning = match.groups()
        labels = set(re.findall(r"`([A-Za-z_]\w*)`", labels))
        if kind == "histogram":
            series[name + "_bucket"] = labels | {"le"}
            series[name + "_sum"] = set(labels)
            series[name + "_count"] = set(labels)
        else:
            series[name] = labels
        if re.search(r"\babsent (when|if)\b", meaning, re.I):
            optional.add(name)
    report.check(len(series) >= 20, "README.md", "found only %d metrics in the Metrics tables" % len(series))
    # Prometheus' own series and the exporter's standard process metrics (README: `process_*`).
    series["up"] = set()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                 "process_open_fds", "process_max_fds", "process_start_time_seconds"):
        series[name] = set()
    return series, optional


# ---------------------------------------------------------------------------------------------
# PromQL
# ---------------------------------------------------------------------------------------------

def parse(expr, where, report):
    try:
        return promql_parser.parse(expr)
    except Exception as exc:  # the parser raises ValueError, be lenient about the type
        report.fail(where, "PromQL does not parse: %s\n    %s" % (exc, expr.replace("\n", "\n    ")))
        return None


def selectors(ast):
    """(VectorSelector, range or None) for every selector of the expression."""
    out, ranges = [], {}

    def visit(node):
        if isinstance(node, promql_parser.MatrixSelector):
            ranges[id(node.vector_selector)] = node.range
            out.append((node.vector_selector, node.range))
        elif isinstance(node, promql_parser.VectorSelector):
            if not any(sel is node for sel, _ in out):
                out.append((node, None))
        elif isinstance(node, promql_parser.SubqueryExpr):
            out.append(("subquery", node.range))
        return True

    promql_parser.walk(ast, visit)
    return out


def matchers_of(selector):
    return [(m.name, str(m.op), m.value) for m in selector.matchers.matchers]


def has_target_label(name):
    """Whether a metric carries `prefect` when one exporter polls several Prefect targets (README)."""
    return name != "prefect_exporter_build_info" and not name.startswith("process_")


def possible_labels(name, contract):
    """Every label a series of `name` can have: the contract's, the scrape's, and `prefect` where it applies."""
    return contract[name] | SCRAPE_LABELS | ({"prefect"} if has_target_label(name) else set())


def check_selector_labels(selector, where, contract, report):
    name = selector.name
    if not report.check(bool(name), where, "selector without a metric name: %s" % selector):
        return None
    if not report.check(name in contract, where, "metric %s is not in the README's Metrics contract" % name):
        return None
    allowed = possible_labels(name, contract)
    for label, _, _ in matchers_of(selector):
        if label == "__name__":
            continue
        report.check(label in allowed, where, "metric %s has no label %r (it has: %s)"
                     % (name, label, ", ".join(sorted(allowed))))
    return name


# ---------------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------------

def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_generators(report):
    import difflib

    def compare(path, expected, generator):
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        if current != expected:
            diff = "".join(list(difflib.unified_diff(current.splitlines(True), expected.splitlines(True),
                                                     "committed", "generated"))[:40])
            report.fail(rel(path), "differs from the output of %s; run `python3 %s` and commit the result\n%s"
                        % (generator, generator, diff))
        else:
            report.check(True, rel(path), "")

    try:
        alerts = load_module(os.path.join(ROOT, "alerts", "generate.py"), "alerts_generate")
        compare(str(alerts.OUTPUT), alerts.render(), "alerts/generate.py")
        report.check(alerts.RUNBOOK_BASE_URL == RUNBOOK_BASE_URL, "alerts/generate.py",
                     "RUNBOOK_BASE_URL differs from the checker's %s" % RUNBOOK_BASE_URL)
    except Exception as exc:
        report.fail("alerts/generate.py", "cannot run: %r" % exc)
    try:
        dashboards = load_module(os.path.join(ROOT, "dashboards", "generate.py"), "dashboards_generate")
        rendered = dashboards.render()
        for name, text in rendered.items():
            compare(os.path.join(ROOT, "dashboards", name), text, "dashboards/generate.py")
        for path in glob.glob(DASHBOARDS_GLOB):
            report.check(os.path.basename(path) in rendered, rel(path),
                         "is not written by dashboards/generate.py (add it there)")
    except Exception as exc:
        report.fail("dashboards/generate.py", "cannot run: %r" % exc)


# ---------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------

def github_anchor(heading):
    anchor = heading.strip().lower()
    anchor = re.sub(r"[^\w\- ]", "", anchor)
    return anchor.replace(" ", "-")


def runbook_anchors(report):
    try:
        text = open(RUNBOOK, encoding="utf-8").read()
    except OSError as exc:
        report.fail("docs/runbook.md", "cannot read: %s" % exc)
        return set()
    return {github_anchor(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def load_yaml(path, report):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except Exception as exc:
        report.fail(rel(path), "invalid YAML: %s" % exc)
        return None


def check_alerts(report, contract):
    anchors = runbook_anchors(report)
    alerts = {}
    files = sorted(glob.glob(RULES_GLOB))
    report.check(bool(files), "alerts/", "no *.rules.yml file")
    for path in files:
        doc = load_yaml(path, report)
        if doc is None:
            continue
        if not report.check(isinstance(doc, dict) and list(doc) == ["groups"], rel(path),
                            "must have exactly one top-level key, `groups` (usable as a PrometheusRule spec)"):
            continue
        for group in doc["groups"] or []:
            for rule in group.get("rules") or []:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                where = "%s: alert %s" % (rel(path), name)
                report.check(name not in alerts, where, "alert name used twice")
                alerts[name] = rule
                report.check(bool(rule.get("for")), where, "has no `for:`")
                severity = (rule.get("labels") or {}).get("severity")
                report.check(severity in SEVERITIES, where, "severity label %r is not one of %s"
                             % (severity, sorted(SEVERITIES)))
                ann = rule.get("annotations") or {}
                summary, description, runbook = ann.get("summary"), ann.get("description"), ann.get("runbook_url")
                report.check(bool(summary) and "{{" not in summary, where, "needs a static summary (no templates)")
                report.check(bool(description) and "$labels." in description and "$value" in description,
                             where, "description must name labels ({{ $labels.x }}) and the value ({{ $value }})")
                ok = report.check(isinstance(runbook, str) and runbook.startswith(RUNBOOK_BASE_URL + "#"),
                                  where, "runbook_url must start with %s#" % RUNBOOK_BASE_URL)
                if ok:
                    anchor = runbook.split("#", 1)[1]
                    report.check(anchor in anchors, where, "runbook_url anchor #%s is not a heading of docs/runbook.md"
                                 % anchor)
                ast = parse(rule.get("expr", ""), where, report)
                if ast is not None:
                    for selector, _ in selectors(ast):
                        if selector != "subquery":
                            check_selector_labels(selector, where, contract, report)
    return alerts


def check_alert_tests(report, contract, alerts):
    fires, quiet = {}, set()
    files = sorted(glob.glob(TESTS_GLOB))
    report.check(bool(files), "alerts/tests/", "no *.test.yml file")
    for path in files:
        doc = load_yaml(path, report)
        if not isinstance(doc, dict):
            continue
        for rule_file in doc.get("rule_files") or []:
            report.check(os.path.exists(os.path.join(os.path.dirname(path), rule_file)), rel(path),
                         "rule file %s does not exist" % rule_file)
        for i, test in enumerate(doc.get("tests") or []):
            where = "%s: test #%d" % (rel(path), i + 1)
            for series in test.get("input_series") or []:
                text = series.get("series", "")
                ast = parse(text, where, report)
                if not isinstance(ast, promql_parser.VectorSelector):
                    report.check(ast is None, where, "input series %s is not a plain series" % text)
                    continue
                name = check_selector_labels(ast, "%s: series %s" % (where, text), contract, report)
                if name:
                    have = {label for label, _, _ in matchers_of(ast)}
                    want = contract[name] | SCRAPE_LABELS
                    # With several Prefect targets, the exporter adds `prefect` (README).
                    report.check(have in (want, possible_labels(name, contract)), "%s: series %s" % (where, text),
                                 "labels must be exactly what the exporter and the scrape produce: %s"
                                 % ", ".join(sorted(want)))
            for case in test.get("alert_rule_test") or []:
                name = case.get("alertname")
                report.check(name in alerts, where, "tests unknown alert %s" % name)
                expected = case.get("exp_alerts") or []
                if not expected:
                    quiet.add(name)
                    continue
                rule = alerts.get(name) or {}
                for alert in expected:
                    labels = alert.get("exp_labels") or {}
                    annotations = alert.get("exp_annotations") or {}
                    ok = report.check(labels.get("severity") == (rule.get("labels") or {}).get("severity"), where,
                                      "%s: exp_labels must include its severity" % name)
                    ok &= report.check(set(annotations) >= set(rule.get("annotations") or {}), where,
                                       "%s: exp_annotations must give every annotation (%s)"
                                       % (name, ", ".join(sorted(rule.get("annotations") or {}))))
                    if ok:
                        fires[name] = True
    for name in sorted(alerts):
        report.check(name in fires, "alerts/tests", "alert %s has no test where it fires with exact labels and "
                     "annotations" % name)
        report.check(name in quiet, "alerts/tests", "alert %s has no test where it must not fire" % name)


# ---------------------------------------------------------------------------------------------
# Dashboards
# ---------------------------------------------------------------------------------------------

def substitute(expr, values, rate_interval):
    def repl(match):
        name = match.group(1) or match.group(2)
        if name == "__rate_interval":
            return rate_interval
        return values.get(name, match.group(0))
    return VARIABLE_RE.sub(repl, expr)


def variables_in(expr):
    return {m.group(1) or m.group(2) for m in VARIABLE_RE.finditer(expr)}


def walk_panels(panels):
    for panel in panels or []:
        yield panel
        if panel.get("type") == "row":
            for inner in panel.get("panels") or []:
                yield inner


def sentinel(name):
    return "__VAR_%s__" % name


def check_dashboard_expr(expr, where, contract, report):
    known = set(FILTER_VARIABLES) | {"__rate_interval"}
    unknown = variables_in(expr) - known
    report.check(not unknown, where, "uses unknown or disallowed variables %s (only $__rate_interval and %s)"
                 % (sorted(unknown), ", ".join("$" + v for v in FILTER_VARIABLES)))
    ast = parse(substitute(expr, {v: sentinel(v) for v in FILTER_VARIABLES}, RATE_SENTINEL), where, report)
    if ast is None:
        return
    rate_range = datetime.timedelta(seconds=int(RATE_SENTINEL[:-1]))
    for selector, rng in selectors(ast):
        if selector == "subquery":
            report.fail(where, "subqueries are not allowed in dashboards")
            continue
        if rng is not None:
            report.check(rng == rate_range, where, "every range must be [$__rate_interval] (%s)" % selector)
        name = check_selector_labels(selector, where, contract, report)
        if not name:
            continue
        matchers = {(label, op): value for label, op, value in matchers_of(selector)}
        for var in FILTER_VARIABLES:
            if var in SCRAPE_LABELS or var in contract[name] or (var == "prefect" and has_target_label(name)):
                ok = any(label == var and value == sentinel(var) and op == "MatchOp.Re"
                         for (label, op), value in matchers.items())
                report.check(ok, where, '%s must be filtered with %s=~"$%s"' % (name, var, var))


def check_variables(dashboard, where, contract, report):
    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list") or []}
    ds = variables.get("datasource")
    report.check(bool(ds) and ds.get("type") == "datasource" and ds.get("query") == "prometheus", where,
                 'needs a variable "datasource" of type datasource with query "prometheus"')
    for name in FILTER_VARIABLES:
        var = variables.get(name)
        vwhere = "%s: variable %s" % (where, name)
        if not report.check(bool(var), where, "needs a query variable %r" % name):
            continue
        report.check(var.get("type") == "query", vwhere, "must be of type query")
        report.check(var.get("datasource") == DS, vwhere, "datasource must be %s" % json.dumps(DS))
        report.check(var.get("multi") is True and var.get("includeAll") is True, vwhere,
                     "must be multi-select with includeAll")
        report.check(var.get("allValue") == ALL_VALUES[name], vwhere, "allValue must be %r" % ALL_VALUES[name])
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        match = LABEL_VALUES_RE.match(query or "")
        if not report.check(bool(match) and match.group(2) == name, vwhere,
                            "query must be label_values(<selector>, %s), got %r" % (name, query)):
            continue
        selector = substitute(match.group(1), {v: sentinel(v) for v in FILTER_VARIABLES}, RATE_SENTINEL)
        ast = parse(selector, vwhere, report)
        if isinstance(ast, promql_parser.VectorSelector):
            metric = check_selector_labels(ast, vwhere, contract, report)
            if metric:
                report.check(name in possible_labels(metric, contract), vwhere, "metric %s has no label %s"
                             % (metric, name))
        elif ast is not None:
            report.fail(vwhere, "label_values() needs a series selector")


def check_dashboards(report, contract):
    uids = {}
    files = sorted(glob.glob(DASHBOARDS_GLOB))
    names = {os.path.basename(p) for p in files}
    for required in ("prefect-overview.json", "prefect-work-pool.json"):
        report.check(required in names, "dashboards/", "%s is missing" % required)
    for path in files:
        where = rel(path)
        try:
            dashboard = json.load(open(path, encoding="utf-8"))
        except Exception as exc:
            report.fail(where, "invalid JSON: %s" % exc)
            continue
        uid = dashboard.get("uid")
        report.check(isinstance(uid, str) and re.match(r"^[A-Za-z0-9_-]{1,40}$", uid or "") is not None, where,
                     "needs a fixed uid (at most 40 letters, digits, - or _)")
        report.check(uid not in uids, where, "uid %r is also used by %s" % (uid, uids.get(uid)))
        uids[uid] = where
        report.check(bool(dashboard.get("title")), where, "needs a title")
        report.check(bool(dashboard.get("tags")), where, "needs tags")
        report.check(dashboard.get("schemaVersion") in SCHEMA_VERSIONS, where,
                     "schemaVersion must be one of %s (Grafana 10 and 11)" % list(SCHEMA_VERSIONS))
        report.check(dashboard.get("id") is None, where, "id must be null so that the dashboard imports anywhere")
        check_variables(dashboard, where, contract, report)
        ids = set()
        panels = list(walk_panels(dashboard.get("panels")))
        report.check(bool(panels), where, "has no panels")
        for panel in panels:
            pwhere = "%s: panel %r (id %s)" % (where, panel.get("title"), panel.get("id"))
            report.check(panel.get("id") not in ids, pwhere, "panel id used twice")
            ids.add(panel.get("id"))
            grid = panel.get("gridPos") or {}
            report.check(all(isinstance(grid.get(k), int) for k in "hwxy") and grid["x"] + grid["w"] <= 24,
                         pwhere, "needs a gridPos within 24 columns")
            report.check(bool(panel.get("title")), pwhere, "needs a title")
            if panel.get("type") == "row":
                continue
            report.check(bool(panel.get("description")), pwhere, "needs a description")
            report.check(panel.get("datasource") == DS, pwhere, "datasource must be %s" % json.dumps(DS))
            unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
            report.check(isinstance(unit, str) and bool(unit), pwhere, "needs fieldConfig.defaults.unit")
            tgts = panel.get("targets") or []
            report.check(bool(tgts), pwhere, "has no targets")
            refs = set()
            for tgt in tgts:
                twhere = "%s target %s" % (pwhere, tgt.get("refId"))
                report.check(tgt.get("refId") and tgt.get("refId") not in refs, twhere, "needs a unique refId")
                refs.add(tgt.get("refId"))
                report.check(tgt.get("datasource") == DS, twhere, "datasource must be %s" % json.dumps(DS))
                expr = tgt.get("expr")
                if report.check(isinstance(expr, str) and expr.strip(), twhere, "needs an expr"):
                    check_dashboard_expr(expr, twhere, contract, report)


def list_queries(contract, optional, rate_interval):
    out = []
    for path in sorted(glob.glob(DASHBOARDS_GLOB)):
        dashboard = json.load(open(path, encoding="utf-8"))
        name = os.path.basename(path)
        for var in (dashboard.get("templating") or {}).get("list") or []:
            query = var.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            match = LABEL_VALUES_RE.match(query or "") if var.get("type") == "query" else None
            if match:
                out.append({"dashboard": name, "kind": "variable", "panel": "$" + var["name"], "ref_id": None,
                            "instant": True,
                            "expr": substitute(match.group(1), ALL_VALUES, rate_interval),
                            "may_be_empty": False})
        for panel in walk_panels(dashboard.get("panels")):
            for tgt in panel.get("targets") or []:
                expr = substitute(tgt.get("expr", ""), ALL_VALUES, rate_interval)
                used = {selector.name for selector, _ in selectors(promql_parser.parse(expr))
                        if selector != "subquery"}
                out.append({"dashboard": name, "kind": "panel", "panel": panel.get("title"),
                            "panel_id": panel.get("id"), "ref_id": tgt.get("refId"),
                            "instant": bool(tgt.get("instant")), "expr": expr,
                            "may_be_empty": bool(used & optional)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list-queries", action="store_true",
                    help="print every dashboard query with variables set to All, one JSON object per line")
    ap.add_argument("--rate-interval", default="1m", help="value of $__rate_interval for --list-queries")
    args = ap.parse_args()

    report = Report()
    contract, optional = load_contract(report)
    if args.list_queries:
        if report.failures:
            sys.stderr.write("\n".join(report.failures) + "\n")
            return 1
        try:
            for query in list_queries(contract, optional, args.rate_interval):
                print(json.dumps(query, sort_keys=True))
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. piped into head
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

    check_generators(report)
    alerts = check_alerts(report, contract)
    check_alert_tests(report, contract, alerts)
    check_dashboards(report, contract)
    for failure in report.failures:
        print("FAIL " + failure)
    print("static checks: %d ok, %d failing" % (report.passed, len(report.failures)))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
