#!/usr/bin/env python3
"""Self-test of scripts/lib/check_monitoring.py: proves that the catalogue checks can fail.

Each test takes the real metric catalogue, changes one family (renamed, removed, a label
dropped, retyped, moved to another collector) and asserts that the checker reports every place
that uses it: alert rules and their unit tests, the generated PrometheusRule, both dashboards,
the runbook and the README. Only failures that the unchanged catalogue does not already give
count, and each must name the changed family, so the test also holds while the tree is red.

    python3 scripts/lib/test_check_monitoring.py [--catalogue FILE | --exporter-bin PATH] [unittest args]

The catalogue is read as the checker reads it (--exporter-bin, else $PREFECT_EXPORTER_BIN, else
prefect-exporter in `swift build --show-bin-path`). scripts/check-monitoring runs this.
"""

import argparse
import contextlib
import copy
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_monitoring as cm  # noqa: E402

SOURCE = {"catalogue": None, "exporter_bin": None}  # set from the command line

ALERTS = "alerts/prefect-exporter.rules.yml"
ALERT_TESTS = "alerts/tests/"
PROMETHEUSRULE = "deploy/kubernetes/prometheusrule.yaml"
OVERVIEW = "dashboards/prefect-overview.json"
WORK_POOL = "dashboards/prefect-work-pool.json"
RUNBOOK = "docs/runbook.md"
README = "README.md"


def changed(families, name, change):
    """A copy of the catalogue where `change(family)` was applied to `name` (None removes it)."""
    out = []
    for family in copy.deepcopy(families):
        if family["name"] == name:
            family = change(family)
        if family is not None:
            out.append(family)
    assert out != families, "the change did nothing to %s" % name
    return out


class CatalogueChanges(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.families = cm.read_catalogue(SOURCE["catalogue"], SOURCE["exporter_bin"])
        cls.baseline = set(cls.failures_of(cls.families))

    @staticmethod
    def failures_of(families):
        return cm.check_against_catalogue(cm.Report(), families).failures

    def new_failures(self, families, *names):
        """The failures the changed catalogue adds; each must name one of `names`."""
        new = [f for f in self.failures_of(families) if f not in self.baseline]
        unrelated = [f for f in new if not any(name in f for name in names)]
        self.assertEqual(unrelated, [], "failures that do not name %s" % " or ".join(names))
        return new

    def assert_reported(self, failures, places, name, words=""):
        for place in places:
            hits = [f for f in failures if f.startswith(place) and name in f and words in f]
            self.assertTrue(hits, "no failure of %s naming %s %s; got:\n  %s"
                            % (place, name, words, "\n  ".join(failures)))

    def test_renamed_family_fails_wherever_it_is_used(self):
        old, new = "prefect_flow_run_max_lateness_seconds", "prefect_flow_run_max_lateness"
        failures = self.new_failures(changed(self.families, old, lambda f: dict(f, name=new)), old, new)
        self.assert_reported(failures, [ALERTS, ALERT_TESTS, PROMETHEUSRULE, OVERVIEW, WORK_POOL, RUNBOOK],
                             old, "not in the exporter's metric catalogue")
        self.assert_reported(failures, [README], old, "has no such family")
        self.assert_reported(failures, [README], new, "missing from the Metrics tables")
        self.assert_reported(failures, [RUNBOOK, README], new, "does not list")  # collector tables

    def test_removed_histogram_fails_for_its_bucket_and_count_series(self):
        name = "prefect_flow_run_start_delay_seconds"
        failures = self.new_failures(changed(self.families, name, lambda f: None), name)
        self.assert_reported(failures, [OVERVIEW, WORK_POOL], name + "_bucket")
        self.assert_reported(failures, [RUNBOOK], name + "_count")
        self.assert_reported(failures, [README], name + "_bucket")  # Example PromQL
        self.assert_reported(failures, [README], name, "has no such family")
        self.assert_reported(failures, [RUNBOOK, README], name, "which the catalogue does not say it feeds")

    def test_dropped_label_fails_where_it_is_selected(self):
        name = "prefect_work_pool_last_worker_heartbeat_timestamp_seconds"
        drop = lambda f: dict(f, labels=[l for l in f["labels"] if l != "work_pool"])
        failures = self.new_failures(changed(self.families, name, drop), name)
        self.assert_reported(failures, [ALERT_TESTS, OVERVIEW, WORK_POOL, RUNBOOK], name, "no label 'work_pool'")
        self.assert_reported(failures, [README], name, "the Metrics table says labels work_pool")

    def test_retyped_family_fails_in_the_readme(self):
        name = "prefect_flow_runs_late"
        failures = self.new_failures(changed(self.families, name, lambda f: dict(f, type="histogram")), name)
        self.assert_reported(failures, [README], name, "type 'gauge', the catalogue 'histogram'")
        self.assert_reported(failures, [ALERTS, OVERVIEW, RUNBOOK], name, "not in the exporter's metric catalogue")

    def test_family_moved_to_another_collector_fails_in_the_collector_tables(self):
        name = "prefect_work_queue_priority"
        failures = self.new_failures(changed(self.families, name, lambda f: dict(f, source="work_pools")), name)
        self.assert_reported(failures, [RUNBOOK, README], name, "does not list metric")
        self.assert_reported(failures, [RUNBOOK, README], name, "lists metric")

    def test_the_command_exits_1_with_a_changed_catalogue_file(self):
        old = "prefect_flow_runs_late"
        renamed = changed(self.families, old, lambda f: dict(f, name="prefect_flow_runs_overdue"))
        with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
            json.dump({"families": renamed}, handle)
            handle.flush()
            with contextlib.redirect_stdout(io.StringIO()) as stdout:
                status = cm.main(["--catalogue", handle.name])
        self.assertEqual(status, 1, stdout.getvalue())
        self.assertIn("FAIL %s: alert PrefectFlowRunsLateGrowing: metric %s is not in" % (ALERTS, old),
                      stdout.getvalue())

    def test_a_missing_binary_fails_clearly(self):
        missing = os.path.join(tempfile.gettempdir(), "no-such-dir", "prefect-exporter")
        with self.assertRaises(cm.CatalogueError) as raised:
            cm.read_catalogue(exporter_bin=missing)
        self.assertIn("swift build", str(raised.exception))
        self.assertIn(missing, str(raised.exception))
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            self.assertEqual(cm.main(["--exporter-bin", missing]), 2)
        self.assertIn("swift build", stderr.getvalue())


if __name__ == "__main__":
    ap = argparse.ArgumentParser(add_help=False)
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--catalogue")
    source.add_argument("--exporter-bin")
    args, rest = ap.parse_known_args()
    SOURCE.update(catalogue=args.catalogue, exporter_bin=args.exporter_bin)
    unittest.main(argv=[sys.argv[0]] + rest)
