#!/usr/bin/env python3
"""Static checks of prefect-exporter's alert rules, dashboards, runbook and README.

The truth is the exporter's metric catalogue: every family it can serve, declared once in Swift
and printed by `prefect-exporter metrics --format json`. The catalogue comes from the binary
(--exporter-bin, else $PREFECT_EXPORTER_BIN, else prefect-exporter in `swift build
--show-bin-path`; nothing is built) or from a JSON file (--catalogue, for tests).
Run by scripts/check-monitoring (which also runs promtool and scripts/lib/test_check_monitoring.py).

Against the catalogue (each failure names the file and the metric):

- every metric and label matcher in the PromQL of alerts/*.rules.yml, their unit tests'
  input series, deploy/kubernetes/prometheusrule.yaml and dashboards/*.json (panels and
  variable queries) is a series the exporter writes, with labels it has: a family's name; a
  histogram's _bucket (with `le`), _sum, _count; a counter's or histogram's _created; labels
  of the family plus `job` and `instance` (the scrape) plus `prefect` (several Prefect targets;
  where the catalogue's per_target says so: not on build_info and process_*). Prometheus' `up` is allowed too;
- the same for PromQL naming prefect_* or process_* metrics in docs/runbook.md and README.md:
  ```promql blocks must parse; `inline code` is checked as PromQL when it parses, otherwise each
  name in it must be a family or series (OpenMetrics family names and `*` globs allowed);
- README.md's "Metrics" tables list exactly the catalogue's families, with its types and labels;
- the collector tables (Collector | ... | Families) of README.md and docs/runbook.md list each
  collector's families as the catalogue's `source` says.

And, as before:

- alerts/prefect-exporter.rules.yml and dashboards/*.json equal what alerts/generate.py and
  dashboards/generate.py write; every PromQL expression parses with `promql-parser`;
- alert conventions: `for`, a `severity` label, a static summary, a description with labels
  and the value, a runbook_url whose anchor is a heading of docs/runbook.md, and promtool unit
  tests with a firing case (exact labels and annotations) and a quiet case for every alert,
  whose input series carry exactly the exporter's label sets;
- dashboard conventions: datasource variable used by every panel and target; multi-value
  job/instance/work_pool/work_queue variables with "All"; filters on every selector whose
  metric has the label; $__rate_interval in every range; unit, title and description on every
  panel; fixed uid, tags, schemaVersion.

`--list-queries` prints every dashboard query (and each variable's series selector) with the
variables set to "All", one JSON object per line, for end-to-end tests against a Prometheus;
it needs no catalogue (`may_be_empty` comes from "absent when/if" in the README's tables).

Needs PyYAML and promql-parser (scripts/requirements-test.txt).
"""

import argparse
import bisect
import datetime
import fnmatch
import glob
import importlib.util
import json
import os
import re
import subprocess
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
PROMETHEUSRULE = os.path.join(ROOT, "deploy", "kubernetes", "prometheusrule.yaml")
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
# PyYAML's safe loader, in C when PyYAML was built with libyaml (ten times faster).
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CATALOGUE_COMMAND = ["metrics", "--format", "json"]
METRIC_TYPES = {"counter", "gauge", "histogram"}
NOT_COLLECTORS = {"exporter", "process"}  # catalogue sources that are not collectors
# Names in docs that are ours: prefect_* and process_*, possibly a glob (`process_*`).
METRIC_TOKEN_RE = re.compile(r"(?<![\w./$-])((?:prefect|process)_[a-z0-9_]*\*?)")
FENCE_RE = re.compile(r"^\s*```\s*([\w-]*)")
INLINE_CODE_RE = re.compile(r"`([^`]+)`")


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


def read_text(path, report):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        report.fail(rel(path), "cannot read: %s" % exc)
        return None


# ---------------------------------------------------------------------------------------------
# The metric catalogue, from `prefect-exporter metrics --format json`
# ---------------------------------------------------------------------------------------------

