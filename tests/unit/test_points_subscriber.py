"""The example points subscriber (examples/points_subscriber.py): its rules and its
SQLite store, with postings made here (no Kafka)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kafka import TopicPartition

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.records import LedgerPosting, SubjectKind
from carbonledger.services.ledger.domain.chain import entry_hash

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "points_subscriber.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("points_subscriber", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


ps = _load()

# 2026-10-31 12:00 CST; 15:30Z and 16:30Z are 23:30 and 00:30 CST, a day apart.
NOON = datetime(2026, 10, 31, 4, 0, tzinfo=UTC)
DAY = date(2026, 10, 31)
KG = 1_000_000


@dataclass
class Account:
    """Makes an account's postings as the ledger would: chained, with balances."""

    account: str = "person-1"
    book: str = "personal"
    index: int = 0
    balance: int = 0
    head: str = "0" * 64
    events: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**6)))

    def post(
        self, amount_mg: int, when: datetime = NOON, event: str | None = None
    ) -> LedgerPosting:
        self.index += 1
        self.balance += amount_mg
        n = f"{self.book}:{self.account}:{self.index}"
        draft = LedgerPosting.model_validate(
            {
                "posting_id": uuid.uuid5(uuid.NAMESPACE_URL, f"posting {n}"),
                "decision_id": uuid.uuid5(uuid.NAMESPACE_URL, f"decision {n}"),
                "decision_kind": "credit" if amount_mg > 0 else "reverse",
                "claim_id": uuid.uuid5(uuid.NAMESPACE_URL, f"claim {n}"),
                "event": {"source": "shenzhen-metro", "id": event or f"e{next(self.events)}"},
                "book": self.book,
                "account": self.account,
                "chain_index": self.index,
                "amount_mg": amount_mg,
                "balance_mg": self.balance,
                "behaviour_type": "travel.metro",
                "region": "440305",
                "partner": "shenzhen-metro",
                "methodology": {"id": "shenzhen-public-transport", "version": "1"},
                "behaviour_time": when,
                "prev_hash": self.head,
                "hash": "",
            }
        )
        posting: LedgerPosting = draft.model_copy(update={"hash": ps.chain_hash(draft)})
        self.head = posting.hash
        return posting


def rules(rate: str = "10", daily: int = 100, monthly: int | None = None) -> Any:
    return ps.Rules(Decimal(rate), daily, monthly)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "points.sqlite3")


def store_of(db: str, rate: str = "10", daily: int = 100, monthly: int | None = None) -> Any:
    return ps.PointsStore.open(db, rules(rate, daily, monthly))


