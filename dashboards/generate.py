#!/usr/bin/env python3
"""Generate the Grafana dashboards of prefect-exporter (dashboards/*.json).

The JSON files are generated so that every panel follows the same conventions (datasource
variable, job/instance/work_pool/work_queue filters, $__rate_interval, units, descriptions);
scripts/check-monitoring enforces them and checks that the committed files equal this
script's output. To change a dashboard, edit this file and run

    python3 dashboards/generate.py          # rewrites dashboards/*.json
    python3 dashboards/generate.py --check  # exit 1 if the committed files differ

A dashboard edited in Grafana can be exported and committed instead only if this script is
changed to match; the checker will tell.

Standard library only. Targets Grafana 10 and 11 (schemaVersion 39).
"""

import argparse
import difflib
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["prefect", "prefect-exporter"]

# Which dashboard filters apply to which metric: the labels it has, per the metric catalogue
# (`prefect-exporter metrics`; scripts/check-monitoring fails on a missing filter).
POOL = ("work_pool",)
POOL_QUEUE = ("work_pool", "work_queue")
FILTER_LABELS = {
    "prefect_work_pool_info": POOL,
    "prefect_work_pool_status": POOL,
    "prefect_work_pool_concurrency_limit": POOL,
    "prefect_work_pool_active_slots": POOL,
    "prefect_work_pool_workers": POOL,
    "prefect_work_pool_last_worker_heartbeat_timestamp_seconds": POOL,
    "prefect_work_queue_status": POOL_QUEUE,
    "prefect_work_queue_concurrency_limit": POOL_QUEUE,
    "prefect_work_queue_active_slots": POOL_QUEUE,
    "prefect_work_queue_priority": POOL_QUEUE,
    "prefect_work_queue_last_polled_timestamp_seconds": POOL_QUEUE,
    "prefect_deployment_info": POOL_QUEUE,
    "prefect_flow_runs": POOL_QUEUE,
    "prefect_flow_runs_upcoming": POOL_QUEUE,
    "prefect_flow_runs_late": POOL_QUEUE,
    "prefect_flow_run_lateness_seconds": POOL_QUEUE,
    "prefect_flow_run_max_lateness_seconds": POOL_QUEUE,
    "prefect_flow_run_running_seconds": POOL_QUEUE,
    "prefect_flow_run_max_running_seconds": POOL_QUEUE,
    "prefect_flow_runs_finished_total": POOL_QUEUE,
    "prefect_flow_run_start_delay_seconds": POOL_QUEUE,
    "prefect_flow_run_duration_seconds": POOL_QUEUE,
}
# "All" of each filter variable. work_pool/work_queue use ".*" so that runs without a work pool
# (empty label, see README) are included when "All" is selected.
ALL_VALUE = {"job": ".+", "instance": ".+", "prefect": ".*", "work_pool": ".*", "work_queue": ".*"}


def has_target_label(metric):
    """Whether `metric` carries the `prefect` label of an exporter that polls several Prefect
    targets (absent with one target, which `prefect=~".*"` also matches)."""
    return metric != "prefect_exporter_build_info" and not metric.startswith("process_")


def m(metric, *matchers):
    """A selector of `metric` filtered by the dashboard variables that apply to it."""
    base = metric
    for suffix in ("_bucket", "_count", "_sum"):
        if metric.endswith(suffix) and metric[: -len(suffix)] in FILTER_LABELS:
            base = metric[: -len(suffix)]
    labels = ['job=~"$job"', 'instance=~"$instance"']
    if has_target_label(base):
        labels.append('prefect=~"$prefect"')
    labels += ['%s=~"$%s"' % (name, name) for name in FILTER_LABELS.get(base, ())]
    labels += list(matchers)
    return "%s{%s}" % (metric, ", ".join(labels))


RI = "[$__rate_interval]"
FINISHED = "prefect_flow_runs_finished_total"


def failure_ratio(by):
    """(FAILED + CRASHED) / finished per `by`; 0 (not absent) where runs finished but none failed."""
    return (
        "(\n"
        "  sum by ({by}) (increase({failed}{ri}))\n"
        "  or\n"
        "  0 * sum by ({by}) (increase({all}{ri}))\n"
        ")\n"
        "/ sum by ({by}) (increase({all}{ri}))"
    ).format(by=by, ri=RI, failed=m(FINISHED, 'state_type=~"FAILED|CRASHED"'), all=m(FINISHED))


def quantile(q, histogram, by="le", extra=()):
    return "histogram_quantile(%s, sum by (%s) (rate(%s%s)))" % (
        q, by, m(histogram + "_bucket", *extra), RI)


# ------------------------------------------------------------------------------------------
# Panel builders
# ------------------------------------------------------------------------------------------

def target(expr, legend="", ref="A", instant=False, fmt=None):
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": ref,
    }
    if fmt:
        t["format"] = fmt
    return t


def targets(*specs, instant=False, fmt=None):
    """specs: (expr, legend) pairs; refIds A, B, C... in order."""
    return [target(expr, legend, chr(ord("A") + i), instant, fmt) for i, (expr, legend) in enumerate(specs)]


def thresholds(*steps):
    out = [{"color": "green", "value": None}]
    out += [{"color": color, "value": value} for value, color in steps]
    return {"mode": "absolute", "steps": out}


def base_panel(kind, title, description, tgts, unit):
    return {
        "datasource": DS,
        "description": description,
        "fieldConfig": {
            "defaults": {"mappings": [], "thresholds": thresholds(), "unit": unit},
            "overrides": [],
        },
        "options": {},
        "targets": tgts,
        "title": title,
        "type": kind,
    }


