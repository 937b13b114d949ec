"""The example incentive subscriber: every posting once in effect, across a broker restart."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.services.ledger.adapters.books import Books
from tests.integration.helpers import personal_balances
from tests.integration.test_ledger import decisions

pytestmark = [pytest.mark.integration, pytest.mark.broker_restart]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "points_subscriber.py"


def subscribe(settings: Settings, db: Path, group: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable, str(EXAMPLE), "--bootstrap", settings.bootstrap_servers,
            "--group", group, "--db", str(db), "--until-idle", "8",
        ],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def outbox_drained(conn: psycopg.Connection, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
        if row == (0,):
            return
        time.sleep(0.5)
    raise AssertionError("the outbox was not published")


def mg_of(db: Path, people: set[str]) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT person, mg FROM person_points").fetchall()
    return {p: int(mg) for p, mg in rows if p in people}


def test_the_example_subscriber_counts_every_posting_once_across_a_broker_restart(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes, tmp_path: Path
) -> None:
    state = tmp_path / "points.sqlite3"
    group = f"points-{uuid.uuid4().hex[:8]}"
    first, second = decisions("points-a", 6), decisions("points-b", 6)
    people = {d.claim.subject for d in first + second}
    Books(db).apply(first, f"test-{uuid.uuid4()}", [])
    outbox_drained(db)
    subscribe(settings, state, group)

    stack.script("kafka", "stop", settings)
    stack.script("kafka", "start", settings)
    Books(db).apply(second, f"test-{uuid.uuid4()}", [])
    outbox_drained(db)  # the publisher reconnected and sent what waited
    after = subscribe(settings, state, group)
    assert mg_of(state, people) == personal_balances(db, people)
    assert after["chain_warnings"] == 0

    # Everything again under a new group (as after lost offsets): no effect.
    again = subscribe(settings, state, f"{group}-replay")
    assert again["duplicates_ignored"] >= again["postings_seen"] - after["postings_seen"]
    assert again["points_total"] == after["points_total"]
    assert mg_of(state, people) == personal_balances(db, people)
