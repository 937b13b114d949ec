"""`carbonledger verify` while the pipeline writes: one snapshot, so no false breaks
during a bench-like burst of partner traffic, and a posting altered in SQL during
that burst is still named."""

from __future__ import annotations

import json
import threading
import time
import uuid
from itertools import takewhile
from typing import Any

import psycopg
import pytest

from carbonledger.bench.run import paced_batches, send_all
from carbonledger.bench.traffic import CityProfile, CityTraffic
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.services.ledger.adapters import views
from tests.integration.helpers import cli

pytestmark = [pytest.mark.integration, pytest.mark.todays_traffic]  # bench traffic is now


def verify_cli() -> tuple[int, dict[str, Any]]:
    done = cli("verify")
    return done.returncode, json.loads(done.stdout)


def _tamper(db: psycopg.Connection, posting_id: Any, amount: int) -> None:
    """What an attacker with database access would do: bypass the append-only trigger."""
    with db.transaction():
        db.execute("ALTER TABLE postings DISABLE TRIGGER postings_append_only")
        db.execute("UPDATE postings SET amount_mg = %s WHERE posting_id = %s", (amount, posting_id))
        db.execute("ALTER TABLE postings ENABLE TRIGGER postings_append_only")


class Burst(threading.Thread):
    """Partner traffic at a steady rate through the real stack, in the background,
    until told to stop (or `activities` are sent)."""

    def __init__(self, settings: Settings, activities: int, rate: float) -> None:
        super().__init__(name="verify-burst", daemon=True)
        self.settings, self.activities, self.rate = settings, activities, rate
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        traffic = CityTraffic(CityProfile(people=200, seed=18, tag=f"v{time.time_ns() % 10**6}"))
        batches = paced_batches(traffic, self.activities, self.rate)
        try:
            send_all(self.settings, takewhile(lambda _: not self.stopping.is_set(), batches))
        except BaseException as error:  # seen by the test, not lost in the thread
            self.error = error


def _posting_grows(db: psycopg.Connection, since: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while (seq := views.last_seq(db)) <= since:
        assert time.monotonic() < deadline, "no posting arrived from the burst"
        time.sleep(0.5)
    return seq


def test_verify_during_a_burst_reports_no_false_break_and_names_an_altered_posting(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    start = views.last_seq(db)
    burst = Burst(settings, activities=100_000, rate=150)
    burst.start()
    try:
        seen = _posting_grows(db, start)
        for _ in range(2):  # each run overlaps postings being written
            code, report = verify_cli()
            assert code == 0 and report["ok"], report
        assert views.last_seq(db) > seen, "the burst ended before verify ran under it"
        target = db.execute(
            "SELECT posting_id, account, amount_mg FROM postings"
            " WHERE seq > %s AND book = 'personal' ORDER BY seq LIMIT 1",
            (start,),
        ).fetchone()
        assert target is not None
        posting_id, account, amount = target
        _tamper(db, posting_id, amount + 1000)
        try:
            code, report = verify_cli()
            assert code == 1
            assert {(b["account"], b["posting_id"]) for b in report["breaks"]} == {
                (account, str(posting_id))
            }
            assert f"personal:{account}: balance" in " ".join(report["problems"])
            assert burst.is_alive(), "the burst ended before the altered ledger was verified"
        finally:
            _tamper(db, posting_id, amount)
    finally:
        burst.stopping.set()
        burst.join(timeout=180)
    assert burst.error is None
    code, report = verify_cli()
    assert code == 0 and report["ok"], report


def test_verify_names_decisions_that_break_the_books_invariants(
    db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    """Decisions no stage should have let through, written straight into the table."""
    negative, stray, credit, twice = (uuid.uuid4() for _ in range(4))
    rows = [
        (negative, "credit", -(10**12), None),  # the issue's -10^12 credit
        (stray, "reverse", -5, uuid.uuid4()),  # reverses nothing
        (credit, "credit", 7, None),
        (twice, "reverse", -7, credit),
        (uuid.uuid4(), "reverse", -7, credit),  # the same credit reversed again
    ]
    with db.transaction():
        for decision_id, kind, amount, reverses in rows:
            db.execute(
                "INSERT INTO decisions (decision_id, kind, claim_id, event_source, event_id,"
                " subject, behaviour_type, region, amount_mg, reverses, claim)"
                " VALUES (%s, %s, %s, 'test', %s, 'someone', 'travel.metro', '440305', %s, %s,"
                " '{}')",
                (decision_id, kind, uuid.uuid4(), str(decision_id), amount, reverses),
            )
    try:
        code, report = verify_cli()
        problems = " ".join(report["problems"])
        assert code == 1
        assert f"decision {negative} (credit of {-(10**12)} mg)" in problems
        assert f"reversal {stray} reverses no credit" in problems
        assert f"reversal {credit} reversed 2 times" in problems
    finally:
        with db.transaction():
            db.execute("ALTER TABLE decisions DISABLE TRIGGER decisions_append_only")
            db.execute("DELETE FROM decisions WHERE decision_id = ANY(%s)", ([r[0] for r in rows],))
            db.execute("ALTER TABLE decisions ENABLE TRIGGER decisions_append_only")
    assert verify_cli()[0] == 0