def timeseries(title, description, tgts, unit, stack=False, min_=0, max_=None, legend="bottom",
               calcs=("lastNotNull", "max"), bars=False):
    p = base_panel("timeseries", title, description, tgts, unit)
    d = p["fieldConfig"]["defaults"]
    d["color"] = {"mode": "palette-classic"}
    d["custom"] = {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": "",
        "axisPlacement": "auto",
        "barAlignment": 0,
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 40 if (stack or bars) else 10,
        "gradientMode": "none",
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "pointSize": 5,
        "scaleDistribution": {"type": "linear"},
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "thresholdsStyle": {"mode": "off"},
    }
    if min_ is not None:
        d["min"] = min_
    if max_ is not None:
        d["max"] = max_
    p["options"] = {
        "legend": {"calcs": list(calcs), "displayMode": "table", "placement": legend, "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return p


def stat(title, description, tgts, unit, steps=(), mappings=None, text_mode="auto", graph=True):
    p = base_panel("stat", title, description, tgts, unit)
    d = p["fieldConfig"]["defaults"]
    d["color"] = {"mode": "thresholds"}
    d["thresholds"] = thresholds(*steps)
    if mappings:
        d["mappings"] = mappings
    p["options"] = {
        "colorMode": "value",
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": text_mode,
        "wideLayout": True,
    }
    return p


def bargauge(title, description, tgts, unit, steps=()):
    p = base_panel("bargauge", title, description, tgts, unit)
    d = p["fieldConfig"]["defaults"]
    d["color"] = {"mode": "thresholds"}
    d["thresholds"] = thresholds(*steps)
    d["min"] = 0
    p["options"] = {
        "displayMode": "gradient",
        "maxVizHeight": 300,
        "minVizHeight": 16,
        "minVizWidth": 8,
        "namePlacement": "auto",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
        "sizing": "auto",
        "valueMode": "color",
    }
    return p


def heatmap(title, description, expr, unit):
    p = base_panel("heatmap", title, description, [target(expr, "{{le}}", fmt="heatmap")], unit)
    p["fieldConfig"]["defaults"]["custom"] = {
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "scaleDistribution": {"type": "linear"},
    }
    p["options"] = {
        "calculate": False,
        "cellGap": 1,
        "cellValues": {"unit": "none"},
        "color": {"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": False,
                  "scale": "exponential", "scheme": "Oranges", "steps": 64},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto", "value": "Runs"},
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": unit},
    }
    return p


STATUS_COLORS = [{
    "type": "value",
    "options": {
        "READY": {"color": "green", "index": 0},
        "NOT_READY": {"color": "red", "index": 1},
        "PAUSED": {"color": "orange", "index": 2},
    },
}]


def table(title, description, specs, columns, hidden=(), overrides=()):
    """specs: (expr, column name of its value or None to hide the value) per query; columns: label
    renames {label: column}; every query is instant and merged into one row per label set."""
    tgts = targets(*[(expr, "") for expr, _ in specs], instant=True, fmt="table")
    p = base_panel("table", title, description, tgts, "none")
    d = p["fieldConfig"]["defaults"]
    d["custom"] = {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True, "inspect": False}
    exclude = {"Time": True}
    exclude.update({name: True for name in hidden})
    rename = dict(columns)
    for i, (_, column) in enumerate(specs):
        value = "Value #%s" % chr(ord("A") + i)
        if column is None:
            exclude[value] = True
        else:
            rename[value] = column
    order = list(columns.values()) + [c for _, c in specs if c]
    p["transformations"] = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": exclude,
            "indexByName": {name: i for i, name in enumerate(order)},
            "renameByName": rename,
        }},
    ]
    p["fieldConfig"]["overrides"] = list(overrides)
    p["options"] = {
        "cellHeight": "sm",
        "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
        "showHeader": True,
    }
    return p


def override(name, **props):
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": key.replace("__", "."), "value": value} for key, value in props.items()]}


def status_override(name):
    return override(name, mappings=STATUS_COLORS, custom__cellOptions={"type": "color-text"})


DRILL_DOWN_URL = ("/d/prefect-work-pool/prefect-work-pool?${__url_time_range}&${datasource:queryparam}"
                  "&${job:queryparam}&${instance:queryparam}&var-work_pool=${__value.raw}")


def pool_link_override():
    return override("Work pool", links=[{"title": "Open work pool ${__value.raw}", "url": DRILL_DOWN_URL}])


