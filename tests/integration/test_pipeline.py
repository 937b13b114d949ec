"""The pipeline over the real broker and database: replays, malformed input, crashes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest

from carbonledger.contracts import topics
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from tests.integration.helpers import (
    books_balanced,
    city,
    expected,
    latest_kinds,
    postings_of_events,
    scan,
    trace,
    trips,
    wait_for_balances,
)

pytestmark = pytest.mark.integration


def dead_letters(
    settings: Settings, payloads: set[bytes], timeout: float = 60
) -> dict[bytes, dict[str, Any]]:
    """Dead letters on behaviour.rejected whose original bytes are among `payloads`."""
    found: dict[bytes, dict[str, Any]] = {}
    for record in scan(settings, [topics.REJECTED], lambda: len(found) >= len(payloads), timeout):
        letter = json.loads(record.value)
        original = base64.b64decode(letter["payload_b64"])
        if original in payloads:
            found[original] = letter
    return found


def test_replays_count_once_and_malformed_records_are_dead_lettered(
    settings: Settings, db: psycopg.Connection
) -> None:
    records = trips("replay", 40, people=10, seed=1)
    replayed = records[0]
    malformed = b'{"specversion": "1.0", "id": "broken", "source": "shenzhen-metro", '
    spoofed = (
        b'{"specversion":"1.0","id":"spoof-1","source":"navi-maps","type":"travel.metro",'
        b'"time":"2026-10-01T08:00:00+08:00","subject":"' + b"a" * 64 + b'","data":{}}'
    )
    traffic = [
        *records,
        replayed,
        replayed,
        ("shenzhen-metro", malformed),
        ("shenzhen-metro", spoofed),
    ]
    publish(settings, traffic)

    want = dict(expected(settings, records).personal)
    assert wait_for_balances(settings, db, want) == want

    posted = postings_of_events(
        db, [(json.loads(r)["source"], json.loads(r)["id"]) for _, r in records]
    )
    assert len(posted) == len(records)  # nothing lost
    assert set(posted.values()) == {3}  # one posting per book per unique event, replays ignored
    letters = dead_letters(settings, {malformed, spoofed})
    assert letters[malformed]["reason"] == "not_json"
    assert letters[spoofed]["reason"] == "source_mismatch"
    assert letters[spoofed]["origin"]["topic"] == "partner.shenzhen-metro.events"
    assert books_balanced(db)


def test_poison_records_do_not_stop_the_ingest_consumer(
    settings: Settings, db: psycopg.Connection
) -> None:
    poison = [b"\xff\xfe not utf-8", b"{not json", b"{" + b" " * (10 * 1024 * 1024) + b"}"]
    records = trips("poison", 5, people=2, seed=2)
    publish(settings, [("navi-maps", p) for p in poison] + records)
    want = dict(expected(settings, records).personal)
    assert wait_for_balances(settings, db, want) == want
    letters = dead_letters(settings, set(poison))
    assert {letters[p]["reason"] for p in poison} == {"not_utf8", "not_json", "oversized"}


def _kill_repeatedly(
    processes: stack.Processes, name: str, times: int, every: float, stop: threading.Event
) -> list[int]:
    killed = []
    for _ in range(times):
        if stop.wait(every):
            break
        pid = processes.pid(name)
        if pid:
            processes.kill(name)
            killed.append(pid)
        processes.start(name)
    return killed


@pytest.mark.parametrize(
    ("stage", "kills"),
    [
        ("ledger-writer", 3),
        ("dedupe", 1),
        ("quantify", 1),
        ("ingest", 1),
    ],
)
def test_sigkill_mid_stream_loses_nothing_and_doubles_nothing(
    settings: Settings,
    db: psycopg.Connection,
    running_stack: stack.Processes,
    stage: str,
    kills: int,
) -> None:
    records = trips(f"kill-{stage}", 6000, people=300, seed=3)
    want = dict(expected(settings, records).personal)
    done = threading.Event()
    killer_result: list[int] = []
    killer = threading.Thread(
        target=lambda: killer_result.extend(
            _kill_repeatedly(running_stack, stage, kills, 1.5, done)
        )
    )
    killer.start()
    try:
        for i in range(0, len(records), 500):  # a stream, not one burst
            publish(settings, records[i : i + 500])
            time.sleep(0.2)
    finally:
        killer.join()
    running_stack.wait_ready(stage)
    assert len(killer_result) == kills, "the stage was not running when it should have been killed"
    got = wait_for_balances(settings, db, want, timeout=240)
    assert got == want, f"distinct events per topic: {trace(settings, f'kill-{stage}-')}"
    posted = postings_of_events(
        db, [(json.loads(r)["source"], json.loads(r)["id"]) for _, r in records]
    )
    assert len(posted) == len(records) and set(posted.values()) == {3}
    assert books_balanced(db)


def test_status_shows_every_component_up(
    settings: Settings, running_stack: stack.Processes
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "carbonledger.cli.main", "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for component in (
        "kafka",
        "postgres",
        "ingest-0",
        "gateway-0",
        "quantify-0",
        "dedupe-0",
        "ledger-writer-0",
        "ledger-api-0",
    ):
        assert f"{component}: up" in result.stdout


def test_two_workers_per_stage_give_the_same_books(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    # Traffic with cross-partner duplicates, so dedupe's state moves with its partitions.
    records = city("two-workers", trips=2000, people=150, seed=5)
    settled = expected(settings, records)
    want = dict(settled.personal)
    scalable = ("ingest", "quantify", "dedupe", "ledger-writer")
    third = len(records) // 3
    publish(settings, records[:third])
    try:
        for name in scalable:  # joining mid-stream forces a rebalance of every group
            running_stack.start(name, worker=1)
        publish(settings, records[third : 2 * third])
        for name in scalable:
            running_stack.wait_ready(name, worker=1)
        publish(settings, records[2 * third :])
        got = wait_for_balances(settings, db, want, timeout=240)
        assert got == want, f"distinct events per topic: {trace(settings, 'two-workers-')}"
    finally:
        for name in scalable:
            running_stack.stop(name, worker=1)
    assert settled.outcomes["duplicate"] > 100
    assert latest_kinds(db, "two-workers-").get("duplicate", 0) == settled.outcomes["duplicate"]
    assert books_balanced(db)
