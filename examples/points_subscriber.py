#!/usr/bin/env python3
"""Example incentive system: converts the ledger's personal postings into points.

Reads `ledger.postings` (kafka-python) as principal `incentive-points` and keeps
its state in one SQLite file. See docs/subscribers.md for the topic contract.

    CARBON_KAFKA_SECRET_INCENTIVE_POINTS=... .venv/bin/python examples/points_subscriber.py \
        --bootstrap 127.0.0.1:19092 --points-per-kg 10 --daily-cap 100

Points rules (plain functions below, copy them freely):
  * only the personal book earns points (one person = one personal account);
  * points of a person-day = floor(net mg of that day x rate / 1e6), capped by
    --daily-cap (and 0 when the day's net is negative); a month's points are the
    sum of its days, capped by --monthly-cap; days are China Standard Time days
    of the behaviour time;
  * a reversal counts in the day its event first counted in, so a credit and its
    reversal always net to zero, whatever their order in the batch.

State and exactly-once effect:
  * each polled batch is applied in ONE SQLite transaction together with the
    offsets it reached; on assignment the consumer seeks to those offsets, so a
    crash repeats at most a batch that never committed;
  * every posting id is recorded; a redelivered posting (same id, later offset:
    the ledger's delivery is at least once) is counted as a duplicate and
    otherwise ignored.

One process per SQLite file: consumers of one group split the partitions, so
two processes in one group with two files would each see part of every total.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import FrameType
from typing import Any

# The partner SDK (sdk/python) alone: this subscriber needs nothing of the platform.
from carbonledger_partner.records import CST, LedgerPosting
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from pydantic import ValidationError

log = logging.getLogger("points")

TOPIC = "ledger.postings"
PERSONAL = "personal"
MG_PER_KG = 1_000_000
GENESIS = "0" * 64  # the prev_hash of an account's first posting
DEFAULT_USERNAME = "incentive-points"


# --- Points rules: pure functions ------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """How mg become points. Caps are in points: the ledger's amounts stay untouched."""

    points_per_kg: Decimal
    daily_cap: int
    monthly_cap: int | None = None

    def __post_init__(self) -> None:
        if not self.points_per_kg.is_finite() or self.points_per_kg < 0:
            raise ValueError(f"points per kg must be a finite number >= 0: {self.points_per_kg}")
        if self.daily_cap < 0 or (self.monthly_cap is not None and self.monthly_cap < 0):
            raise ValueError("caps must be >= 0")


def points_for_mg(mg: int, points_per_kg: Decimal) -> int:
    """floor(mg x rate / 1e6) in exact integer arithmetic (a float would turn
    100 kg at 4.35 points/kg into 434.99999999999994, i.e. 434 points).

    A negative net earns nothing rather than taking points away: it only happens
    when the credit it reverses was never seen (it is past the topic's retention)."""
    if mg <= 0:
        return 0
    numerator, denominator = points_per_kg.as_integer_ratio()
    return (mg * numerator) // (denominator * MG_PER_KG)


def day_points(day_mg: int, rules: Rules) -> int:
    """A person-day's points, from the day's NET mg rather than posting by posting:
    rounding each posting would let a credit (+1.5 -> 1) and its reversal
    (-1.5 -> -2) net to -1, and would drop the fractions of many small postings."""
    return min(points_for_mg(day_mg, rules.points_per_kg), rules.daily_cap)


def month_points(days: Iterable[int], rules: Rules) -> int:
    """A person-month's points: its days' points, capped by the monthly cap."""
    total = sum(days)
    return total if rules.monthly_cap is None else min(total, rules.monthly_cap)


def cst_day(moment: datetime) -> date:
    """The China Standard Time day of a behaviour (the caps' day, as in the ledger)."""
    return moment.astimezone(CST).date()


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


# --- Chain check: pure functions (docs/subscribers.md, "Checking a chain") ---------