def dump(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows: the store's whole state."""
    names = [r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return {n: sorted(store.conn.execute(f"SELECT * FROM {n}").fetchall()) for n in names}


# --- The rules -------------------------------------------------------------------


def test_conversion_is_exact_where_floats_are_not() -> None:
    assert math.floor(100 * KG * 4.35 / 1e6) == 434  # what a float gives
    assert ps.points_for_mg(100 * KG, Decimal("4.35")) == 435
    assert ps.points_for_mg(10 * KG, Decimal("0.1")) == 1
    assert ps.points_for_mg(10 * KG - 1, Decimal("0.1")) == 0
    assert ps.points_for_mg(1_234_567, Decimal(10)) == 12
    assert ps.points_for_mg(-5 * KG, Decimal(10)) == 0
    assert ps.points_for_mg(5 * KG, Decimal(0)) == 0


def test_rules_refuse_negative_or_infinite_rates() -> None:
    for bad in ("-1", "Infinity", "NaN"):
        with pytest.raises(ValueError):
            rules(bad)
    with pytest.raises(ValueError):
        rules(daily=-1)


def test_days_are_china_standard_time_days() -> None:
    assert ps.cst_day(datetime(2026, 10, 31, 15, 30, tzinfo=UTC)) == date(2026, 10, 31)
    assert ps.cst_day(datetime(2026, 10, 31, 16, 30, tzinfo=UTC)) == date(2026, 11, 1)
    assert ps.month_bounds(date(2028, 2, 10)) == (date(2028, 2, 1), date(2028, 2, 29))
    assert ps.month_bounds(date(2026, 12, 31)) == (date(2026, 12, 1), date(2026, 12, 31))


# --- The store: points -------------------------------------------------------------


def test_points_are_rounded_on_the_days_net_total_not_per_posting(db: str) -> None:
    store, person = store_of(db, rate="1"), Account()
    store.apply([person.post(600_000), person.post(600_000)], "points", {0: 2})
    assert store.day_of(person.account, DAY) == (1_200_000, 1)  # 0 + 0 if per posting
    assert store.points_of(person.account) == 1


def test_a_credit_and_its_reversal_net_to_zero(db: str) -> None:
    store, person = store_of(db, rate="1"), Account()
    store.apply([person.post(1_500_000, event="a"), person.post(1_500_000)], "points", {0: 2})
    assert store.points_of(person.account) == 3
    store.apply([person.post(-1_500_000, event="a")], "points", {0: 3})
    assert store.points_of(person.account) == 1  # floor(1.5): not 3 - 1 or 3 - 2
    store.apply([person.post(-1_500_000, event="e2")], "points", {0: 4})
    assert store.points_of(person.account) == 0
    assert store.day_of(person.account, DAY) == (0, 0)


def test_a_reversal_counts_in_its_credits_day(db: str) -> None:
    store, person = store_of(db, daily=100), Account()
    credit = person.post(3 * KG, event="a")
    reverse = person.post(-3 * KG, when=NOON + timedelta(days=1), event="a")
    store.apply([credit, reverse], "points", {0: 2})
    assert store.day_of(person.account, DAY) == (0, 0)
    assert store.day_of(person.account, DAY + timedelta(days=1)) == (0, 0)
    assert store.points_of(person.account) == 0


def test_the_daily_cap_limits_points_per_china_standard_time_day(db: str) -> None:
    store, person = store_of(db, rate="10", daily=100), Account()
    late = datetime(2026, 10, 31, 15, 30, tzinfo=UTC)  # 23:30 CST on the 31st
    after_midnight = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 00:30 CST on the 1st
    postings = [person.post(12 * KG, when=late), person.post(12 * KG, when=after_midnight)]
    store.apply(postings, "points", {0: 2})
    assert store.day_of(person.account, DAY) == (12 * KG, 100)  # the ledger amount is kept
    assert store.points_of(person.account) == 200
    store.apply([person.post(-3 * KG, when=late, event="e1")], "points", {0: 3})
    assert store.day_of(person.account, DAY) == (9 * KG, 90)
    assert store.points_of(person.account) == 190


def test_the_monthly_cap_limits_a_months_days(db: str) -> None:
    store, person = store_of(db, rate="10", daily=100, monthly=150), Account()
    days = [NOON - timedelta(days=n) for n in range(3)]  # Oct 29 to 31
    store.apply([person.post(12 * KG, when=t) for t in days], "points", {0: 3})
    assert store.points_of(person.account) == 150
    store.apply([person.post(-12 * KG, when=days[0], event="e1")], "points", {0: 4})
    assert store.points_of(person.account) == 150  # 200 of days, still over the cap
    store.apply([person.post(-12 * KG, when=days[1], event="e2")], "points", {0: 5})
    assert store.points_of(person.account) == 100
    store.apply([person.post(20 * KG, when=NOON + timedelta(days=1))], "points", {0: 6})
    assert store.points_of(person.account) == 200  # November has a cap of its own


def test_other_books_earn_nothing_but_are_seen(db: str) -> None:
    store = store_of(db)
    enterprise = Account(account="shenzhen-metro", book="enterprise")
    government = Account(account="440305", book="government")
    batch = [enterprise.post(5 * KG), government.post(5 * KG)]
    result = store.apply(batch, "points", {0: 2})
    assert (result.applied, result.other_books, result.points) == (2, 2, 0)
    assert store.summary() == {
        "people": 0,
        "points_total": 0,
        "postings_seen": 2,
        "duplicates_ignored": 0,
        "skipped_other_books": 2,
        "chain_warnings": 0,
    }
    assert store.apply(batch, "points", {0: 2}).duplicates == 2


# --- The store: exactly once in effect --------------------------------------------


def test_the_same_batch_applied_twice_changes_nothing_but_the_duplicate_count(db: str) -> None:
    store, person = store_of(db), Account()
    batch = [person.post(3 * KG), person.post(4 * KG), person.post(-3 * KG, event="e1")]
    store.apply(batch, "points", {3: 17})
    once = dump(store)
    result = store.apply(batch, "points", {3: 17})
    assert (result.applied, result.duplicates, result.points) == (0, 3, 0)
    twice = dump(store)
    assert twice.pop("counters") != once.pop("counters")
    assert twice == once
    assert store.summary()["duplicates_ignored"] == 3
    assert store.points_of(person.account) == 40
    assert store.offsets("points") == {3: 17}


def test_a_posting_repeated_within_a_batch_counts_once(db: str) -> None:
    store, person = store_of(db), Account()
    posting = person.post(3 * KG)
    result = store.apply([posting, posting], "points", {0: 2})
    assert (result.applied, result.duplicates) == (1, 1)
    assert store.points_of(person.account) == 30


def _batch() -> list[LedgerPosting]:
    a, b = Account("person-a"), Account("person-b")
    return [a.post(3 * KG), b.post(2 * KG), a.post(12 * KG), b.post(-2 * KG, event="e1")]


def test_a_batch_that_crashes_before_commit_leaves_no_trace_and_retries_cleanly(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = store_of(str(tmp_path / "reference.sqlite3"))
    reference.apply(_batch(), "points", {0: 4})

    store = store_of(db)
    empty = dump(store)
    calls = {"n": 0}
    real = ps.PointsStore._add_to_day

    def crash_on_third(self: Any, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed mid-batch")
        real(self, *args)

    monkeypatch.setattr(ps.PointsStore, "_add_to_day", crash_on_third)
    with pytest.raises(RuntimeError):
        store.apply(_batch(), "points", {0: 4})
    assert dump(store) == empty

    def crash_at_offsets(*args: Any) -> None:
        raise RuntimeError("killed before commit")

    monkeypatch.undo()
    monkeypatch.setattr(store, "_save_offsets", crash_at_offsets)
    with pytest.raises(RuntimeError):
        store.apply(_batch(), "points", {0: 4})
    assert dump(store) == empty

    monkeypatch.undo()
    store.apply(_batch(), "points", {0: 4})
    assert dump(store) == dump(reference)
    assert store.points_of("person-a") == 100 and store.points_of("person-b") == 0


def test_a_restart_reads_the_state_and_offsets_back(db: str) -> None:
    store, person = store_of(db), Account()
    store.apply([person.post(3 * KG)], "points", {0: 1, 5: 9})
    store.close()
    again = store_of(db)
    assert again.points_of(person.account) == 30
    assert ps.read_offsets(db, "points", ps.TOPIC) == {0: 1, 5: 9}
    assert ps.read_offsets(db, "points-other", ps.TOPIC) == {}


def test_a_file_made_under_other_rules_is_refused(db: str) -> None:
    store_of(db, rate="10").close()
    store_of(db, rate="10.0").close()  # the same rate
    with pytest.raises(ps.RulesChanged):
        store_of(db, rate="5")
    with pytest.raises(ps.RulesChanged):
        store_of(db, rate="10", monthly=1000)


# --- The chain check ---------------------------------------------------------------


def test_the_chain_hash_is_the_ledgers() -> None:
    for posting in (Account().post(3 * KG), Account().post(-7, when=NOON.astimezone())):
        p = posting.model_dump(mode="python", by_alias=False)
        entry = {
            **p,
            "book": posting.book.value,
            "methodology_id": posting.methodology.id if posting.methodology else None,
            "methodology_version": posting.methodology.version if posting.methodology else None,
        }
        assert ps.chain_hash(posting) == entry_hash(posting.prev_hash, entry)


def test_the_chain_check_reports_tampering_gaps_and_mid_chain_starts(db: str) -> None:
    person = Account()
    first, second, third = (person.post(n * KG) for n in (1, 2, 3))
    assert ps.chain_problems(first, None) == []
    head = ps.ChainHead(first.chain_index, first.balance_mg, first.hash)
    assert ps.chain_problems(second, head) == []
    tampered = second.model_copy(update={"amount_mg": 20 * KG})
    assert any("hash" in p for p in ps.chain_problems(tampered, head))
    assert any("missing" in p for p in ps.chain_problems(third, head))
    assert any("not 1" in p for p in ps.chain_problems(third, None))

    store = store_of(db)
    result = store.apply([first, third], "points", {0: 2})
    assert result.chain_warnings == 1  # the gap: both still count
    assert store.points_of(person.account) == 40


# --- Kafka, faked --------------------------------------------------------------------


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass
class FakeConsumer:
    polls: list[dict[Any, list[Record]]]
    seeks: dict[int, int] = field(default_factory=dict)
    from_beginning: list[int] = field(default_factory=list)
    commits: int = 0

    def poll(self, timeout_ms: int) -> dict[Any, list[Record]]:
        return self.polls.pop(0) if self.polls else {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp.partition] = offset

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.from_beginning.extend(tp.partition for tp in tps)

    def commit_async(self) -> None:
        self.commits += 1


def _records(partition: int, start: int, postings: list[LedgerPosting]) -> list[Record]:
    return [Record(ps.TOPIC, partition, start + n, p.to_bytes()) for n, p in enumerate(postings)]


def test_the_loop_applies_batches_with_their_offsets_and_ignores_redeliveries(db: str) -> None:
    store, a, b = store_of(db), Account("person-a"), Account("person-b")
    credits = [a.post(3 * KG), a.post(4 * KG)]
    first, second = _records(0, 0, credits), _records(1, 10, [b.post(5 * KG)])
    redelivered = _records(0, 2, credits[:1])  # published again after a publisher crash
    tp0, tp1 = TopicPartition(ps.TOPIC, 0), TopicPartition(ps.TOPIC, 1)
    consumer = FakeConsumer([{tp0: first, tp1: second}, {tp0: redelivered}])
    ps.consume(consumer, store, "points", threading.Event(), until_idle=0, poll_ms=0)
    assert store.offsets("points") == {0: 3, 1: 11}
    assert consumer.commits == 2
    assert store.summary() == {
        "people": 2,
        "points_total": 120,
        "postings_seen": 3,
        "duplicates_ignored": 1,
        "skipped_other_books": 0,
        "chain_warnings": 0,
    }


def test_an_undecodable_record_stops_the_loop_before_its_batch_is_applied(db: str) -> None:
    store, person = store_of(db), Account()
    batch = [*_records(0, 0, [person.post(3 * KG)]), Record(ps.TOPIC, 0, 1, b'{"schema": 2}')]
    consumer = FakeConsumer([{TopicPartition(ps.TOPIC, 0): batch}])
    with pytest.raises(ps.Undecodable, match=r"ledger.postings\[0\]@1"):
        ps.consume(consumer, store, "points", threading.Event(), until_idle=0, poll_ms=0)
    assert store.offsets("points") == {} and store.summary()["postings_seen"] == 0


def test_a_stop_request_ends_the_loop(db: str) -> None:
    stop = threading.Event()
    stop.set()
    consumer = FakeConsumer([{TopicPartition(ps.TOPIC, 0): _records(0, 0, [Account().post(1)])}])
    ps.consume(consumer, store_of(db), "points", stop)
    assert consumer.polls  # never polled


def test_assignment_seeks_to_stored_offsets_and_new_partitions_to_the_beginning(
    db: str,
) -> None:
    store_of(db).apply([], "points", {0: 42})
    consumer = FakeConsumer([])
    listener = ps.SeekToStoredOffsets(consumer, lambda: ps.read_offsets(db, "points", ps.TOPIC))
    listener.on_partitions_assigned({TopicPartition(ps.TOPIC, 0), TopicPartition(ps.TOPIC, 1)})
    assert consumer.seeks == {0: 42}
    assert consumer.from_beginning == [1]


# --- Configuration -------------------------------------------------------------------


def test_the_secret_comes_from_the_environment_or_the_dev_default() -> None:
    env = "CARBON_KAFKA_SECRET_INCENTIVE_POINTS"
    assert ps.secret_for("incentive-points", {env: "s3cret"}) == "s3cret"
    assert ps.secret_for("incentive-points", {}) == "incentive-points-dev-only"
    with pytest.raises(SystemExit):
        ps.secret_for("incentive-points", {"CARBON_ENVIRONMENT": "production"})


def test_the_consumer_is_configured_as_the_brief_says() -> None:
    args = ps.parse_args(["--points-per-kg", "12.5", "--monthly-cap", "900"])
    assert (args.points_per_kg, args.daily_cap, args.monthly_cap) == (Decimal("12.5"), 100, 900)
    config = ps.consumer_config(args, {})
    assert config["bootstrap_servers"] == "127.0.0.1:19092"
    assert config["group_id"] == "points"
    assert config["sasl_plain_username"] == "incentive-points"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["security_protocol"] == "SASL_PLAINTEXT"
    assert config["enable_auto_commit"] is False
    assert config["auto_offset_reset"] == "earliest"
    with pytest.raises(SystemExit):
        ps.parse_args(["--points-per-kg", "-1"])


def test_sqlite_is_recent_enough_for_upserts() -> None:
    assert sqlite3.sqlite_version_info >= (3, 24, 0)


# --- docs/subscribers.md --------------------------------------------------------------


def _blocks(language: str) -> list[str]:
    text = (EXAMPLE.parents[1] / "docs" / "subscribers.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_the_documented_example_posting_and_hash_recipe_are_right() -> None:
    value = _blocks("json")[0]
    posting = LedgerPosting.model_validate_json(value)
    assert ps.chain_hash(posting) == posting.hash
    doc = (EXAMPLE.parents[1] / "docs" / "subscribers.md").read_text(encoding="utf-8")
    assert f"    {ps.canonical(posting)}\n" in doc
    recipe: dict[str, Any] = {}
    exec(_blocks("python")[0], recipe)  # the doc's stand-alone recipe
    assert recipe["chain_hash"](json.loads(value)) == posting.hash


def test_the_documented_worked_example(db: str) -> None:
    store, person = store_of(db, rate="10", daily=100), Account("u-7f3a9c")
    cst = CST
    metro = person.post(467_000, datetime(2026, 10, 31, 9, 30, tzinfo=cst), "metro")
    bike = person.post(350_000, datetime(2026, 10, 31, 18, 10, tzinfo=cst), "bike")
    ev = person.post(12_500_000, datetime(2026, 11, 1, 0, 30, tzinfo=cst), "ev")
    reverse = person.post(-467_000, datetime(2026, 10, 31, 9, 30, tzinfo=cst), "metro")
    totals = []
    for n, posting in enumerate([metro, bike, metro, ev, reverse]):
        store.apply([posting], "points", {0: n + 1})
        totals.append(store.points_of(person.account))
    assert totals == [4, 8, 8, 108, 103]
    assert store.day_of(person.account, DAY) == (350_000, 3)
    assert store.summary() == json.loads(_blocks("json")[1])


def test_the_sdk_record_reads_exactly_what_the_platform_publishes() -> None:
    """The subscriber decodes with the partner SDK's LedgerPosting: the same fields, the
    same values, and the chain hash it computes from them is the ledger's."""
    published = Account(account="sdk-reader").post(3 * KG, event="sdk-1")
    read = ps.LedgerPosting.model_validate_json(published.to_bytes())
    assert read.model_dump(mode="json") == published.model_dump(mode="json")
    assert set(ps.LedgerPosting.model_fields) == set(LedgerPosting.model_fields)
    assert ps.chain_hash(read) == published.hash
    unit = published.model_copy(update={"subject_kind": SubjectKind.UNIT})
    assert ps.LedgerPosting.model_validate_json(unit.to_bytes()).subject_kind == "unit"