class CatalogueError(Exception):
    pass


def exporter_binary(explicit=None):
    """The exporter binary: `explicit`, else $PREFECT_EXPORTER_BIN, else `swift build --show-bin-path`'s."""
    path = explicit or os.environ.get("PREFECT_EXPORTER_BIN")
    if path:
        return path
    try:
        bin_dir = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True,
                                 text=True, check=True, timeout=120).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise CatalogueError("cannot locate the exporter binary with `swift build --show-bin-path` (%s); run "
                             "`swift build`, then set PREFECT_EXPORTER_BIN or pass --exporter-bin" % exc)
    return os.path.join(bin_dir, "prefect-exporter")


def read_catalogue(catalogue_file=None, exporter_bin=None):
    """The catalogue's families (dicts with name, type, labels, source, ...); raises CatalogueError."""
    if catalogue_file:
        try:
            with open(catalogue_file, encoding="utf-8") as handle:
                return parse_catalogue(handle.read(), catalogue_file)
        except OSError as exc:
            raise CatalogueError("cannot read the catalogue %s: %s" % (catalogue_file, exc))
    binary = exporter_binary(exporter_bin)
    command = [binary] + CATALOGUE_COMMAND
    if not os.access(binary, os.X_OK):
        raise CatalogueError("the exporter binary %s does not exist; build it with `swift build` (in %s) so "
                             "that `%s` prints the metric catalogue" % (binary, ROOT, " ".join(command)))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CatalogueError("`%s` failed: %s" % (" ".join(command), exc))
    if done.returncode != 0:
        raise CatalogueError("`%s` exited with status %d (an old build? run `swift build`): %s"
                             % (" ".join(command), done.returncode, done.stderr.strip()))
    return parse_catalogue(done.stdout, " ".join(command))


def parse_catalogue(text, origin):
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CatalogueError("%s: not JSON: %s" % (origin, exc))
    families = doc.get("families") if isinstance(doc, dict) else None
    if not isinstance(families, list) or not families:
        raise CatalogueError('%s: no {"families": [...]} list' % origin)
    seen = set()
    for family in families:
        ok = (isinstance(family, dict) and isinstance(family.get("name"), str)
              and family.get("type") in METRIC_TYPES and isinstance(family.get("source"), str)
              and isinstance(family.get("labels"), list) and all(isinstance(l, str) for l in family["labels"]))
        if not ok:
            raise CatalogueError("%s: malformed family %s" % (origin, json.dumps(family)[:200]))
        if family["name"] in seen:
            raise CatalogueError("%s: family %s is declared twice" % (origin, family["name"]))
        seen.add(family["name"])
    return families


# Sample names whose series carry `prefect` with several targets: from the catalogue's per_target.
PER_TARGET_SERIES = set()


def series_of(families):
    """{sample name: labels} of every series the exporter writes, plus Prometheus' own `up`.
    Also records which samples carry `prefect` with several targets (PER_TARGET_SERIES)."""
    series = {"up": set()}
    for family in families:
        name, labels = family["name"], set(family["labels"])
        before = set(series)
        if family["type"] == "histogram":
            series[name + "_bucket"] = labels | {"le"}
            for suffix in ("_sum", "_count", "_created"):
                series[name + suffix] = set(labels)
        else:
            series[name] = labels
        if family["type"] == "counter":
            series[openmetrics_name(family) + "_created"] = set(labels)
        if family.get("per_target", not (name == "prefect_exporter_build_info" or name.startswith("process_"))):
            PER_TARGET_SERIES.update(set(series) - before)
    return series


def openmetrics_name(family):
    """The family's name on OpenMetrics # TYPE lines: without a counter's _total or an info gauge's _info."""
    name = family["name"]
    if family["type"] == "counter" and name.endswith("_total"):
        return name[:-len("_total")]
    if family["type"] == "gauge" and name.endswith("_info"):
        return name[:-len("_info")]
    return name