class Layout:
    """Places panels left to right in a 24-column grid, wrapping as needed."""

    def __init__(self):
        self.panels, self.x, self.y, self.row_h, self.next_id = [], 0, 0, 0, 1

    def _newline(self):
        self.y += self.row_h
        self.x, self.row_h = 0, 0

    def row(self, title):
        if self.x:
            self._newline()
        self.panels.append({"collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                            "id": self.next_id, "panels": [], "title": title, "type": "row"})
        self.next_id += 1
        self.y += 1

    def add(self, panel, w, h):
        if self.x + w > 24:
            self._newline()
        panel = dict(panel)
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = self.next_id
        self.next_id += 1
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


# ------------------------------------------------------------------------------------------
# Variables and dashboard
# ------------------------------------------------------------------------------------------

def variables():
    def query_var(name, label, query):
        return {
            "allValue": ALL_VALUE[name],
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DS,
            "definition": query,
            "hide": 0,
            "includeAll": True,
            "label": label,
            "multi": True,
            "name": name,
            "options": [],
            "query": query,
            "refresh": 2,
            "regex": "",
            "skipUrlSync": False,
            "sort": 1,
            "type": "query",
        }

    return [
        {
            "current": {},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "type": "datasource",
        },
        query_var("job", "Job", "label_values(prefect_exporter_build_info, job)"),
        query_var("instance", "Instance", 'label_values(prefect_exporter_build_info{job=~"$job"}, instance)'),
        query_var("prefect", "Prefect",
                  'label_values(prefect_up{job=~"$job", instance=~"$instance"}, prefect)'),
        query_var("work_pool", "Work pool",
                  'label_values(prefect_work_pool_info{job=~"$job", instance=~"$instance", prefect=~"$prefect"}, '
                  'work_pool)'),
        query_var("work_queue", "Work queue",
                  'label_values(prefect_work_queue_status{job=~"$job", instance=~"$instance", prefect=~"$prefect", '
                  'work_pool=~"$work_pool"}, work_queue)'),
    ]


def dashboard(uid, title, description, layout):
    return {
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{
            "asDropdown": False,
            "icon": "external link",
            "includeVars": True,
            "keepTime": True,
            "tags": ["prefect"],
            "targetBlank": False,
            "title": "Prefect dashboards",
            "tooltip": "",
            "type": "dashboards",
            "url": "",
        }],
        "panels": layout.panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": variables()},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# ------------------------------------------------------------------------------------------
# Panels shared by both dashboards
# ------------------------------------------------------------------------------------------

def work_queue_table():
    g = "job, instance, prefect, work_pool, work_queue"
    return table(
        "Work queues",
        "One row per work queue: its status (READY, NOT_READY, PAUSED), priority (1 is highest), "
        "concurrency limit (empty when unlimited), time since a worker last polled it (empty if "
        "never), and its runs: upcoming (scheduled in the future), due (scheduled, start passed), "
        "late, and running.",
        [
            ("max by (%s, status) (%s == 1)" % (g, m("prefect_work_queue_status")), None),
            ("max by (%s) (%s)" % (g, m("prefect_work_queue_priority")), "Priority"),
            ("max by (%s) (%s)" % (g, m("prefect_work_queue_concurrency_limit")), "Concurrency limit"),
            ("time() - max by (%s) (%s)" % (g, m("prefect_work_queue_last_polled_timestamp_seconds")),
             "Last polled"),
            ("sum by (%s) (%s)" % (g, m("prefect_flow_runs_upcoming")), "Upcoming"),
            ("sum by (%s) (%s)" % (g, m("prefect_flow_runs", 'state_type="SCHEDULED"')), "Due"),
            ("sum by (%s) (%s)" % (g, m("prefect_flow_runs_late")), "Late"),
            ("sum by (%s) (%s)" % (g, m("prefect_flow_runs", 'state_type="RUNNING"')), "Running"),
        ],
        {"work_pool": "Work pool", "work_queue": "Work queue", "status": "Status"},
        hidden=("job", "instance"),
        overrides=[status_override("Status"), override("Last polled", unit="s"), pool_link_override()],
    )


def collector_health_table():
    g = "job, instance, prefect, collector"
    p = table(
        "Collector health",
        "One row per collector (one per part of the Prefect API) and exporter: whether it "
        "succeeded in the last poll, the time since its last success (empty if it never "
        "succeeded), and how long it took. A failing collector's families keep their last values "
        "until --prefect.max-staleness after its last success, then vanish; the others stay fresh. "
        "The exporter logs the cause as `collector <name> failed: ...`; the "
        "PrefectExporterCollectorFailing alert fires after 10 minutes without a success.",
        [
            ("min by (%s) (%s)" % (g, m("prefect_exporter_collector_success")), "Last poll"),
            ("time() - max by (%s) (%s)" % (g, m("prefect_exporter_collector_last_success_timestamp_seconds")),
             "Last success"),
            ("max by (%s) (%s)" % (g, m("prefect_exporter_collector_duration_seconds")), "Duration"),
        ],
        {"instance": "Instance", "prefect": "Prefect", "collector": "Collector"},
        hidden=("job",),
        overrides=[
            override("Last poll", mappings=[{"type": "value", "options": {
                "0": {"color": "red", "index": 0, "text": "FAILED"},
                "1": {"color": "green", "index": 1, "text": "OK"}}}],
                custom__cellOptions={"type": "color-text"}),
            override("Last success", unit="s", color={"mode": "thresholds"},
                     thresholds=thresholds((120, "orange"), (300, "red")),
                     custom__cellOptions={"type": "color-text"}),
            override("Duration", unit="s"),
        ],
    )
    p["options"]["sortBy"] = [{"desc": False, "displayName": "Last poll"}]
    return p


def finished_by_state(layout, w):
    layout.add(timeseries(
        "Finished runs by state",
        "Runs that reached COMPLETED, FAILED, CRASHED or CANCELLED, per minute, from the counter "
        "prefect_flow_runs_finished_total (which counts from the exporter's start).",
        targets(("60 * sum by (state_type) (rate(%s%s))" % (m(FINISHED), RI), "{{state_type}}")),
        "opm", stack=True, bars=True, calcs=("mean", "max")), w, 8)


DEP = "job, instance, prefect, deployment"


def per_deployment(expr, by="deployment"):
    """`expr` (a deployment-level series, labelled by deployment only) restricted to the
    deployments whose default work pool and queue are selected, with their work pool: joined to
    prefect_deployment_info, which carries work_pool and work_queue."""
    return "max by (%s) (\n  %s\n  * on (%s) group_left (work_pool)\n  max by (%s, work_pool) (%s)\n)" % (
        by, expr, DEP, DEP, m("prefect_deployment_info"))


def stalled_schedules():
    """Deployments with an active schedule, not paused, and no SCHEDULED run (the condition of
    PrefectDeploymentScheduleStalled, without its `for`)."""
    return ("%s > 0\n  and on (%s)\n  %s == 0\n  unless on (%s)\n  %s == 1" % (
        m("prefect_deployment_active_schedules"), DEP, m("prefect_deployment_has_scheduled_run"), DEP,
        m("prefect_deployment_paused")))


def schedule_rows(layout):
    layout.row("Schedules")
    layout.add(stat(
        "Stalled schedules",
        "Deployments (of the selected work pools and queues) with an active schedule, not paused, "
        "and no SCHEDULED run as of the exporter's last lookup: Prefect's scheduler is not creating "
        "their runs. PrefectDeploymentScheduleStalled fires after 15 minutes of this.",
        targets(("count(%s) or vector(0)" % per_deployment("(\n  " + stalled_schedules() + "\n  )"),
                 "Stalled")),
        "none", steps=((1, "orange"),)), 6, 8)
    g = "job, instance, prefect, deployment, work_pool"
    layout.add(table(
        "Deployment schedules",
        "One row per deployment of the selected work pools and queues: its active schedules (0: "
        "none, or all switched off), whether its schedules are paused (1), the shortest interval "
        "of its interval schedules (empty for cron and rrule), whether it has a SCHEDULED run (1; "
        "empty until the exporter has looked it up), when its next scheduled run is due (negative "
        "when that run is late; empty when it has none), and how long ago its last COMPLETED and "
        "its last FAILED or CRASHED run finished (empty when none did).",
        [
            (per_deployment(m("prefect_deployment_active_schedules"), g), "Active schedules"),
            (per_deployment(m("prefect_deployment_paused"), g), "Paused"),
            (per_deployment(m("prefect_deployment_schedule_interval_seconds"), g), "Interval"),
            (per_deployment(m("prefect_deployment_has_scheduled_run"), g), "Scheduled run"),
            (per_deployment("(%s - time())" % m("prefect_deployment_next_scheduled_run_timestamp_seconds"), g),
             "Next run in"),
            (per_deployment("(time() - %s)" % m("prefect_deployment_last_run_finished_timestamp_seconds",
                                                   'state_type="COMPLETED"'), g),
             "Last success"),
            (per_deployment("(time() - %s)" % m("prefect_deployment_last_run_finished_timestamp_seconds",
                                                   'state_type=~"FAILED|CRASHED"'), g),
             "Last failure"),
        ],
        {"deployment": "Deployment", "work_pool": "Work pool"},
        hidden=("job", "instance"),
        overrides=[
            override("Interval", unit="s"), override("Next run in", unit="s"),
            override("Last success", unit="s"), override("Last failure", unit="s"),
            override("Scheduled run", mappings=[{"type": "value", "options": {
                "0": {"color": "red", "index": 0, "text": "NONE"},
                "1": {"color": "green", "index": 1, "text": "YES"}}}],
                custom__cellOptions={"type": "color-text"}),
        ],
    ), 18, 8)
    layout.add(timeseries(
        "Next scheduled run in",
        "Time until the earliest SCHEDULED run of each deployment is due; below 0 when that run is "
        "late. No series for a deployment without a scheduled run.",
        targets((per_deployment("(%s - time())" % m("prefect_deployment_next_scheduled_run_timestamp_seconds")),
                 "{{deployment}}")),
        "s", min_=None), 12, 8)
    layout.add(timeseries(
        "Time since last successful run",
        "How long ago the last COMPLETED run of each deployment finished (from Prefect's end_time, "
        "so also runs from before the exporter started). PrefectDeploymentNoRecentSuccess fires "
        "when it exceeds 3 times the schedule's interval (at least 1h), or 26h for cron and rrule "
        "schedules whose last run failed. No series for a deployment that never completed.",
        targets((per_deployment("(time() - %s)" % m("prefect_deployment_last_run_finished_timestamp_seconds",
                                                      'state_type="COMPLETED"')),
                 "{{deployment}}")),
        "s"), 12, 8)


def slots_vs_limit(title, description, used, limit, by, legend):
    """A time series of the slots taken (`used`) and the size (`limit`) of concurrency limits, per `by`."""
    return timeseries(title, description, targets(
        ("max by (%s) (%s)" % (by, m(used)), legend + " used"),
        ("max by (%s) (%s)" % (by, m(limit)), legend + " limit")), "none")


def concurrency_rows(layout):
    layout.row("Concurrency")
    layout.add(timeseries(
        "Runs awaiting a concurrency slot",
        "Flow runs in state AwaitingConcurrencySlot, per deployment: Prefect holds them back "
        "because the deployment's concurrency limit is full. Runs held back by a work pool's or "
        "queue's limit stay Scheduled (and turn Late) instead.",
        targets(("sum by (deployment) (%s)" % m("prefect_flow_runs", 'state_name="AwaitingConcurrencySlot"'),
                 "{{deployment}}")),
        "none", stack=True), 8, 8)
    layout.add(slots_vs_limit(
        "Concurrency limit slots used",
        "Slots taken of each concurrency limit (global, tag and deployment limits) next to its "
        "size. PrefectConcurrencyLimitSaturated fires when an enforced limit is full for 10 "
        "minutes while runs wait for a slot.",
        "prefect_concurrency_limit_active_slots", "prefect_concurrency_limit", "kind, name", "{{kind}} {{name}}"), 8, 8)
    layout.add(table(
        "Concurrency limits",
        "One row per concurrency limit: its kind (global, tag, deployment), name (the tag, or the "
        "deployment), its slots, the slots taken now, and whether it is enforced (1) or switched "
        "off (0).",
        [
            ("max by (job, instance, prefect, kind, name) (%s)" % m("prefect_concurrency_limit"), "Limit"),
            ("max by (job, instance, prefect, kind, name) (%s)" % m("prefect_concurrency_limit_active_slots"),
             "Active slots"),
            ("max by (job, instance, prefect, kind, name) (%s)" % m("prefect_concurrency_limit_active"), "Enforced"),
        ],
        {"kind": "Kind", "name": "Name"},
        hidden=("job", "instance"),
    ), 8, 8)
    layout.add(slots_vs_limit(
        "Work pool slots used vs limit",
        "Concurrency slots taken by the PENDING and RUNNING runs of each work pool next to its "
        "concurrency limit (pools without a limit have no series). At the limit, Prefect hands out "
        "no more runs of the pool: PrefectWorkPoolConcurrencySaturated fires when runs are due "
        "meanwhile.",
        "prefect_work_pool_active_slots", "prefect_work_pool_concurrency_limit", "work_pool", "{{work_pool}}"),
        12, 8)
    layout.add(slots_vs_limit(
        "Work queue slots used vs limit",
        "Concurrency slots taken by the PENDING and RUNNING runs of each work queue next to its "
        "concurrency limit (queues without a limit have no series).",
        "prefect_work_queue_active_slots", "prefect_work_queue_concurrency_limit", "work_pool, work_queue",
        "{{work_pool}} / {{work_queue}}"), 12, 8)


def exporter_rows(layout):
    layout.row("Exporter")
    layout.add(timeseries(
        "Poll duration",
        "Wall time of the exporter's last poll of the Prefect API. It should stay well below "
        "--prefect.poll-interval.",
        targets(("max by (instance) (%s)" % m("prefect_exporter_poll_duration_seconds"), "{{instance}}")),
        "s"), 8, 8)
    layout.add(timeseries(
        "Collector duration",
        "How long each collector (one per Prefect resource) took in the last poll.",
        targets(("max by (collector) (%s)" % m("prefect_exporter_collector_duration_seconds"), "{{collector}}")),
        "s"), 8, 8)
    layout.add(timeseries(
        "Collector success",
        "1 if the collector succeeded in the last poll, 0 if it failed. A failing collector's "
        "families keep their last values until --prefect.max-staleness, then vanish; prefect_up "
        "is 0 only when every collector fails.",
        targets(("min by (collector) (%s)" % m("prefect_exporter_collector_success"), "{{collector}}")),
        "none", max_=1, calcs=("min", "lastNotNull")), 8, 8)
    layout.add(timeseries(
        "Polls by result",
        "Polls of the Prefect API per minute, by result: success (every collector succeeded), "
        "partial (some failed), failure (all failed) or skipped (Retry-After).",
        targets(("60 * sum by (result) (rate(%s%s))" % (m("prefect_exporter_polls_total"), RI), "{{result}}")),
        "opm", stack=True), 8, 8)
    layout.add(timeseries(
        "API requests by code",
        "Requests to the Prefect API per second by HTTP status; transport failures show as timeout, "
        "connection_error, tls_error or error.",
        targets(("sum by (code) (rate(%s%s))" % (m("prefect_exporter_api_requests_total"), RI), "{{code}}")),
        "reqps", stack=True), 8, 8)
    layout.add(timeseries(
        "API requests by endpoint",
        "Requests to the Prefect API per second by route template.",
        targets(("sum by (endpoint) (rate(%s%s))" % (m("prefect_exporter_api_requests_total"), RI), "{{endpoint}}")),
        "reqps", stack=True), 8, 8)
    layout.add(timeseries(
        "Exporter memory",
        "Resident memory of the exporter process.",
        targets(("max by (instance) (%s)" % m("process_resident_memory_bytes"), "{{instance}}")),
        "bytes"), 8, 8)
    layout.add(timeseries(
        "Exporter CPU",
        "CPU used by the exporter process, in cores (1 = 100% of one core).",
        targets(("sum by (instance) (rate(%s%s))" % (m("process_cpu_seconds_total"), RI), "{{instance}}")),
        "percentunit"), 8, 8)
    layout.add(table(
        "Versions",
        "The exporter's version and revision, and the Prefect server's version (empty on Prefect "
        "Cloud) and API version, per exporter instance.",
        [
            ("max by (job, instance, version, revision) (%s)" % m("prefect_exporter_build_info"), None),
            ('max by (job, instance, prefect, prefect_version, api_version) (label_replace(%s, "prefect_version", '
             '"$1", "version", "(.*)"))' % m("prefect_server_info"), None),
        ],
        {"job": "Job", "instance": "Instance", "version": "Exporter version", "revision": "Revision",
         "prefect_version": "Prefect version", "api_version": "Prefect API version"},
    ), 8, 8)


# ------------------------------------------------------------------------------------------
# Dashboards
# ------------------------------------------------------------------------------------------

def overview():
    L = Layout()
    L.row("Health")
    L.add(stat(
        "Prefect API",
        "UP if at least one collector succeeded in the exporter's last poll of the Prefect API "
        "(prefect_up). A single failing collector shows in Collector health, not here.",
        targets(("min by (instance) (%s)" % m("prefect_up"), "{{instance}}")),
        "none", steps=((1, "green"),),
        mappings=[{"type": "value", "options": {
            "0": {"color": "red", "index": 0, "text": "DOWN"},
            "1": {"color": "green", "index": 1, "text": "UP"}}}],
        graph=False), 4, 4)
    L.add(stat(
        "Data age",
        "Time since the exporter's last successful poll (at least one collector succeeded): how "
        "old the Prefect data shown here is. Normally below --prefect.poll-interval plus a poll's "
        "duration. The data of a failing collector can be older: see Collector health.",
        targets(("time() - max by (instance) (%s)" % m("prefect_exporter_last_poll_success_timestamp_seconds"),
                 "{{instance}}")),
        "s", steps=((120, "orange"), (300, "red"))), 4, 4)
    L.add(stat(
        "Late runs",
        "Scheduled runs whose start is more than --prefect.late-after in the past.",
        targets(("sum(%s)" % m("prefect_flow_runs_late"), "Late")),
        "none", steps=((1, "orange"),)), 4, 4)
    L.add(stat(
        "Max lateness",
        "How late the latest run is, across the selected pools and queues.",
        targets(("max(%s)" % m("prefect_flow_run_max_lateness_seconds"), "Max lateness")),
        "s", steps=((60, "orange"), (600, "red"))), 4, 4)
    L.add(stat(
        "Running runs",
        "Flow runs in state type RUNNING now.",
        targets(("sum(%s)" % m("prefect_flow_runs", 'state_type="RUNNING"'), "Running")),
        "none"), 4, 4)
    L.add(stat(
        "Online workers",
        "Workers that Prefect reports ONLINE, across the selected work pools.",
        targets(("sum(%s)" % m("prefect_work_pool_workers", 'status="ONLINE"'), "Online")),
        "none", steps=()), 4, 4)
    L.add(collector_health_table(), 24, 9)

    L.row("Late runs")
    L.add(timeseries(
        "Late runs by work pool",
        "Scheduled runs whose start is more than --prefect.late-after in the past, per work pool "
        "(empty pool: runs without a work pool).",
        targets(("sum by (work_pool) (%s)" % m("prefect_flow_runs_late"), "{{work_pool}}")),
        "none"), 8, 8)
    L.add(timeseries(
        "Late runs by work queue",
        "Late runs per work pool and queue.",
        targets(("sum by (work_pool, work_queue) (%s)" % m("prefect_flow_runs_late"),
                 "{{work_pool}} / {{work_queue}}")),
        "none"), 8, 8)
    L.add(bargauge(
        "Late runs by deployment",
        "Late runs per deployment now (flow-name/deployment-name).",
        targets(("sort_desc(sum by (deployment) (%s))" % m("prefect_flow_runs_late"), "{{deployment}}"),
                instant=True),
        "none", steps=((1, "orange"),)), 8, 8)
    L.add(heatmap(
        "Lateness of late runs",
        "How late each currently late run is (histogram prefect_flow_run_lateness_seconds): one "
        "column per point in time, one row per bucket, colour = number of runs.",
        "sum by (le) (%s)" % m("prefect_flow_run_lateness_seconds_bucket"),
        "s"), 12, 8)
    L.add(timeseries(
        "Max lateness by work queue",
        "Lateness of the latest run of each work queue; 0 when none is late. The PrefectFlowRunsLate "
        "alert fires above 10 minutes by default.",
        targets(("max by (work_pool, work_queue) (%s)" % m("prefect_flow_run_max_lateness_seconds"),
                 "{{work_pool}} / {{work_queue}}")),
        "s"), 12, 8)

    L.row("Flow runs")
    L.add(timeseries(
        "Runs due or in flight by state",
        "Every PENDING, RUNNING, PAUSED and CANCELLING run, and SCHEDULED runs whose start has "
        "passed, by state name.",
        targets(("sum by (state_name) (%s)" % m("prefect_flow_runs"), "{{state_name}}")),
        "none", stack=True), 8, 8)
    L.add(bargauge(
        "Runs by state now",
        "Runs due or in flight now, by state type.",
        targets(("sort_desc(sum by (state_type) (%s))" % m("prefect_flow_runs"), "{{state_type}}"),
                instant=True),
        "none"), 8, 8)
    L.add(timeseries(
        "Upcoming runs by work queue",
        "SCHEDULED runs whose start is still in the future, per work pool and queue.",
        targets(("sum by (work_pool, work_queue) (%s)" % m("prefect_flow_runs_upcoming"),
                 "{{work_pool}} / {{work_queue}}")),
        "none"), 8, 8)
    finished_by_state(L, 12)
    L.add(timeseries(
        "Failure ratio by work pool",
        "Share of FAILED and CRASHED among the runs that finished, per work pool (gaps: no run "
        "finished). The PrefectFlowRunFailureRatioHigh alert uses a 1h window per deployment.",
        targets((failure_ratio("work_pool"), "{{work_pool}}")),
        "percentunit", max_=1), 12, 8)

    L.row("Durations")
    L.add(timeseries(
        "Longest running run by work queue",
        "How long the longest RUNNING run of each work queue has been running; 0 when none runs.",
        targets(("max by (work_pool, work_queue) (%s)" % m("prefect_flow_run_max_running_seconds"),
                 "{{work_pool}} / {{work_queue}}")),
        "s"), 8, 8)
    L.add(heatmap(
        "Time running of running runs",
        "How long each RUNNING run has been running (histogram prefect_flow_run_running_seconds).",
        "sum by (le) (%s)" % m("prefect_flow_run_running_seconds_bucket"),
        "s"), 8, 8)
    L.add(timeseries(
        "Run duration of finished runs",
        "Median and 95th percentile of the run time of runs that finished, from the histogram "
        "prefect_flow_run_duration_seconds (gaps: no run finished).",
        targets((quantile(0.5, "prefect_flow_run_duration_seconds"), "p50"),
                (quantile(0.95, "prefect_flow_run_duration_seconds"), "p95")),
        "s"), 8, 8)
    L.add(timeseries(
        "Start delay percentiles",
        "start_time - expected_start_time of runs that started: median, 90th and 99th percentile, "
        "from the histogram prefect_flow_run_start_delay_seconds (gaps: no run started).",
        targets((quantile(0.5, "prefect_flow_run_start_delay_seconds"), "p50"),
                (quantile(0.9, "prefect_flow_run_start_delay_seconds"), "p90"),
                (quantile(0.99, "prefect_flow_run_start_delay_seconds"), "p99")),
        "s"), 12, 8)
    L.add(timeseries(
        "Start delay p95 by work pool",
        "95th percentile of the start delay per work pool.",
        targets((quantile(0.95, "prefect_flow_run_start_delay_seconds", "le, work_pool"), "{{work_pool}}")),
        "s"), 12, 8)

    L.row("Work pools, queues and workers")
    g = "job, instance, prefect, work_pool"
    L.add(table(
        "Work pools",
        "One row per work pool: type, status (READY, NOT_READY, PAUSED), workers online and offline, "
        "time since the last worker heartbeat (empty when the pool has no worker), concurrency limit "
        "(empty when unlimited), and runs due, late and running. Click a pool to open its dashboard.",
        [
            ("max by (%s, type) (%s)" % (g, m("prefect_work_pool_info")), None),
            ("max by (%s, status) (%s == 1)" % (g, m("prefect_work_pool_status")), None),
            ("sum by (%s) (%s)" % (g, m("prefect_work_pool_workers", 'status="ONLINE"')), "Workers online"),
            ("sum by (%s) (%s)" % (g, m("prefect_work_pool_workers", 'status="OFFLINE"')), "Workers offline"),
            ("time() - max by (%s) (%s)" % (g, m("prefect_work_pool_last_worker_heartbeat_timestamp_seconds")),
             "Last heartbeat"),
            ("max by (%s) (%s)" % (g, m("prefect_work_pool_concurrency_limit")), "Concurrency limit"),
            ("sum by (%s) (%s)" % (g, m("prefect_flow_runs", 'state_type="SCHEDULED"')), "Due"),
            ("sum by (%s) (%s)" % (g, m("prefect_flow_runs_late")), "Late"),
            ("sum by (%s) (%s)" % (g, m("prefect_flow_runs", 'state_type="RUNNING"')), "Running"),
        ],
        {"work_pool": "Work pool", "type": "Type", "status": "Status"},
        hidden=("job", "instance"),
        overrides=[status_override("Status"), override("Last heartbeat", unit="s"), pool_link_override()],
    ), 24, 8)
    L.add(work_queue_table(), 24, 8)
    L.add(timeseries(
        "Workers by work pool and status",
        "Workers per work pool that Prefect reports ONLINE or OFFLINE.",
        targets(("sum by (work_pool, status) (%s)" % m("prefect_work_pool_workers"), "{{work_pool}} {{status}}")),
        "none"), 12, 8)
    L.add(timeseries(
        "Time since last worker heartbeat",
        "Age of the most recent heartbeat of any worker of each pool. Pools without any worker "
        "have no series.",
        targets(("time() - max by (work_pool) (%s)" % m("prefect_work_pool_last_worker_heartbeat_timestamp_seconds"),
                 "{{work_pool}}")),
        "s"), 12, 8)

    schedule_rows(L)
    concurrency_rows(L)
    exporter_rows(L)
    return dashboard(
        "prefect-overview", "Prefect / Overview",
        "Prefect flow runs, late runs, work pools, queues and workers, and the health of "
        "prefect-exporter.", L)


def work_pool():
    L = Layout()
    g = "job, instance, prefect, work_pool"
    L.row("Work pool")
    L.add(stat(
        "Status",
        "The work pool's status: READY, NOT_READY (no online worker) or PAUSED.",
        targets(("max by (work_pool, status) (%s == 1)" % m("prefect_work_pool_status"),
                 "{{work_pool}}: {{status}}")),
        "none", text_mode="name", graph=False), 6, 4)
    L.add(stat(
        "Online workers",
        "Workers of the pool that Prefect reports ONLINE.",
        targets(("sum by (work_pool) (%s)" % m("prefect_work_pool_workers", 'status="ONLINE"'), "{{work_pool}}")),
        "none"), 4, 4)
    L.add(stat(
        "Last worker heartbeat",
        "Time since the most recent heartbeat of any worker of the pool; no value when the pool "
        "has no worker.",
        targets(("time() - max by (work_pool) (%s)" % m("prefect_work_pool_last_worker_heartbeat_timestamp_seconds"),
                 "{{work_pool}}")),
        "s", steps=((120, "orange"), (300, "red"))), 5, 4)
    L.add(stat(
        "Late runs",
        "Late runs in the pool.",
        targets(("sum by (work_pool) (%s)" % m("prefect_flow_runs_late"), "{{work_pool}}")),
        "none", steps=((1, "orange"),)), 4, 4)
    L.add(stat(
        "Max lateness",
        "How late the latest run of the pool is.",
        targets(("max by (work_pool) (%s)" % m("prefect_flow_run_max_lateness_seconds"), "{{work_pool}}")),
        "s", steps=((60, "orange"), (600, "red"))), 5, 4)
    L.add(timeseries(
        "Running runs and concurrency limit",
        "RUNNING and PENDING runs of the pool next to its concurrency limit (no limit line when "
        "unlimited). Runs wait while the pool is at its limit.",
        targets(("sum by (work_pool) (%s)" % m("prefect_flow_runs", 'state_type=~"RUNNING|PENDING"'),
                 "{{work_pool}} running + pending"),
                ("max by (work_pool) (%s)" % m("prefect_work_pool_concurrency_limit"), "{{work_pool}} limit")),
        "none"), 12, 8)
    L.add(timeseries(
        "Workers by status",
        "Workers of the pool by ONLINE and OFFLINE.",
        targets(("sum by (work_pool, status) (%s)" % m("prefect_work_pool_workers"), "{{work_pool}} {{status}}")),
        "none"), 12, 8)

    L.row("Work queues")
    L.add(work_queue_table(), 24, 8)
    L.add(timeseries(
        "Runs by work queue and state",
        "Runs due or in flight per work queue and state name.",
        targets(("sum by (work_queue, state_name) (%s)" % m("prefect_flow_runs"), "{{work_queue}} {{state_name}}")),
        "none", stack=True), 12, 8)
    L.add(timeseries(
        "Upcoming runs by work queue",
        "SCHEDULED runs whose start is still in the future.",
        targets(("sum by (work_queue) (%s)" % m("prefect_flow_runs_upcoming"), "{{work_queue}}")),
        "none"), 12, 8)

    L.row("Lateness")
    L.add(timeseries(
        "Late runs by work queue",
        "Late runs per work queue.",
        targets(("sum by (work_queue) (%s)" % m("prefect_flow_runs_late"), "{{work_queue}}")),
        "none"), 8, 8)
    L.add(bargauge(
        "Late runs by deployment",
        "Late runs per deployment now.",
        targets(("sort_desc(sum by (deployment) (%s))" % m("prefect_flow_runs_late"), "{{deployment}}"),
                instant=True),
        "none", steps=((1, "orange"),)), 8, 8)
    L.add(timeseries(
        "Max lateness by work queue",
        "Lateness of the latest run of each queue; 0 when none is late.",
        targets(("max by (work_queue) (%s)" % m("prefect_flow_run_max_lateness_seconds"), "{{work_queue}}")),
        "s"), 8, 8)
    L.add(heatmap(
        "Lateness of late runs",
        "How late each currently late run of the pool is (histogram prefect_flow_run_lateness_seconds).",
        "sum by (le) (%s)" % m("prefect_flow_run_lateness_seconds_bucket"),
        "s"), 12, 8)
    L.add(timeseries(
        "Start delay p95 by work queue",
        "95th percentile of start_time - expected_start_time of runs that started, per queue "
        "(gaps: no run started).",
        targets((quantile(0.95, "prefect_flow_run_start_delay_seconds", "le, work_queue"), "{{work_queue}}")),
        "s"), 12, 8)

    L.row("Outcomes")
    finished_by_state(L, 8)
    L.add(timeseries(
        "Finished runs by deployment",
        "Runs per minute that finished, per deployment, whatever their final state.",
        targets(("60 * sum by (deployment) (rate(%s%s))" % (m(FINISHED), RI), "{{deployment}}")),
        "opm"), 8, 8)
    L.add(timeseries(
        "Failure ratio by deployment",
        "Share of FAILED and CRASHED among the finished runs of each deployment (gaps: no run "
        "finished).",
        targets((failure_ratio("deployment"), "{{deployment}}")),
        "percentunit", max_=1), 8, 8)

    L.row("Durations")
    L.add(timeseries(
        "Longest running run by work queue",
        "How long the longest RUNNING run of each queue has been running; 0 when none runs.",
        targets(("max by (work_queue) (%s)" % m("prefect_flow_run_max_running_seconds"), "{{work_queue}}")),
        "s"), 8, 8)
    L.add(heatmap(
        "Time running of running runs",
        "How long each RUNNING run of the pool has been running.",
        "sum by (le) (%s)" % m("prefect_flow_run_running_seconds_bucket"),
        "s"), 8, 8)
    L.add(timeseries(
        "Run duration p95 by final state",
        "95th percentile of the run time of finished runs, per final state type.",
        targets((quantile(0.95, "prefect_flow_run_duration_seconds", "le, state_type"), "{{state_type}}")),
        "s"), 8, 8)

    L.row("Deployments")
    dg = "job, instance, prefect, deployment"
    info = "max by (%s) (%s)" % (dg, m("prefect_deployment_info"))
    L.add(table(
        "Deployments",
        "Deployments whose work pool is selected: flow, work queue, status (READY / NOT_READY), "
        "whether their schedules are paused (1), and their late and running runs.",
        [
            ("max by (%s, flow, work_pool, work_queue) (%s)" % (dg, m("prefect_deployment_info")), None),
            ("max by (%s, status) ((%s == 1) * on (%s) group_left %s)"
             % (dg, m("prefect_deployment_status"), dg, info), None),
            ("max by (%s) (%s * on (%s) group_left %s)" % (dg, m("prefect_deployment_paused"), dg, info),
             "Schedules paused"),
            ("sum by (%s) (%s)" % (dg, m("prefect_flow_runs_late")), "Late"),
            ("sum by (%s) (%s)" % (dg, m("prefect_flow_runs", 'state_type="RUNNING"')), "Running"),
        ],
        {"deployment": "Deployment", "flow": "Flow", "work_pool": "Work pool", "work_queue": "Work queue",
         "status": "Status"},
        hidden=("job", "instance"),
        overrides=[status_override("Status")],
    ), 24, 8)

    exporter_rows(L)
    return dashboard(
        "prefect-work-pool", "Prefect / Work pool",
        "Drill-down into Prefect work pools: status, workers, queues, late runs, outcomes and "
        "durations of the selected pools.", L)


DASHBOARDS = {
    "prefect-overview.json": overview,
    "prefect-work-pool.json": work_pool,
}


def render():
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard differs")
    args = ap.parse_args()
    status = 0
    for name, text in render().items():
        path = HERE / name
        if args.check:
            current = path.read_text() if path.exists() else ""
            if current != text:
                status = 1
                sys.stderr.write("dashboards/%s is not what dashboards/generate.py writes; run "
                                 "`python3 dashboards/generate.py`:\n" % name)
                sys.stderr.writelines(list(difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), "committed", "generated"))[:80])
        else:
            path.write_text(text)
            print("wrote %s" % path)
    return status


if __name__ == "__main__":
    sys.exit(main())
