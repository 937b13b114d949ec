"""The Dedupe use case over its state port: watermark per partition, the sweep of
expired people, replays, late claims; the stream's state adapter keeps the keys
and encoding a running stage restores; and `settle` equals the stream's use cases."""

from __future__ import annotations

import random
import zlib
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import orjson

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.envelope import source_of
from carbonledger.contracts.groups import dedupe_group
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.records import (
    AccountEvent,
    Decision,
    DecisionKind,
    Engagement,
    ReductionClaim,
    ValidatedBehaviour,
)
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import SAMPLE_FILE
from carbonledger.reference.settle import settle
from carbonledger.runtime.changelog import ChangelogTable
from carbonledger.services.dedupe.adapters.memory import MemoryState
from carbonledger.services.dedupe.adapters.state import ChangelogState, decode_person, encode_person
from carbonledger.services.dedupe.domain.person import PersonState
from carbonledger.services.dedupe.domain.resolve import Why
from carbonledger.services.dedupe.service import Dedupe, StateStore
from carbonledger.services.ingest.service import PartnerRecord, admit_records
from carbonledger.services.ledger.domain.postings import postings_for
from carbonledger.services.quantify.service import quantify_behaviour
from tests.factories import claim

WINDOW = timedelta(days=7)
SOMEONE, ANOTHER = "1" * 64, "2" * 64