def mentionable_names(families, series):
    """Every name prose may use for a metric: sample names, family names in both formats."""
    return set(series) | {f["name"] for f in families} | {openmetrics_name(f) for f in families}


def has_target_label(name):
    """Whether a series carries `prefect` when one exporter polls several Prefect targets: the
    catalogue's per_target (not build info, process_* or Prometheus' own `up`)."""
    return name in PER_TARGET_SERIES


def possible_labels(name, series):
    """Every label a series of `name` can have: its family's, the scrape's, and `prefect` where it applies."""
    return series[name] | SCRAPE_LABELS | ({"prefect"} if has_target_label(name) else set())


# ---------------------------------------------------------------------------------------------
# Markdown: tables, sections, code
# ---------------------------------------------------------------------------------------------

def section_lines(text, heading):
    """(first, last) line numbers of the section under `heading` (up to the next heading of its level)."""
    level = len(heading.split(" ", 1)[0])
    start, fenced = None, False
    for number, line in enumerate(text.splitlines(), 1):
        fenced ^= bool(FENCE_RE.match(line))
        if fenced:
            continue
        if start is None and line.strip() == heading:
            start = number
        elif start is not None and re.match(r"#{1,%d} " % level, line):
            return start, number - 1
    return None if start is None else (start, len(text.splitlines()))


def markdown_tables(text):
    """Every pipe table: (header cells, [(line number, cells)]) for its body rows."""
    tables, current = [], None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            current = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if current is None:
            current = (cells, [])
            tables.append(current)
        elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            current[1].append((number, cells))
    return tables


def code_names(cell):
    """The `code` spans of a table cell."""
    return INLINE_CODE_RE.findall(cell)


def promql_expressions(block):
    """[line number, expression] of a ```promql block: a line starting at column 0 starts an
    expression, indented lines continue it, comment and blank lines are skipped."""
    expressions = []
    for number, line in block:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[:1].isspace() and expressions:
            expressions[-1][1] += "\n" + line
        else:
            expressions.append([number, line])
    return expressions


def markdown_code(text):
    """(line number, kind, code) of every piece of code: each expression of a ```promql block
    ("promql"), each line of another fenced block ("code"), each `inline` span ("inline")."""
    out, prose, block, language = [], [], None, None
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE_RE.match(line)
        prose.append("" if fence or block is not None else line)
        if fence and block is None:
            block, language = [], fence.group(1)
        elif fence:
            if language == "promql":
                out += [(n, "promql", expr) for n, expr in promql_expressions(block)]
            else:
                out += [(n, "code", code) for n, code in block]
            block = None
        elif block is not None:
            block.append((number, line))
    joined = "\n".join(prose)
    line_ends = [i for i, char in enumerate(joined) if char == "\n"]
    for match in INLINE_CODE_RE.finditer(joined):
        out.append((bisect.bisect_left(line_ends, match.start()) + 1, "inline", match.group(1)))
    return sorted(out, key=lambda item: item[0])


# ---------------------------------------------------------------------------------------------
# README's "Metrics" tables and the collector tables, against the catalogue
# ---------------------------------------------------------------------------------------------

def readme_metric_rows(text, report):
    """(line number, name, type, [labels], meaning) of every row of the tables under "## Metrics"."""
    span = section_lines(text, "## Metrics")
    if span is None:
        report.fail("README.md", 'no "## Metrics" section')
        return []
    first, last = span
    rows = []
    for header, body in markdown_tables(text):
        if header[:3] != ["Metric", "Type", "Labels"]:
            continue
        for number, cells in body:
            if not first <= number <= last:
                continue
            names = code_names(cells[0])
            if not report.check(len(names) == 1 and len(cells) >= 4, "README.md:%d" % number,
                                "a Metrics row needs | `metric` | type | `labels` | meaning |"):
                continue
            rows.append((number, names[0], cells[1], code_names(cells[2]), " ".join(cells[3:])))
    report.check(bool(rows), "README.md", 'no | Metric | Type | Labels | Meaning | table under "## Metrics"')
    return rows


