"""Consent over the real broker and database (DOMAIN §12).

中信碳账户 (`citic-bank`, `consent_required` in the shipped partner file) reports
bus rides in Shenzhen, credited by the government's public-transport methodology
only while the rider's consent to the bank was in force at the ride's end. Each of
this test's riders has a consent history of their own: none, a grant before the
week, a grant mid-week, a grant then a withdrawal, a withdrawal then a new grant.
Consent records are delivered before, between and after the rides they decide
(shuffled, some resent, the late ones last), with a SIGKILL of the dedupe stage,
which holds consent in each rider's state, mid-run. The books must equal `settle`
over the same records, the claim API must say `no_consent` for the rides not
credited, and the consent history API must hold every record once.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta

import psycopg
import pytest

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from carbonledger.reference.reconcile import expected_from
from tests.integration.helpers import (
    books_balanced,
    publish_killing,
    read_api,
    wait_for_balances,
)
from tests.integration.test_global_keys import books_of_events

pytestmark = pytest.mark.integration

BANK, OPEN_BANK = "citic-bank", "green-bank"  # consent required; none needed
WEEK = datetime(2026, 10, 12, tzinfo=CST)
Record = tuple[str, bytes]


def _event(n: str, kind: str, subject: str, at: datetime, data: dict[str, object]) -> Record:
    partner = OPEN_BANK if n.startswith("open") else BANK
    body = {
        "specversion": "1.0",
        "id": f"cons-{n}",
        "source": partner,
        "type": kind,
        "time": at.isoformat(),
        "subject": subject,
        "data": {"region": "440304", **data},
    }
    return partner, json.dumps(body).encode()


def _consent(n: str, granted: bool, subject: str, at: datetime) -> Record:
    kind = "consent.granted" if granted else "consent.withdrawn"
    return _event(n, kind, subject, at, {"scope": "carbon_account", "evidence_id": f"auth-{n}"})


def _ride(n: str, subject: str, ended: datetime, km: int) -> Record:
    data = {
        "started_at": (ended - timedelta(minutes=25)).isoformat(),
        "ended_at": ended.isoformat(),
        "distance_km": f"{km / 10:.1f}",
        "electric": True,
    }
    return _event(n, "travel.bus", subject, ended, data)


# Each rider's consent history: (days after the week's start, granted?).
HISTORIES: tuple[tuple[tuple[float, bool], ...], ...] = (
    (),
    ((-20, True),),
    ((2.5, True),),
    ((-3, True), (3.25, False)),
    ((0, True), (1.5, False), (4, True)),
    ((5.9, False),),
)


def traffic(seed: int) -> tuple[list[Record], list[Record]]:
    """Riders' rides through the bank (some also through a bank needing no consent)
    and their consent records; returns (records in any order, records sent last)."""
    rng = random.Random(seed)
    records: list[Record] = []
    late: list[Record] = []
    for r in range(24):
        rider = subject_of(f"+86-cons-{r}")
        for d, (days, granted) in enumerate(HISTORIES[r % len(HISTORIES)]):
            record = _consent(f"{r}-c{d}", granted, rider, WEEK + timedelta(days=days))
            (late if rng.random() < 0.4 else records).append(record)
        for n in range(8):
            ended = WEEK + timedelta(hours=rng.randrange(7, 6 * 24), minutes=rng.randrange(60))
            km = rng.randint(20, 150)
            records.append(_ride(f"{r}-{n}", rider, ended, km))
            if rng.random() < 0.25:  # the same ride through the other bank
                records.append(_ride(f"open-{r}-{n}", rider, ended, km))
    records += rng.sample(records, 30)  # resent by the partners, consent records too
    rng.shuffle(records)
    return records, late


def test_consent_decides_credits_whatever_the_order_despite_a_killed_dedupe(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    records, late = traffic(seed=2012)
    everything = records + late
    settled = expected_from(settings, everything)
    assert settled.outcomes["no_consent"] > 20 and settled.outcomes["credited"] > 40
    want = {a: v for a, v in settled.personal.items() if v}

    publish_killing(settings, running_stack, records, chunk=30, after=1.5)
    publish(settings, late)  # grants and withdrawals after the rides they decide
    assert wait_for_balances(settings, db, want, timeout=300) == want
    got = books_of_events(db, "cons-")
    for book in ("personal", "enterprise", "government"):
        assert got[book] == {a: v for a, v in settled.book(book).items() if v}, book
    assert books_balanced(db)
    explains_no_consent(settings, db)
    history_is_complete(settings, everything)


def explains_no_consent(settings: Settings, db: psycopg.Connection) -> None:
    """A ride of the rider who never consented: the claim API says why."""
    never = subject_of("+86-cons-0")
    row = db.execute(
        "SELECT event_id FROM decisions WHERE subject = %s AND event_source = %s LIMIT 1",
        (never, BANK),
    ).fetchone()
    assert row is not None
    base = f"http://127.0.0.1:{8000 + settings.port_offset}/v1/claims"
    answer = read_api(f"{base}/{BANK}/{row[0]}").json()
    assert answer["status"] == "not_credited" and answer["reason"] == "no_consent", answer
    assert answer["credited"]["mg"] == 0


def history_is_complete(settings: Settings, records: list[Record]) -> None:
    """Every consent record of a rider, once, in the history API (resends included in
    the traffic: the history is idempotent by event)."""
    rider = subject_of("+86-cons-4")
    sent = {
        json.loads(raw)["id"]
        for _, raw in records
        if json.loads(raw)["subject"] == rider and json.loads(raw)["type"].startswith("consent.")
    }
    url = f"http://127.0.0.1:{8000 + settings.port_offset}/v1/consents/{rider}"
    deadline = time.monotonic() + 60
    while True:
        history = read_api(url).json()["history"]
        if len(history) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(h["event"]["id"] for h in history) == sorted(sent)
    # HISTORIES[4]: granted, withdrawn a day and a half later, granted again on day 4.
    assert [h["type"] for h in history] == ["granted", "withdrawn", "granted"]
    assert read_api(url).json()["in_force"][BANK]["state"] == "granted"