class Tallied:
    """A Tally that remembers what it was told."""

    def __init__(self) -> None:
        self.claims: Counter[str] = Counter()
        self.decisions: list[Decision] = []
        self.engagements: list[Engagement] = []
        self.accounts: list[AccountEvent] = []
        self.sizes: list[int] = []
        self.pruned_claims = self.expired_people = 0
        self.marks: dict[int, datetime] = {}

    def claim(self, outcome: str) -> None:
        self.claims[outcome] += 1

    def decision(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def engagement(self, record: Engagement) -> None:
        self.engagements.append(record)

    def account(self, record: AccountEvent) -> None:
        self.accounts.append(record)

    def stored(self, state_bytes: int) -> None:
        self.sizes.append(state_bytes)

    def pruned(self, claims: int) -> None:
        self.pruned_claims += claims

    def expired(self, people: int) -> None:
        self.expired_people += people

    def watermark(self, partition: int, mark: datetime) -> None:
        self.marks[partition] = mark


def stream_dedupe() -> tuple[Dedupe, ChangelogTable, Tallied]:
    table, tally = ChangelogTable("people-changelog", Settings()), Tallied()
    table.begin()  # as the batch loop opens one per batch
    return Dedupe(ChangelogState(table), WINDOW, tally), table, tally


def on_day(event_id: str, day: int, subject: str = SOMEONE) -> ReductionClaim:
    return claim("navi-maps", event_id, 0, 30, rank=20, subject=subject, day=day)


def test_each_partition_keeps_its_own_watermark() -> None:
    dedupe, table, tally = stream_dedupe()
    dedupe.observe(0, on_day("n20", 20))
    old = on_day("n10", 10, subject=ANOTHER)
    fresh = dedupe.observe(1, old)  # partition 1 has seen nothing newer
    assert fresh.new and not fresh.late
    assert tally.marks == {0: on_day("n20", 20).ended_at, 1: old.ended_at}
    state = ChangelogState(table)
    assert state.partition(0).watermark() == on_day("n20", 20).ended_at
    assert state.partition(1).watermark() == old.ended_at


def test_a_claim_older_than_the_window_is_late_and_not_kept() -> None:
    dedupe, table, tally = stream_dedupe()
    dedupe.observe(0, on_day("n20", 20))
    late = dedupe.observe(0, on_day("n10", 10, subject=ANOTHER))
    assert late.late and [d.kind for d in late.decisions] == [DecisionKind.NOT_CREDITED]
    assert late.decisions[0].reason == Why.LATE
    assert ANOTHER.encode() not in table.current().partition(0)
    assert tally.claims == Counter({"new": 1, "late": 1})


def test_a_replay_re_emits_its_first_decisions_after_the_state_is_restored() -> None:
    dedupe, table, _ = stream_dedupe()
    maps = on_day("n1", 3)
    metro = claim("shenzhen-metro", "m1", 0, 30, rank=30, subject=SOMEONE, day=3)
    dedupe.observe(0, maps)
    first = dedupe.observe(0, metro).decisions
    assert {d.kind for d in first} == {
        DecisionKind.REVERSE,
        DecisionKind.CREDIT,
        DecisionKind.DUPLICATE,
    }
    # A new worker restores the partition from what the changelog was sent.
    restored = ChangelogTable("people-changelog", Settings())
    for out in table.current().changes():
        values = restored.partitions.setdefault(out.partition or 0, {})
        if out.value is None:
            values.pop(out.key, None)
        else:
            values[out.key] = out.value
    tally = Tallied()
    with restored.transaction() as tx:
        again = Dedupe(ChangelogState(restored), WINDOW, tally).observe(0, metro)
    assert not again.new and again.decisions == first
    assert tally.claims == Counter({"replay": 1}) and tx.changes() == []


def test_people_who_stop_reporting_are_swept_when_the_watermark_passes_their_day() -> None:
    dedupe, table, tally = stream_dedupe()
    dedupe.observe(0, on_day("idle", 1))
    dedupe.observe(0, on_day("active", 1, subject=ANOTHER))
    dedupe.observe(0, on_day("active-2", 9, subject=ANOTHER))
    assert tally.expired_people == 0 and SOMEONE.encode() in table.current().partition(0)
    dedupe.observe(0, on_day("active-3", 14, subject=ANOTHER))
    assert tally.expired_people == 1
    held = table.current().partition(0)
    assert SOMEONE.encode() not in held and ANOTHER.encode() in held
    assert not [k for k in held if k.startswith(b"~expiry/0/2026-10-11/")]  # idle's day, swept
    assert [k for k in held if k.startswith(b"~expiry/0/2026-10-24/")]  # active's latest


def test_the_changelog_keeps_the_keys_and_values_a_running_stage_restores() -> None:
    dedupe, table, tally = stream_dedupe()
    c = on_day("n1", 3)
    dedupe.observe(2, c)
    written = {out.key: out for out in table.current().changes()}
    assert {out.partition for out in written.values()} == {2}
    assert written[b"~watermark/2"].value == c.ended_at.isoformat().encode()
    assert written[b"~swept/2"].value == c.ended_at.astimezone(CST).date().isoformat().encode()
    expiry = [k for k in written if k.startswith(b"~expiry/2/")]
    bucket = zlib.crc32(SOMEONE.encode()) % 64
    assert len(expiry) == 1 and expiry[0].endswith(f"/{bucket}".encode())
    assert orjson.loads(written[expiry[0]].value or b"") == [SOMEONE]
    person = decode_person(written[SOMEONE.encode()].value or b"")
    assert list(person.claims.values()) == [c]
    assert tally.sizes == [len(written[SOMEONE.encode()].value or b"")]


# --- settle against the stream's use cases -------------------------------------------


def streamed_books(
    records: list[tuple[str | None, bytes]], store: StateStore
) -> dict[str, Counter[str]]:
    """The records through the stream's use cases, claims partitioned by dedupe group
    (as quantify keys them), each decision posted once (the ledger's idempotency)."""
    s = Settings()
    arrivals = [
        PartnerRecord(partner, None, raw, "batch", 0, n) for n, (partner, raw) in enumerate(records)
    ]
    methodologies = load_methodologies(s.methodology_dir)
    dedupe = Dedupe(store, s.dedupe_window, Tallied())
    books: dict[str, Counter[str]] = defaultdict(Counter)
    posted: set[object] = set()
    now = datetime(2026, 11, 22, tzinfo=UTC)
    for outcome in admit_records(arrivals, load_registry(s.partners_file), now=now):
        if not isinstance(outcome, ValidatedBehaviour):
            continue
        c = quantify_behaviour(outcome, methodologies)
        for decision in dedupe.observe(zlib.crc32(dedupe_group(c).encode()) % 4, c).decisions:
            if decision.decision_id not in posted:
                posted.add(decision.decision_id)
                for p in postings_for(decision):
                    books[p.book.value][p.account] += p.content.amount_mg
    return books


def test_settle_equals_the_stream_use_cases_over_a_shuffled_sample() -> None:
    lines = SAMPLE_FILE.read_bytes().splitlines()
    random.Random(7).shuffle(lines)
    records = [(source_of(x), x) for x in lines + lines[:200]]
    s = Settings()
    settled = settle(
        records,
        load_registry(s.partners_file),
        load_methodologies(s.methodology_dir),
        datetime(2026, 11, 22, tzinfo=UTC),
        window=s.dedupe_window,
    )
    table = ChangelogTable("people-changelog", s)
    with table.transaction():
        streamed = streamed_books(records, ChangelogState(table))
    for book in ("personal", "enterprise", "government"):
        assert {a: v for a, v in settled.book(book).items() if v} == {
            a: v for a, v in streamed[book].items() if v
        }, book
    assert sum(streamed["personal"].values()) > 0
    assert streamed == streamed_books(records, MemoryState())


def test_a_dated_act_moves_the_watermark_to_its_time_not_to_its_days_end() -> None:
    """A clean plate at 12:30 counts on its whole day (it ends at 23:59:59.999999), but
    the partition's window must not run 11 hours ahead of the present because of it."""
    lunch_at = datetime(2026, 10, 10, 12, 30, tzinfo=CST)
    plate = claim(
        "green-life", "plate-1", 0, 24 * 60 - 1, activity_class="clean_plate",
        behaviour_type="food.clean_plate", natural_key="2026-10-10|lunch",
    ).model_copy(update={"time": lunch_at})  # fmt: skip
    dedupe = Dedupe(MemoryState(), WINDOW, Tallied())
    dedupe.observe(0, plate)
    assert plate.ended_at > lunch_at
    assert dedupe.store.partition(0).watermark() == lunch_at


def test_claims_stored_by_the_previous_version_are_read_as_the_catalogue_now_defines_them() -> None:
    """State written before food.no_cutlery had its own class, and before a day ended
    at its last instant, must still meet the new claims of the same activity."""
    day = "2026-10-10"
    old_end = datetime(2026, 10, 11, 0, 0, tzinfo=CST)
    steps = claim("hankou-bank", "s-1", 0, 24 * 60, activity_class="steps",
                  behaviour_type="steps.daily", natural_key=day)  # fmt: skip
    steps = steps.model_copy(update={"ended_at": old_end, "data": {"date": day, "steps": 8000}})
    order = claim("food-delivery", "o-1", 0, 0, activity_class="order",
                  behaviour_type="food.no_cutlery", natural_key="o-1")  # fmt: skip
    state = PersonState(steps.subject, {"a": steps, "b": order})
    decoded = decode_person(encode_person(state))
    assert decoded.claims["a"].ended_at == datetime(2026, 10, 10, 23, 59, 59, 999999, tzinfo=CST)
    assert decoded.claims["b"].activity_class == "no_cutlery"
