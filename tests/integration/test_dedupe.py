"""Cross-platform dedupe over the real broker and database, against `settle`."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from carbonledger.contracts.methodology_files import publish as publish_version
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from tests.integration.helpers import (
    books_balanced,
    city,
    expected,
    latest_kinds,
    read_api,
    trace,
    trips,
    wait_for_balances,
)

pytestmark = pytest.mark.integration


def test_shuffled_duplicates_settle_like_the_batch_despite_one_of_two_workers_killed(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    records = city("xdup", trips=2500, people=120, seed=11)
    rng = random.Random(12)
    records += rng.sample(records, 200)  # redelivered by partners
    rng.shuffle(records)
    settled = expected(settings, records)
    want = dict(settled.personal)
    assert settled.outcomes["duplicate"] > 300  # the traffic really has cross-partner copies

    def kill_dedupe_once() -> None:
        time.sleep(2.0)
        running_stack.kill("dedupe")
        running_stack.start("dedupe")

    # Two workers, one killed mid-stream: its partitions, and their state, move to the
    # other and back again when it returns.
    running_stack.start("dedupe", worker=1)
    killer = threading.Thread(target=kill_dedupe_once)
    try:
        running_stack.wait_ready("dedupe", worker=1)
        killer.start()
        for i in range(0, len(records), 400):
            publish(settings, records[i : i + 400])
            time.sleep(0.3)
        killer.join()
        running_stack.wait_ready("dedupe")
        got = wait_for_balances(settings, db, want, timeout=420)
    finally:
        if killer.is_alive():
            killer.join()
        running_stack.stop("dedupe", worker=1)
    assert got == want, f"distinct events per topic: {trace(settings, 'xdup-')}"
    kinds = latest_kinds(db, "xdup-")
    assert kinds.get("duplicate", 0) == settled.outcomes["duplicate"]
    assert books_balanced(db)


def test_claim_explanation_names_the_winner_and_the_reversal(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    subject = "e" * 64
    trip = {
        "region": "440305",
        "started_at": "2026-10-13T08:00:00+08:00",
        "ended_at": "2026-10-13T08:30:00+08:00",
        "distance_km": "12.0",
    }

    def event(partner: str, event_id: str) -> tuple[str, bytes]:
        body = {
            "specversion": "1.0",
            "id": event_id,
            "source": partner,
            "type": "travel.metro",
            "time": "2026-10-13T08:30:00+08:00",
            "subject": subject,
            "data": trip,
        }
        return partner, json.dumps(body).encode()

    # The map app reports first; the metro operator's stronger evidence arrives later.
    publish(settings, [event("navi-maps", "explain-maps-1")])
    wait_for_balances(settings, db, {subject: 560_400})
    publish(settings, [event("shenzhen-metro", "explain-metro-1")])
    assert wait_for_balances(settings, db, {subject: 560_400}) == {subject: 560_400}
    base = f"http://127.0.0.1:{8000 + settings.port_offset}/v1/claims"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        loser = read_api(f"{base}/navi-maps/explain-maps-1").json()
        if loser.get("status") == "duplicate":
            break
        time.sleep(0.5)
    assert loser["status"] == "duplicate"
    assert loser["duplicate_of"] == {"source": "shenzhen-metro", "id": "explain-metro-1"}
    assert loser["credited"]["mg"] == 0
    assert [d["kind"] for d in loser["decisions"]] == ["credit", "reverse", "duplicate"]
    assert loser["decisions"][1]["reason"] == "displaced"
    assert "evidence rank" in loser["decisions"][2]["reason_detail"]
    winner = read_api(f"{base}/shenzhen-metro/explain-metro-1").json()
    assert winner["status"] == "credited" and winner["credited"]["mg"] == 560_400
    assert winner["duplicates"] == [{"source": "navi-maps", "id": "explain-maps-1"}]


def test_recompute_after_a_new_version_moves_the_books_by_the_difference(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes, tmp_path: Path
) -> None:
    records = trips("recompute", 60, people=6, seed=21)
    before = dict(expected(settings, records).personal)
    publish(settings, records)
    assert wait_for_balances(settings, db, before) == before
    registry = tmp_path / "registry"
    shutil.copytree(settings.methodology_dir, registry)
    v1 = (registry / "shenzhen-public-transport@1.yaml").read_text(encoding="utf-8")
    v2 = registry / "shenzhen-public-transport@2.yaml"
    v2.write_text(
        v1.replace('version: "1"', 'version: "2"').replace('value: "46.7"', 'value: "50"'),
        encoding="utf-8",
    )
    publish_version(v2)
    run = [sys.executable, "-m", "carbonledger.cli.main", "recompute"]
    args = ["--methodology", "shenzhen-public-transport", "--from", "2026-10-12"]
    args += ["--to", "2026-10-18", "--registry", str(registry)]
    done = subprocess.run(run + args, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    # Every event of the period under the methodology (other tests' too) is corrected.
    assert report["corrections"] == report["examined"] >= len(records)
    after = {
        subject: mg * 500 // 467
        for subject, mg in before.items()  # 46.7 -> 50 g per km
    }
    assert wait_for_balances(settings, db, after) == after
    again = subprocess.run(run + args, capture_output=True, text=True, check=True)
    rerun = json.loads(again.stdout)
    assert rerun["corrections"] == 0 and rerun["unchanged"] == report["examined"]
    assert wait_for_balances(settings, db, after) == after
    assert books_balanced(db)
