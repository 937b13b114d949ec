"""`carbonledger verify` while the pipeline writes: one snapshot, so no false breaks
during a bench-like burst of partner traffic, and a posting altered in SQL during
that burst is still named."""

from __future__ import annotations

import json
import threading
import time
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

pytestmark = pytest.mark.integration


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
