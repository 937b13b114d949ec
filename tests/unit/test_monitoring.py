"""The metrics the services export follow the naming rules, and every alert and
dashboard query refers only to metrics and labels that exist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.ops import monitoring as mon


@pytest.fixture(scope="module")
def families() -> list[mon.Family]:
    # Importing the faust apps registers their metrics; do it in a fresh interpreter.
    code = (
        "import dataclasses, json; from carbonledger.ops.monitoring import exported_families; "
        "print(json.dumps([dataclasses.asdict(f) for f in exported_families()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    found = [mon.Family(**{**f, "labels": tuple(f["labels"])}) for f in json.loads(done.stdout)]
    assert len(found) > 40
    return found


def test_every_exported_metric_follows_the_naming_rules(families: list[mon.Family]) -> None:
    assert mon.naming_problems(families) == []


def test_the_pipeline_metrics_the_operations_issue_asks_for_exist(
    families: list[mon.Family],
) -> None:
    names = {f.name for f in families}
    assert {
        "carbon_stage_records_consumed_total",
        "carbon_stage_records_produced_total",
        "carbon_ingest_rejections_total",
        "carbon_dedupe_duplicates_total",
        "carbon_dedupe_reversals_total",
        "carbon_ledger_credited_reduction_grams_total",
        "carbon_stage_processing_seconds",
        "carbon_ledger_ingest_to_posting_seconds",
        "carbon_ledger_event_to_posting_seconds",
        "carbon_consumer_lag_records",
        "carbon_dead_letter_backlog_records",
        "carbon_ledger_write_batch_decisions",
        "carbon_build_info",
    } <= names


@pytest.mark.parametrize(
    ("family", "complaint"),
    [
        (mon.Family("ledger_postings_total", "counter", (), "x"), "does not start with carbon_"),
        (mon.Family("carbon_ledger_postings", "counter", (), "x"), "counter without _total"),
        (mon.Family("carbon_lag_total", "gauge", (), "x"), "not a counter"),
        (mon.Family("carbon_write_milliseconds", "histogram", (), "x"), "scaled unit"),
        (mon.Family("carbon_mass_kg_total", "counter", (), "x"), "scaled unit"),
        (mon.Family("carbon_write_time", "histogram", (), "x"), "without a unit suffix"),
        (mon.Family("carbon_request_latency_seconds", "histogram", (), "x"), "_seconds"),
        (mon.Family("carbon_x_total", "counter", ("subject",), "x"), "'subject' is not"),
        (mon.Family("carbon_x_total", "counter", ("region",), "x"), "'region' is not"),
        (mon.Family("carbon_x_total", "counter", (), " "), "no help text"),
    ],
)
def test_the_naming_lint_refuses(family: mon.Family, complaint: str) -> None:
    problems = mon.naming_problems([family])
    assert any(complaint in p for p in problems), problems


def test_alert_rules_use_only_exported_metrics_and_labels(families: list[mon.Family]) -> None:
    rules = mon.all_rules()
    assert len(rules) > len(mon.alert_rules()) >= 8
    assert mon.rule_problems(rules, families) == []


def test_dashboards_query_only_exported_metrics_and_labels(families: list[mon.Family]) -> None:
    queries = mon.dashboard_queries()
    assert len(queries) >= 30
    assert mon.rule_problems(queries, families) == []


def test_a_rule_on_a_missing_metric_or_label_is_caught(families: list[mon.Family]) -> None:
    rules = [
        {"alert": "A", "expr": "rate(carbon_ledger_posting_total[5m]) > 0"},
        {"alert": "B", "expr": "sum by (subject) (rate(carbon_ledger_postings_total[5m]))"},
        {"alert": "C", "expr": 'carbon_ingest_records_total{partnr="x"} > 0'},
    ]
    assert mon.rule_problems(rules, families) == [
        "A: no service exports carbon_ledger_posting_total",
        "B: no metric it uses has the label 'subject'",
        "C: no metric it uses has the label 'partnr'",
    ]


def test_expression_refs_see_through_functions_groupings_and_matchers() -> None:
    refs = mon.expression_refs(
        "histogram_quantile(0.99, sum by (le, stage) (rate(carbon_stage_processing_seconds_bucket"
        '{stage=~"ingest|dedupe"}[5m]))) > 1e3 and on (job) up == 1 unless vector(0)'
    )
    assert refs.metrics == {"carbon_stage_processing_seconds_bucket", "up"}
    assert refs.labels == {"le", "stage", "job"}


def test_every_alert_has_a_severity_a_summary_and_a_runbook_page() -> None:
    for rule in mon.alert_rules():
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(mon.RUNBOOK_TEMPLATE), f"{rule['alert']}: not from the one base"
        runbook = ROOT / "docs" / "runbooks" / url.removeprefix(mon.RUNBOOK_TEMPLATE)
        assert runbook.is_file(), f"{rule['alert']}: {runbook} is missing"
        assert rule["alert"] in runbook.read_text(), f"{runbook} does not name its alert"


def test_every_alert_has_a_promtool_unit_test() -> None:
    tests = yaml.safe_load(
        (mon.PROMETHEUS_DIR / "tests" / "carbonledger.rules.test.yml").read_text()
    )
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in mon.alert_rules()} <= tested


def test_the_committed_local_scrape_config_is_what_the_stack_renders() -> None:
    rendered = mon.render(mon.scrape_config(Settings(port_offset=0)))
    assert mon.LOCAL_CONFIG.read_text() == rendered, "run `carbonledger monitoring config`"


def test_the_local_scrape_config_has_one_job_per_service_at_its_port() -> None:
    from carbonledger.contracts.services import SERVICES

    config = mon.scrape_config(Settings(port_offset=1000))
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets == {
        f"carbon-{s.name}": [f"127.0.0.1:{s.base_port + 1000}"] for s in SERVICES.values()
    }


def test_runbook_index_lists_every_page() -> None:
    index = (ROOT / "docs" / "runbooks" / "README.md").read_text()
    for page in Path(ROOT / "docs" / "runbooks").glob("*.md"):
        if page.name != "README.md":
            assert page.name in index, page.name


def test_every_setting_is_in_the_configuration_reference() -> None:
    from carbonledger.services.dedupe.config import DedupeSettings
    from carbonledger.services.ingest.config import IngestSettings
    from carbonledger.services.ledger.config import LedgerSettings
    from carbonledger.services.quantify.config import QuantifySettings

    reference = (ROOT / "docs" / "configuration.md").read_text()
    fields = {
        name
        for cls in (Settings, IngestSettings, QuantifySettings, DedupeSettings, LedgerSettings)
        for name in cls.model_fields
    }
    variables = {f"CARBON_{name.upper()}" for name in fields}
    assert sorted(v for v in variables if v not in reference) == []


def test_the_configuration_reference_gives_the_service_tables_defaults() -> None:
    """The port and group settings default to contracts/services.py; the reference
    must say the same values, or operators override the wrong ones."""
    from carbonledger.contracts import services

    reference = (ROOT / "docs" / "configuration.md").read_text()
    documented = dict(re.findall(r"^\| `(CARBON_\w+)` \| `([^`]*)` \|", reference, re.M))
    from_table = {
        "CARBON_INGEST_WEB_PORT": services.INGEST.base_port,
        "CARBON_QUANTIFY_WEB_PORT": services.QUANTIFY.base_port,
        "CARBON_DEDUPE_WEB_PORT": services.DEDUPE.base_port,
        "CARBON_LEDGER_WRITER_METRICS_PORT": services.LEDGER_WRITER.base_port,
        "CARBON_PUBLISHER_METRICS_PORT": services.LEDGER_PUBLISHER.base_port,
        "CARBON_LEDGER_GROUP": services.LEDGER_WRITER.app_id,
    }
    assert {v: documented.get(v) for v in from_table} == {
        v: str(default) for v, default in from_table.items()
    }
