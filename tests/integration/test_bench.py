"""A few seconds of `carbonledger bench` against the test stack, so the harness keeps
working. No timing is asserted: the figures belong in docs/performance.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carbonledger.bench.probe import LOAD_GENERATOR
from carbonledger.ops import stack
from tests.integration.helpers import cli

pytestmark = [pytest.mark.integration, pytest.mark.todays_traffic]


def test_a_short_bench_run_reports_every_figure_and_a_correct_ledger(
    running_stack: stack.Processes, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    done = cli(
        "bench",
        "--people",
        "300",
        "--activities",
        "800",
        "--rate",
        "400",
        "--relay",
        "--json",
        str(out),
        "--plot",
        str(tmp_path / "charts"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "books equal settle: yes" in done.stdout
    report = json.loads(out.read_text())
    assert report["correct"] and report["problems"] == []
    generated = report["generated"]
    assert generated["activities"] == 800
    assert report["records"] == generated["records"] > 800  # duplicates and replays
    assert generated["duplicates"] > 0 and generated["replays"] > 0
    assert generated["malformed"] > 0
    assert generated["consents"] > 0 and generated["consentless"] > 0
    assert report["records_per_second"] > 0 and report["credited_events"] > 500
    latency = report["latency_seconds"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    processes = report["processes"]
    stages = {"ingest-0", "quantify-0", "dedupe-0", "ledger-writer-0", "kafka", "postgres"}
    assert stages | {LOAD_GENERATOR} <= set(processes)
    assert all(p["peak_rss_mb"] > 0 for p in processes.values())
    assert processes["ingest-0"]["consumed"] == report["records"]
    assert report["relay"]["records"] == report["records"]
    assert report["ratio_to_relay"] > 0
    assert report["lag"]["dedupe-0"]
    cpu = report["cpu_ms_per_record"]
    assert cpu["all"] > cpu["platform"] > 0
    disk = report["storage"]
    assert (
        disk["postgres_bytes_per_credited_activity"]
        >= disk["postgres_kept_bytes_per_credited_activity"]
        > 0
    )
    assert {"decisions", "postings"} <= set(disk["postgres_tables"])
    assert disk["kafka_bytes_per_record"] > 0
    assert {"reduction.claims", "dedupe.decisions"} <= set(disk["kafka_topics"])
    charts = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert charts == ["lag.png", "latency.png", "throughput.png"]