def optional_metrics(rows):
    """Metrics whose README meaning says they can be absent (for --list-queries' may_be_empty)."""
    return {name for _, name, _, _, meaning in rows if re.search(r"\babsent (when|if)\b", meaning, re.I)}


def check_readme_metrics(report, families, rows):
    declared = {family["name"]: family for family in families}
    listed = {}
    for number, name, kind, labels, _ in rows:
        where = "README.md:%d: metric %s" % (number, name)
        if not report.check(name not in listed, where, "listed twice in the Metrics tables (also line %s)"
                            % listed.get(name)):
            continue
        listed[name] = number
        family = declared.get(name)
        if not report.check(family is not None, where, "the Metrics table lists it, but the exporter's "
                            "metric catalogue has no such family (renamed or removed?)"):
            continue
        report.check(kind == family["type"], where, "the Metrics table says type %r, the catalogue %r"
                     % (kind, family["type"]))
        report.check(set(labels) == set(family["labels"]), where, "the Metrics table says labels %s, the "
                     "catalogue %s" % (label_list(labels), label_list(family["labels"])))
    for name, family in declared.items():
        report.check(name in listed, "README.md: metric %s" % name, "missing from the Metrics tables (a %s "
                     "with labels %s in the catalogue)" % (family["type"], label_list(family["labels"])))


def label_list(labels):
    return ", ".join(sorted(labels)) or "(none)"


def check_collector_tables(report, path, text, families):
    """Tables | Collector | ... | Families | list each collector's families as the catalogue's `source`."""
    fed = {}
    for family in families:
        if family["source"] not in NOT_COLLECTORS:
            fed.setdefault(family["source"], set()).add(family["name"])
    for header, body in markdown_tables(text):
        if header[:1] != ["Collector"] or "Families" not in header:
            continue
        column, shown = header.index("Families"), set()
        for number, cells in body:
            collector = (code_names(cells[0]) or [cells[0]])[0]
            where = "%s:%d: collector %s" % (rel(path), number, collector)
            shown.add(collector)
            if not report.check(collector in fed, where, "is not a source of the exporter's metric catalogue"):
                continue
            names = set(code_names(cells[column])) if column < len(cells) else set()
            for name in sorted(fed[collector] - names):
                report.fail(where, "does not list metric %s, which the catalogue says it feeds" % name)
            for name in sorted(names - fed[collector]):
                report.fail(where, "lists metric %s, which the catalogue does not say it feeds" % name)
        for collector in sorted(set(fed) - shown):
            report.fail(rel(path), "the collector table has no row for collector %s of the catalogue" % collector)


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


def check_selector_labels(selector, where, series, report):
    name = selector.name
    if not report.check(bool(name), where, "selector without a metric name: %s" % selector):
        return None
    if not report.check(name in series, where, "metric %s is not in the exporter's metric catalogue "
                        "(`prefect-exporter metrics`)" % name):
        return None
    allowed = possible_labels(name, series)
    for label, _, _ in matchers_of(selector):
        if label == "__name__":
            continue
        report.check(label in allowed, where, "metric %s has no label %r (it has: %s)"
                     % (name, label, ", ".join(sorted(allowed))))
    return name


def check_expr_metrics(expr, where, series, report):
    """Parses a rule's expression and checks the metrics and labels of its selectors."""
    ast = parse(expr, where, report)
    if ast is not None:
        for selector, _ in selectors(ast):
            if selector != "subquery":
                check_selector_labels(selector, where, series, report)


# ---------------------------------------------------------------------------------------------
# Metrics named in Markdown (runbook, README)
# ---------------------------------------------------------------------------------------------

