"""Dead letters: inspected and replayed after a registry fix, credited exactly once."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from carbonledger.reference.settle import settle
from tests.integration.helpers import books_balanced, cli, wait_for_balances
from tests.integration.test_pipeline import dead_letters

pytestmark = pytest.mark.integration


def rides(count: int) -> list[tuple[str, bytes]]:
    """Bike-share rides the bank reports before the registry allows it to."""
    records = []
    for n in range(count):
        body = {
            "specversion": "1.0",
            "id": f"dlq-ride-{n}",
            "source": "green-bank",
            "type": "travel.bike_share",
            "time": f"2026-10-14T0{n % 9}:30:00+08:00",
            "subject": subject_of(f"+86-dlq-{n % 4}"),
            "data": {
                "region": "440305",
                "started_at": f"2026-10-14T0{n % 9}:10:00+08:00",
                "ended_at": f"2026-10-14T0{n % 9}:30:00+08:00",
                "distance_km": f"{2 + n % 5}.5",
            },
        }
        records.append(("green-bank", json.dumps(body).encode()))
    return records


def dlq(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("dlq", *args)


def test_replay_after_enabling_a_behaviour_credits_each_event_once(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes, tmp_path: Path
) -> None:
    records = rides(12)
    publish(settings, records)
    letters = dead_letters(settings, {raw for _, raw in records})
    assert {letter["reason"] for letter in letters.values()} == {"type_not_allowed"}
    listed = dlq("list", "--partner", "green-bank", "--reason", "type_not_allowed")
    assert listed.returncode == 0 and "dlq-ride-" not in listed.stdout  # ids, not payloads
    assert len(listed.stdout.splitlines()) >= len(records)
    one = next(iter(letters.values()))["dead_letter_id"]
    shown = json.loads(dlq("show", one).stdout)
    assert json.loads(shown["payload_text"])["source"] == "green-bank"

    # The operator lets the bank report bike-share rides and restarts ingest.
    fixed = yaml.safe_load(settings.partners_file.read_text(encoding="utf-8"))
    bank = next(p for p in fixed["partners"] if p["id"] == "green-bank")
    bank["behaviours"].append("travel.bike_share")
    partners = tmp_path / "partners.yaml"
    partners.write_text(yaml.safe_dump(fixed, allow_unicode=True), encoding="utf-8")
    running_stack.stop("ingest")
    running_stack.start("ingest", env={"CARBON_PARTNERS_FILE": str(partners)})
    try:
        running_stack.wait_ready("ingest")
        for _ in range(2):  # replaying twice changes nothing
            done = dlq("replay", "--partner", "green-bank", "--reason", "type_not_allowed")
            assert done.returncode == 0, done.stderr
        want = dict(
            settle(
                records,
                load_registry(partners),
                load_methodologies(settings.methodology_dir),
                datetime.now(UTC),
            ).personal
        )
        assert want and wait_for_balances(settings, db, want) == want
        counts = db.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM decisions"
            " WHERE event_id LIKE 'dlq-ride-%%' AND kind = 'credit'"
        ).fetchone()
        assert counts == (len(records), len(records))
        assert books_balanced(db)
    finally:
        running_stack.stop("ingest")
        running_stack.start("ingest")
        running_stack.wait_ready("ingest")