def canonical(p: LedgerPosting) -> str:
    """The text the ledger hashes: 14 fields joined by '|', integers in decimal,
    absent methodology as empty fields, behaviour time in UTC with microseconds."""
    fields = (
        str(p.posting_id),
        str(p.decision_id),
        str(p.claim_id),
        p.book.value,
        p.account,
        str(p.chain_index),
        str(p.amount_mg),
        str(p.balance_mg),
        p.behaviour_type,
        p.region,
        p.partner,
        p.methodology.id if p.methodology else "",
        p.methodology.version if p.methodology else "",
        p.behaviour_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    return "|".join(fields)


def chain_hash(p: LedgerPosting) -> str:
    return hashlib.sha256(f"{p.prev_hash}\n{canonical(p)}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainHead:
    """The last posting of an account this subscriber applied."""

    index: int
    balance_mg: int
    hash: str


def chain_problems(p: LedgerPosting, head: ChainHead | None) -> list[str]:
    """What does not add up between a posting and the account's previous one.

    Only first sightings are checked (a redelivery repeats an old index). With no
    head, the subscriber starts here: at index 1 from the genesis, or mid-chain
    when earlier postings are past the topic's retention."""
    problems = []
    if chain_hash(p) != p.hash:
        problems.append("hash does not match the posting's content")
    expected = head or ChainHead(0, 0, GENESIS)
    if p.chain_index != expected.index + 1:
        if head is None:
            problems.append(f"first posting seen is chain index {p.chain_index}, not 1")
        else:
            problems.append(f"chain index {p.chain_index} after {head.index}: postings missing")
        return problems  # the link and balance can only be checked between neighbours
    if p.prev_hash != expected.hash:
        problems.append("previous hash is not the hash of the posting before it")
    if p.balance_mg != expected.balance_mg + p.amount_mg:
        problems.append(f"balance {p.balance_mg}, expected {expected.balance_mg + p.amount_mg}")
    return problems


# --- State: one SQLite file -------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    points_per_kg TEXT NOT NULL, daily_cap INTEGER NOT NULL, monthly_cap INTEGER);
CREATE TABLE IF NOT EXISTS seen_postings (
    posting_id TEXT PRIMARY KEY, book TEXT NOT NULL, account TEXT NOT NULL,
    chain_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS event_days (
    person TEXT NOT NULL, event_source TEXT NOT NULL, event_id TEXT NOT NULL,
    day TEXT NOT NULL, PRIMARY KEY (person, event_source, event_id));
CREATE TABLE IF NOT EXISTS person_days (
    person TEXT NOT NULL, day TEXT NOT NULL, mg INTEGER NOT NULL, points INTEGER NOT NULL,
    PRIMARY KEY (person, day));
CREATE TABLE IF NOT EXISTS person_points (
    person TEXT PRIMARY KEY, points INTEGER NOT NULL, mg INTEGER NOT NULL,
    chain_index INTEGER NOT NULL, balance_mg INTEGER NOT NULL, chain_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL, PRIMARY KEY (group_id, topic, partition));
"""

_SAVE_OFFSET = """
INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?)
ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset
"""
_ADD_COUNTER = """
INSERT INTO counters (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = value + excluded.value
"""


class RulesChanged(ValueError):
    """The file's points were made under other rules; mixing them would be meaningless."""


@dataclass
class BatchResult:
    applied: int = 0  # postings seen for the first time
    duplicates: int = 0  # redeliveries of postings already applied
    other_books: int = 0  # enterprise and government postings: seen, no points
    chain_warnings: int = 0
    points: int = 0  # net points awarded by the batch

    def counters(self) -> dict[str, int]:
        return {
            "duplicates_ignored": self.duplicates,
            "skipped_other_books": self.other_books,
            "chain_warnings": self.chain_warnings,
        }


def read_offsets(path: str, group: str, topic: str) -> dict[int, int]:
    """The stored next offset of each partition, read over a connection of its own:
    kafka-python calls the rebalance listener from its IO thread, and an sqlite3
    connection may only be used by the thread that opened it."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?",
            (group, topic),
        ).fetchall()
    return {int(partition): int(offset) for partition, offset in rows}


class PointsStore:
    """Points, the postings they came from, and the offsets, in one SQLite file."""

    def __init__(self, conn: sqlite3.Connection, rules: Rules) -> None:
        self.conn, self.rules = conn, rules
        self.conn.executescript(SCHEMA)
        self._check_rules()

    @classmethod
    def open(cls, path: str, rules: Rules) -> PointsStore:
        # isolation_level=None: no implicit transactions; apply() opens its own.
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")  # the listener reads while we are idle
        conn.execute("PRAGMA synchronous = FULL")  # a committed batch survives power loss
        return cls(conn, rules)

    def close(self) -> None:
        self.conn.close()

    def _check_rules(self) -> None:
        row = self.conn.execute(
            "SELECT points_per_kg, daily_cap, monthly_cap FROM rules"
        ).fetchone()
        if row is None:
            self.conn.execute(
                "INSERT INTO rules VALUES (1, ?, ?, ?)",
                (str(self.rules.points_per_kg), self.rules.daily_cap, self.rules.monthly_cap),
            )
        elif Rules(Decimal(row[0]), row[1], row[2]) != self.rules:
            raise RulesChanged(
                f"this file holds points made at {row[0]} points/kg, daily cap {row[1]},"
                f" monthly cap {row[2]}; use another --db for other rules"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def apply(
        self, postings: Sequence[LedgerPosting], group: str, offsets: Mapping[int, int]
    ) -> BatchResult:
        """Apply a batch and record the offsets after it, atomically."""
        result = BatchResult()
        with self._transaction() as cur:
            for posting in postings:
                self._apply_one(cur, posting, result)
            cur.executemany(_ADD_COUNTER, result.counters().items())
            self._save_offsets(cur, group, offsets)
        return result

    def _save_offsets(self, cur: sqlite3.Cursor, group: str, offsets: Mapping[int, int]) -> None:
        cur.executemany(_SAVE_OFFSET, [(group, TOPIC, p, o) for p, o in offsets.items()])

    def _apply_one(self, cur: sqlite3.Cursor, p: LedgerPosting, result: BatchResult) -> None:
        cur.execute(
            "INSERT OR IGNORE INTO seen_postings VALUES (?, ?, ?, ?)",
            (str(p.posting_id), p.book.value, p.account, p.chain_index),
        )
        if cur.rowcount == 0:
            result.duplicates += 1
            return
        result.applied += 1
        if p.book.value != PERSONAL:
            result.other_books += 1
            return
        person = p.account
        head = self._head(cur, person)
        for problem in chain_problems(p, head):
            log.warning("personal:%s posting %s: %s", person, p.posting_id, problem)
            result.chain_warnings += 1
        day = self._event_day(cur, person, p)
        before = self._month_points(cur, person, day)
        self._add_to_day(cur, person, day, p.amount_mg)
        gained = self._month_points(cur, person, day) - before
        result.points += gained
        cur.execute(
            "INSERT INTO person_points VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (person) DO UPDATE SET points = points + excluded.points,"
            " mg = mg + excluded.mg, chain_index = excluded.chain_index,"
            " balance_mg = excluded.balance_mg, chain_hash = excluded.chain_hash",
            (person, gained, p.amount_mg, p.chain_index, p.balance_mg, p.hash),
        )

    def _head(self, cur: sqlite3.Cursor, person: str) -> ChainHead | None:
        row = cur.execute(
            "SELECT chain_index, balance_mg, chain_hash FROM person_points WHERE person = ?",
            (person,),
        ).fetchone()
        return ChainHead(int(row[0]), int(row[1]), str(row[2])) if row else None

    def _event_day(self, cur: sqlite3.Cursor, person: str, p: LedgerPosting) -> date:
        """The day an event's postings count in: that of its first posting. A reversal
        then always meets its credit in one day (and one cap), even were its
        behaviour time to differ."""
        cur.execute(
            "INSERT OR IGNORE INTO event_days VALUES (?, ?, ?, ?)",
            (person, p.event.source, p.event.id, cst_day(p.behaviour_time).isoformat()),
        )
        row = cur.execute(
            "SELECT day FROM event_days WHERE person = ? AND event_source = ? AND event_id = ?",
            (person, p.event.source, p.event.id),
        ).fetchone()
        return date.fromisoformat(row[0])

    def _add_to_day(self, cur: sqlite3.Cursor, person: str, day: date, amount_mg: int) -> None:
        row = cur.execute(
            "SELECT mg FROM person_days WHERE person = ? AND day = ?", (person, day.isoformat())
        ).fetchone()
        mg = (int(row[0]) if row else 0) + amount_mg
        cur.execute(
            "INSERT OR REPLACE INTO person_days VALUES (?, ?, ?, ?)",
            (person, day.isoformat(), mg, day_points(mg, self.rules)),
        )

    def _month_points(self, cur: sqlite3.Cursor, person: str, day: date) -> int:
        first, last = month_bounds(day)
        rows = cur.execute(
            "SELECT points FROM person_days WHERE person = ? AND day BETWEEN ? AND ?",
            (person, first.isoformat(), last.isoformat()),
        ).fetchall()
        return month_points((int(r[0]) for r in rows), self.rules)

    # Reads, for the summary and for tests.

    def points_of(self, person: str) -> int:
        row = self.conn.execute(
            "SELECT points FROM person_points WHERE person = ?", (person,)
        ).fetchone()
        return int(row[0]) if row else 0

    def day_of(self, person: str, day: date) -> tuple[int, int]:
        """A person-day's net mg and points."""
        row = self.conn.execute(
            "SELECT mg, points FROM person_days WHERE person = ? AND day = ?",
            (person, day.isoformat()),
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def offsets(self, group: str) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?",
            (group, TOPIC),
        ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def summary(self) -> dict[str, int]:
        people, points = self.conn.execute(
            "SELECT count(*), coalesce(sum(points), 0) FROM person_points"
        ).fetchone()
        (seen,) = self.conn.execute("SELECT count(*) FROM seen_postings").fetchone()
        counters = dict(self.conn.execute("SELECT name, value FROM counters").fetchall())
        return {
            "people": int(people),
            "points_total": int(points),
            "postings_seen": int(seen),
            "duplicates_ignored": int(counters.get("duplicates_ignored", 0)),
            "skipped_other_books": int(counters.get("skipped_other_books", 0)),
            "chain_warnings": int(counters.get("chain_warnings", 0)),
        }


# --- Kafka ------------------------------------------------------------------------


class Undecodable(ValueError):
    """A record that is not a LedgerPosting v1. The subscriber stops rather than skip
    it: a skipped posting would be points silently lost (a new schema, say)."""


class SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, resume each partition where SQLite says it was applied up to,
    and from the beginning where SQLite has nothing (a new file): the group's offsets
    in Kafka are only a copy for lag monitoring and must not skip postings."""

    def __init__(self, consumer: Any, stored: Callable[[], Mapping[int, int]]) -> None:
        self.consumer, self.stored = consumer, stored

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        pass  # nothing to save: each batch is committed before the next poll

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        stored = self.stored()
        fresh = []
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                fresh.append(tp)
        if fresh:
            self.consumer.seek_to_beginning(*fresh)
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))


def decode(records: Iterable[Any]) -> list[LedgerPosting]:
    decoded = []
    for record in records:
        try:
            decoded.append(LedgerPosting.model_validate_json(record.value))
        except ValidationError as exc:
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            raise Undecodable(f"{where} is not a LedgerPosting v1: {exc}") from exc
    return decoded


def consume(
    consumer: Any,
    store: PointsStore,
    group: str,
    stop: threading.Event,
    until_idle: float | None = None,
    poll_ms: int = 1000,
) -> None:
    """Poll, apply each batch with its offsets, until stopped (or idle long enough)."""
    last_record = time.monotonic()
    while not stop.is_set():
        polled = consumer.poll(timeout_ms=poll_ms)
        if not polled:
            if until_idle is not None and time.monotonic() - last_record >= until_idle:
                return
            continue
        last_record = time.monotonic()
        postings = decode(r for batch in polled.values() for r in batch)
        offsets = {tp.partition: batch[-1].offset + 1 for tp, batch in polled.items() if batch}
        result = store.apply(postings, group, offsets)
        log.info(
            "applied %d postings (%d duplicates), %+d points",
            result.applied,
            result.duplicates,
            result.points,
        )
        # Kafka's own copy of the offsets, for lag monitoring only: SQLite is the truth.
        consumer.commit_async()


def secret_for(username: str, environ: Mapping[str, str]) -> str:
    """CARBON_KAFKA_SECRET_<USERNAME>; outside production the documented dev secret."""
    name = "CARBON_KAFKA_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", username).upper()
    if environ.get(name):
        return environ[name]
    if environ.get("CARBON_ENVIRONMENT") == "production":
        raise SystemExit(f"{name} must be set in production")
    return f"{username}-dev-only"


def consumer_config(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "bootstrap_servers": args.bootstrap,
        "security_protocol": args.security_protocol,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": args.username,
        "sasl_plain_password": secret_for(args.username, environ),
        "group_id": args.group,
        "client_id": f"{args.username}-{os.getpid()}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": args.batch_max,
    } | ({"ssl_cafile": args.ssl_cafile} if args.security_protocol == "SASL_SSL" else {})


# --- Command line -----------------------------------------------------------------


def _rate(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def _cap(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument(
        "--security-protocol", default="SASL_PLAINTEXT", choices=("SASL_PLAINTEXT", "SASL_SSL")
    )
    parser.add_argument("--ssl-cafile", help="SASL_SSL: the CA of the brokers' certificates")
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--group", default="points", help="a group id starting with 'points'")
    parser.add_argument("--db", default="points.sqlite3", help="the SQLite state file")
    parser.add_argument("--points-per-kg", type=_rate, default=Decimal(10))
    parser.add_argument("--daily-cap", type=_cap, default=100, help="points per person-day")
    parser.add_argument("--monthly-cap", type=_cap, default=None, help="points per person-month")
    parser.add_argument("--batch-max", type=int, default=500, help="records per poll")
    parser.add_argument(
        "--until-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="exit once no record arrived for this long, printing the summary",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # SCRAM never sends the password itself; use --security-protocol SASL_SSL off loopback.
    logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)
    args = parse_args(argv)
    try:
        store = PointsStore.open(
            args.db, Rules(args.points_per_kg, args.daily_cap, args.monthly_cap)
        )
    except RulesChanged as exc:
        log.error("%s", exc)
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the loop ends after the batch in hand is committed

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = 0
    try:
        consumer = KafkaConsumer(**consumer_config(args, os.environ))
        try:
            listener = SeekToStoredOffsets(
                consumer, lambda: read_offsets(args.db, args.group, TOPIC)
            )
            consumer.subscribe([TOPIC], listener=listener)
            consume(consumer, store, args.group, stop, args.until_idle)
        finally:
            consumer.close(autocommit=False)
    except Undecodable as exc:
        log.error("stopping: %s", exc)
        code = 2
    finally:
        print(json.dumps(store.summary(), sort_keys=True))
        store.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