def is_ours(name):
    return bool(name) and name.startswith(("prefect_", "process_"))


def check_markdown_metrics(report, path, text, families, series):
    """PromQL and metric names in the code of a Markdown text: see the module docstring."""
    names = mentionable_names(families, series)
    for number, kind, code in markdown_code(text):
        if not METRIC_TOKEN_RE.search(code):
            continue
        where = "%s:%d" % (rel(path), number)
        ast = parse(code, where, report) if kind == "promql" else promql_in_prose(code)
        if ast is None:
            if kind != "promql":
                for token in METRIC_TOKEN_RE.findall(code):
                    check_metric_mention(token, where, names, report)
            continue
        for selector, _ in selectors(ast):
            if selector != "subquery" and is_ours(selector.name):
                check_selector_labels(selector, where, series, report)


def promql_in_prose(code):
    """The PromQL of code in prose, or None for a bare name (a family: maybe a histogram's), a
    pattern, or anything else that does not parse."""
    if METRIC_TOKEN_RE.fullmatch(code.strip()):
        return None
    try:
        return promql_parser.parse(code)
    except Exception:  # the parser raises ValueError, be lenient about the type
        return None


def check_metric_mention(token, where, names, report):
    if token.endswith("*"):
        ok = any(fnmatch.fnmatchcase(name, token) for name in names)
    else:
        ok = token in names
    report.check(ok, where, "`%s` names no metric of the exporter's metric catalogue" % token)


def check_docs(report, families, series):
    """docs/runbook.md and README.md: metric names and PromQL, the Metrics tables, the collector tables."""
    runbook = read_text(RUNBOOK, report)
    if runbook is not None:
        check_markdown_metrics(report, RUNBOOK, runbook, families, series)
        check_collector_tables(report, RUNBOOK, runbook, families)
    readme = read_text(README, report)
    if readme is not None:
        check_readme_metrics(report, families, readme_metric_rows(readme, report))
        check_markdown_metrics(report, README, without_section(readme, "## Metrics"), families, series)
        check_collector_tables(report, README, readme, families)


