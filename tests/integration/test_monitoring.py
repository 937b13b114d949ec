"""Monitoring against real parts: promtool on the configuration and rules, and a real
Prometheus (Debian's package) scraping the running test stack."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from carbonledger.contracts.services import SERVICES
from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.ops import monitoring as mon
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from tests.integration.helpers import expected, trips, wait_for_balances

pytestmark = pytest.mark.integration
PROMETHEUS = ROOT / "deploy" / "local" / "prometheus.sh"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(PROMETHEUS), "promtool", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("config", ["prometheus.local.yml", "prometheus.compose.yml"])
def test_promtool_accepts_the_scrape_configurations(config: str) -> None:
    done = promtool("check", "config", "--syntax-only", str(mon.PROMETHEUS_DIR / config))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(mon.RULES_DIR / "carbonledger.rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool(
        "test", "rules", str(mon.PROMETHEUS_DIR / "tests" / "carbonledger.rules.test.yml")
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Any) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n- name: x\n  rules:\n  - alert: X\n    expr: sum by (a (up)\n")
    assert promtool("check", "rules", str(broken)).returncode != 0


@pytest.fixture(scope="module")
def prometheus(settings: Settings, running_stack: stack.Processes) -> Iterator[str]:
    path = mon.write_local_config(settings)
    stack.script("prometheus", "start", settings, env=mon.prometheus_env(settings, path))
    try:
        yield f"http://127.0.0.1:{settings.prometheus_port + settings.port_offset}"
    finally:
        stack.script("prometheus", "stop", settings, check=False, env=mon.prometheus_env(settings))


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def value(base: str, promql: str) -> float | None:
    found = query(base, promql)
    return float(found[0]["value"][1]) if found else None


def api(base: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}{path}", timeout=10) as answer:
        return dict(json.load(answer)["data"])


def wait_until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {check.__doc__ or check}"
        time.sleep(1)


def test_every_service_is_healthy_ready_and_scraped(
    settings: Settings, running_stack: stack.Processes, prometheus: str
) -> None:
    for name in SERVICES:
        port = running_stack.port(name)
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                assert answer.status == 200, (name, path)

    def all_up() -> bool:
        targets = api(prometheus, "/api/v1/targets")["activeTargets"]
        return len(targets) == len(SERVICES) and all(t["health"] == "up" for t in targets)

    wait_until(all_up, 60)
    jobs = {r["metric"]["job"] for r in query(prometheus, "carbon_build_info")}
    assert jobs == {f"carbon-{name}" for name in SERVICES}


def test_a_workload_shows_in_the_key_series(
    settings: Settings, running_stack: stack.Processes, prometheus: str, db: Any
) -> None:
    records = trips("prom", 300, people=30, seed=7)
    want = dict(expected(settings, records).personal)
    publish(settings, records)
    assert wait_for_balances(settings, db, want) == want
    time.sleep(7)  # one more scrape after the last posting (interval 5 s)

    def workload_scraped() -> bool:
        postings = value(prometheus, "sum(carbon_ledger_postings_total)") or 0
        published = value(prometheus, "sum(carbon_publisher_postings_total)") or 0
        return postings >= 900 and published >= 900

    wait_until(workload_scraped, 60)
    for stage in ("ingest", "quantify", "dedupe", "ledger"):
        consumed = value(prometheus, f'sum(carbon_stage_records_consumed_total{{stage="{stage}"}})')
        assert consumed is not None and consumed >= 300, stage
    accepted = value(prometheus, 'sum(carbon_ingest_records_total{outcome="accepted"})')
    assert accepted is not None and accepted >= 300
    credited = query(prometheus, "sum by (province) (carbon_ledger_credited_reduction_grams_total)")
    assert {r["metric"]["province"] for r in credited} >= {"440000"}
    assert all(float(r["value"][1]) > 0 for r in credited)
    # Latency from ingest to posting of this workload (earlier tests' kills are not in
    # the last two minutes): observed for every credit, and sensible on one machine.
    recent = "increase(carbon_ledger_ingest_to_posting_seconds_{}[2m])"
    count = value(prometheus, f"sum({recent.format('count')})")
    assert count is not None and count >= 300
    p50 = value(prometheus, f"histogram_quantile(0.5, sum by (le) ({recent.format('bucket')}))")
    assert p50 is not None and 0 < p50 < 30
    # Every group reports its lag, and the pipeline is caught up.
    wait_until(lambda: (value(prometheus, "sum(carbon_consumer_lag_records)") or 0) == 0, 60)
    groups = {r["metric"]["group"] for r in query(prometheus, "carbon_consumer_lag_records")}
    assert {"carbon-ingest", "carbon-quantify", "carbon-dedupe"} <= groups

    def books_reported() -> bool:
        books = query(prometheus, "carbon_ledger_book_balance_grams")
        values = {r["metric"]["book"]: float(r["value"][1]) for r in books}
        return len(values) == 3 and len(set(values.values())) == 1 and min(values.values()) > 0

    wait_until(books_reported, 60)


def test_the_alert_rules_evaluate_and_none_fires_on_a_healthy_stack(prometheus: str) -> None:
    def evaluated() -> bool:
        groups = api(prometheus, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return len(rules) == len(mon.all_rules()) and all(
            r.get("lastEvaluation", "0001")[:4] != "0001" for r in rules
        )

    wait_until(evaluated, 30)
    rules = [r for g in api(prometheus, "/api/v1/rules")["groups"] for r in g["rules"]]
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    alerts = api(prometheus, "/api/v1/alerts")["alerts"]
    assert [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"] == []


AMTOOL_CONFIGS = [ROOT / "deploy" / "alertmanager" / "alertmanager.yml"]


@pytest.mark.parametrize("config", AMTOOL_CONFIGS, ids=lambda p: p.name)
def test_amtool_accepts_the_alertmanager_configuration(config: Any) -> None:
    done = subprocess.run(
        ["bash", str(PROMETHEUS), "amtool", "check-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 receivers" in done.stdout


def test_amtool_refuses_a_route_to_an_unknown_receiver(tmp_path: Any) -> None:
    broken = tmp_path / "alertmanager.yml"
    text = AMTOOL_CONFIGS[0].read_text(encoding="utf-8")
    broken.write_text(text.replace("receiver: on-call", "receiver: nobody"), encoding="utf-8")
    done = subprocess.run(
        ["bash", str(PROMETHEUS), "amtool", "check-config", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
