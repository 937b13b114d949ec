"""Publishing test traffic and waiting for the books to settle."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
from kafka import KafkaConsumer

from carbonledger.contracts import topics as t
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.roles import Role
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import dumps, subject_of, week_of_traffic
from carbonledger.ops import stack
from carbonledger.ops.progress import LEDGER_GROUP, LagProbe
from carbonledger.ops.publish import publish
from carbonledger.reference.reconcile import expected_from
from carbonledger.runtime.tokens import Grant, TokenSettings, mint_development_token
from carbonledger.services.ledger.adapters import views

PARTNERS = ("shenzhen-metro", "navi-maps", "green-bank")
SLOTS = 6 * 24 * 2  # half-hour slots in six days


def city(tag: str, trips: int, people: int, seed: int) -> list[tuple[str, bytes]]:
    """A week of this test's people's traffic with cross-partner duplicates, shuffled."""
    subjects = [subject_of(f"+86-{tag}-{i}") for i in range(people)]
    events = week_of_traffic(seed, subjects, trips, walkers=people // 5)
    records = [(str(e["source"]), dumps({**e, "id": f"{tag}-{e['id']}"}).encode()) for e in events]
    random.Random(seed).shuffle(records)
    return records


def trips(tag: str, count: int, people: int, seed: int) -> list[tuple[str, bytes]]:
    """Distinct Shenzhen metro trips of `people` people who belong to this test alone:
    no two of one person overlap, and all fall in one week (inside the dedupe window)."""
    rng = random.Random(seed)
    subjects = [subject_of(f"+86-{tag}-{i}") for i in range(people)]
    taken: set[tuple[str, int]] = set()
    records = []
    for n in range(count):
        partner = rng.choice(PARTNERS)
        subject = rng.choice(subjects)
        slot = rng.randrange(SLOTS)
        while (subject, slot) in taken:
            slot = rng.randrange(SLOTS)
        taken.add((subject, slot))
        ended = datetime(2026, 10, 12, 7, tzinfo=CST) + timedelta(minutes=30 * slot)
        event = {
            "specversion": "1.0",
            "id": f"{tag}-{n}",
            "source": partner,
            "type": "travel.metro",
            "time": ended.isoformat(),
            "subject": subject,
            "data": {
                "region": rng.choice(["440303", "440305", "440307"]),
                "started_at": (ended - timedelta(minutes=20)).isoformat(),
                "ended_at": ended.isoformat(),
                "distance_km": f"{rng.randint(10, 300) / 10:.1f}",
            },
        }
        records.append((partner, json.dumps(event).encode()))
    return records


expected = expected_from  # the demo's own check, over a test's records


def personal_balances(conn: psycopg.Connection, subjects: set[str]) -> dict[str, int]:
    return views.balances_of(conn, "personal", subjects)


def wait_for_balances(
    settings: Settings, conn: psycopg.Connection, want: dict[str, int], timeout: float = 180
) -> dict[str, int]:
    """Wait until the pipeline is caught up and these personal balances are reached."""
    deadline = time.monotonic() + timeout
    got: dict[str, int] = {}
    with LagProbe(settings) as probe:
        while time.monotonic() < deadline:
            got = personal_balances(conn, set(want))
            lag = probe.pipeline(views.writer_offsets(conn, LEDGER_GROUP))
            if got == want and not any(lag.values()):
                return got
            time.sleep(0.5)
    return got


def postings_of_events(
    conn: psycopg.Connection, source_ids: list[tuple[str, str]]
) -> dict[Any, int]:
    rows = conn.execute(
        "SELECT d.event_source, d.event_id, count(p.*) FROM decisions d"
        " LEFT JOIN postings p USING (decision_id)"
        " WHERE (d.event_source, d.event_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " GROUP BY 1, 2",
        ([s for s, _ in source_ids], [i for _, i in source_ids]),
    ).fetchall()
    return {(s, i): int(n) for s, i, n in rows}


def books_balanced(conn: psycopg.Connection) -> bool:
    totals = views.totals(conn)
    return totals["personal"] == totals["enterprise"] == totals["government"]


def scan(
    settings: Settings,
    names: list[str],
    until: Callable[[], bool] = lambda: True,
    timeout: float = 60,
) -> Iterator[Any]:
    """Records of these topics from the start; drained again until `until()` or the timeout."""
    consumer = KafkaConsumer(
        *names,
        **settings.kafka_client_config(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            yield from consumer
            if until() or time.monotonic() >= deadline:
                return
    finally:
        consumer.close()


def trace(settings: Settings, id_prefix: str) -> dict[str, int]:
    """How many events with this id prefix each pipeline topic holds (for failure messages)."""
    extract: dict[str, Callable[[dict[str, Any]], object]] = {
        "partner": lambda d: d.get("id"),
        t.VALIDATED: lambda d: d["event"]["id"],
        t.CLAIMS: lambda d: d["event"]["id"],
        t.DECISIONS: lambda d: d["claim"]["event"]["id"],
    }
    counts = {}
    for name, get in extract.items():
        names = [t.partner_topic(p) for p in PARTNERS] if name == "partner" else [name]
        seen = set()
        for record in scan(settings, names):
            try:
                event_id = get(json.loads(record.value))
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(event_id, str) and event_id.startswith(id_prefix):
                seen.add(event_id)
        counts[name] = len(seen)
    return counts


def latest_kinds(conn: psycopg.Connection, id_prefix: str) -> dict[str, int]:
    """How many of these events stand as credited, duplicate, ... now."""
    rows = conn.execute(
        "SELECT kind, count(*) FROM ("
        "  SELECT DISTINCT ON (event_source, event_id) kind FROM decisions"
        "  WHERE event_id LIKE %s ORDER BY event_source, event_id, recorded_at DESC, sequence DESC"
        ") latest GROUP BY kind",
        (id_prefix + "%",),
    ).fetchall()
    return {str(k): int(n) for k, n in rows}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `carbonledger ARGS...` as an operator would, in a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def bearer(
    role: Role = Role.AUDITOR,
    subject: str | None = None,
    partner: str | None = None,
    region: str | None = None,
) -> dict[str, str]:
    """An Authorization header with a development token of the test stack's key
    (the auditor's by default: these tests check the books, not who may read them)."""
    grant = Grant(role, subject=subject, partner=partner, region=region)
    token = mint_development_token(TokenSettings(), grant)
    return {"Authorization": f"Bearer {token}"}


def read_api(url: str, **options: Any) -> httpx.Response:
    """GET from the ledger API as an auditor."""
    return httpx.get(url, headers=bearer(), **options)


def publish_killing(
    settings: Settings,
    running_stack: stack.Processes,
    records: list[tuple[str, bytes]],
    *,
    chunk: int,
    after: float,
    stage: str = "dedupe",
) -> None:
    """Publish the records in chunks while the stage's worker is SIGKILLed `after`
    seconds in and started again; returns once it is ready again."""

    def kill_once() -> None:
        time.sleep(after)
        running_stack.kill(stage)
        running_stack.start(stage)

    killer = threading.Thread(target=kill_once)
    killer.start()
    try:
        for i in range(0, len(records), chunk):
            publish(settings, records[i : i + chunk])
            time.sleep(0.3)
    finally:
        killer.join()
    running_stack.wait_ready(stage)