def without_section(text, heading):
    """The text with the section's lines blanked (line numbers kept): its table is checked on its own."""
    span = section_lines(text, heading)
    if span is None:
        return text
    lines = text.splitlines()
    first, last = span
    return "\n".join("" if first <= number <= last else line for number, line in enumerate(lines, 1))


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
        current = (read_text(path, report) or "") if os.path.exists(path) else ""
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
    text = read_text(RUNBOOK, report)
    if text is None:
        return set()
    return {github_anchor(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def load_yaml(path, report):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=YAML_LOADER)
    except Exception as exc:
        report.fail(rel(path), "invalid YAML: %s" % exc)
        return None


def check_alerts(report, series):
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
                check_expr_metrics(rule.get("expr", ""), where, series, report)
    return alerts


def check_prometheusrule(report, series):
    """The metrics of deploy/kubernetes/prometheusrule.yaml (its equality with the generator's output is
    scripts/check-deploy's)."""
    where = rel(PROMETHEUSRULE)
    doc = load_yaml(PROMETHEUSRULE, report)
    groups = ((doc or {}).get("spec") or {}).get("groups") if isinstance(doc, dict) else None
    if not report.check(isinstance(groups, list) and groups, where, "no spec.groups"):
        return
    for group in groups:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            check_expr_metrics(str(rule.get("expr", "")), "%s: rule %s" % (where, name), series, report)


def check_alert_tests(report, series, alerts):
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
            for item in test.get("input_series") or []:
                text = item.get("series", "")
                ast = parse(text, where, report)
                if not isinstance(ast, promql_parser.VectorSelector):
                    report.check(ast is None, where, "input series %s is not a plain series" % text)
                    continue
                name = check_selector_labels(ast, "%s: series %s" % (where, text), series, report)
                if name:
                    have = {label for label, _, _ in matchers_of(ast)}
                    want = series[name] | SCRAPE_LABELS
                    # With several Prefect targets, the exporter adds `prefect` (README).
                    report.check(have in (want, possible_labels(name, series)), "%s: series %s" % (where, text),
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


def check_dashboard_expr(expr, where, series, report):
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
        name = check_selector_labels(selector, where, series, report)
        if not name:
            continue
        matchers = {(label, op): value for label, op, value in matchers_of(selector)}
        for var in FILTER_VARIABLES:
            if var in SCRAPE_LABELS or var in series[name] or (var == "prefect" and has_target_label(name)):
                ok = any(label == var and value == sentinel(var) and op == "MatchOp.Re"
                         for (label, op), value in matchers.items())
                report.check(ok, where, '%s must be filtered with %s=~"$%s"' % (name, var, var))


def check_variables(dashboard, where, series, report):
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
            metric = check_selector_labels(ast, vwhere, series, report)
            if metric:
                report.check(name in possible_labels(metric, series), vwhere, "metric %s has no label %s"
                             % (metric, name))
        elif ast is not None:
            report.fail(vwhere, "label_values() needs a series selector")


def check_dashboards(report, series):
    uids = {}
    files = sorted(glob.glob(DASHBOARDS_GLOB))
    names = {os.path.basename(p) for p in files}
    for required in ("prefect-overview.json", "prefect-work-pool.json"):
        report.check(required in names, "dashboards/", "%s is missing" % required)
    for path in files:
        where = rel(path)
        try:
            dashboard = json.loads(read_text(path, report) or "")
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
        check_variables(dashboard, where, series, report)
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
                    check_dashboard_expr(expr, twhere, series, report)


def list_queries(optional, rate_interval):
    out = []
    for path in sorted(glob.glob(DASHBOARDS_GLOB)):
        with open(path, encoding="utf-8") as handle:
            dashboard = json.load(handle)
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


def run_checks(report, families):
    """Every static check, against the catalogue's `families`."""
    check_generators(report)
    return check_against_catalogue(report, families)


def check_against_catalogue(report, families):
    """The checks that use the catalogue (all but the generators')."""
    series = series_of(families)
    alerts = check_alerts(report, series)
    check_alert_tests(report, series, alerts)
    check_prometheusrule(report, series)
    check_dashboards(report, series)
    check_docs(report, families, series)
    return report


def print_queries(rate_interval):
    """--list-queries: needs only the README (which metrics may be absent), not the catalogue."""
    report = Report()
    readme = read_text(README, report)
    optional = optional_metrics(readme_metric_rows(readme, report)) if readme is not None else set()
    if report.failures:
        sys.stderr.write("\n".join(report.failures) + "\n")
        return 1
    try:
        for query in list_queries(optional, rate_interval):
            print(json.dumps(query, sort_keys=True))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list-queries", action="store_true",
                    help="print every dashboard query with variables set to All, one JSON object per line")
    ap.add_argument("--rate-interval", default="1m", help="value of $__rate_interval for --list-queries")
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--exporter-bin", metavar="PATH",
                        help="the exporter binary whose `metrics --format json` is the catalogue (default: "
                             "$PREFECT_EXPORTER_BIN, else prefect-exporter in `swift build --show-bin-path`)")
    source.add_argument("--catalogue", metavar="FILE", help="read the catalogue from this JSON file instead")
    args = ap.parse_args(argv)

    if args.list_queries:
        return print_queries(args.rate_interval)
    try:
        families = read_catalogue(args.catalogue, args.exporter_bin)
    except CatalogueError as exc:
        sys.stderr.write("check-monitoring: %s\n" % exc)
        return 2
    report = run_checks(Report(), families)
    for failure in report.failures:
        print("FAIL " + failure)
    print("static checks against %d catalogue families: %d ok, %d failing"
          % (len(families), report.passed, len(report.failures)))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
