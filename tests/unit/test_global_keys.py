"""Global natural keys (docs/dedupe.md): a recycling batch (and every other type
whose natural key is global) is credited once whoever reports it.

A seeded simulation: batches reported by two or three people through partners of
different evidence ranks, in many orders and with replays, through the stream's
use cases (claims partitioned by dedupe group, the Dedupe service over the memory
and the changelog state) and through `settle`; each batch's one credit is the one
the winner rules pick, computed here independently."""

from __future__ import annotations

import json
import random
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from carbonledger.contracts import topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.groups import dedupe_group, has_global_key, is_global_group
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.methodology_files import load_methodologies, parse
from carbonledger.contracts.partners import PartnerRegistry, parse_registry
from carbonledger.contracts.records import (
    Book,
    DecisionKind,
    LedgerPosting,
    ReductionClaim,
    SubjectKind,
    ValidatedBehaviour,
)
from carbonledger.contracts.regions import load_regions
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.reference.settle import Settlement, settle
from carbonledger.runtime.changelog import ChangelogTable
from carbonledger.services.dedupe.adapters.memory import MemoryState
from carbonledger.services.dedupe.adapters.state import ChangelogState, decode_person
from carbonledger.services.dedupe.domain.activities import same_activity
from carbonledger.services.dedupe.entrypoints.app import decisions_of
from carbonledger.services.dedupe.service import Dedupe, StateStore
from carbonledger.services.ingest.service import PartnerRecord, admit_records
from carbonledger.services.ledger.domain.planner import plan
from carbonledger.services.ledger.domain.postings import postings_for
from carbonledger.services.quantify.entrypoints.app import claims_of as quantify_claims_of
from carbonledger.services.quantify.service import quantify_behaviour
from tests.factories import claim
from tests.unit.test_dedupe_service import Tallied

# Partners that may all report a recycling batch, with their evidence for it.
RANKS = {"recycle-station": 30, "estate-app": 20, "city-app": 20, "green-bank": 10}
PEOPLE = [subject_of(f"+86-global-{i}") for i in range(8)]
DISTRICTS = ("440303", "440305", "440307")
NOW = datetime(2026, 10, 19, 12, tzinfo=UTC)
KG_FACTOR_G = Decimal("1340")  # the recycling factor the test methodology credits
PARTITIONS = 4


def registry() -> PartnerRegistry:
    return parse_registry(
        {
            "partners": [
                {
                    "id": partner,
                    "name": partner,
                    "kind": "test",
                    "behaviours": ["recycle.item", "travel.metro"],
                    "evidence_rank": {"recycle": rank, "trip": rank},
                }
                for partner, rank in RANKS.items()
            ]
        }
    )


def methodologies() -> list[Methodology]:
    """The shipped registry, and the Quzhou recycling factor made active for Shenzhen
    (shipped inactive: its per-class factors are not public)."""
    shipped = Settings().methodology_dir
    recycling = parse(shipped / "quzhou-recycling-2022@1.yaml").model_copy(
        update={"id": "test-recycling", "region": "44", "active": True}
    )
    return [*load_methodologies(shipped), recycling]


@dataclass(frozen=True)
class Report:
    partner: str
    subject: str
    event_id: str
    batch: str
    kg: Decimal
    time: datetime

    @property
    def mg(self) -> int:
        return int(self.kg * KG_FACTOR_G * 1000)

    def record(self) -> tuple[str, bytes]:
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.event_id,
            "source": self.partner,
            "type": "recycle.item",
            "time": self.time.isoformat(),
            "subject": self.subject,
            "data": {
                "region": DISTRICTS[zlib.crc32(self.batch.encode()) % 3],
                "batch_id": self.batch,
                "material": "paper",
                "kg": str(self.kg),
            },
        }
        return self.partner, json.dumps(event).encode()


def reports(seed: int, batches: int = 40) -> list[Report]:
    """Each batch handed in once and reported by one to three people, each through
    another partner; partners disagree on the weight and the time a little."""
    rng = random.Random(seed)
    made = []
    for b in range(batches):
        batch = f"batch-{seed}-{b}"
        handed_in = datetime(2026, 10, 12, 8, tzinfo=CST) + timedelta(minutes=rng.randrange(8000))
        kg = Decimal(rng.randint(10, 400)) / 10
        partners = rng.sample(sorted(RANKS), rng.randint(1, 3))
        people = rng.sample(PEOPLE, len(partners))
        for n, (partner, subject) in enumerate(zip(partners, people, strict=True)):
            weighed = kg + Decimal(rng.choice([0, 0, 1, -1])) / 10
            at = handed_in + timedelta(minutes=rng.choice([0, 0, 5, 30]))
            made.append(Report(partner, subject, f"g{seed}-{b}-{n}", batch, weighed, at))
    return made


def oracle(made: list[Report]) -> dict[str, dict[str, int]]:
    """The books the winner rules imply: per batch, the highest rank, then the smaller
    reduction, then the earlier time, then the smaller (source, id) is credited."""
    by_batch: dict[str, list[Report]] = defaultdict(list)
    for report in made:
        by_batch[report.batch].append(report)
    books: dict[str, dict[str, int]] = {"personal": Counter(), "enterprise": Counter()}
    for batch in by_batch.values():
        won = min(batch, key=lambda r: (-RANKS[r.partner], r.mg, r.time, r.partner, r.event_id))
        books["personal"][won.subject] += won.mg
        books["enterprise"][won.partner] += won.mg
    return books


def claims_of(records: list[tuple[str, bytes]]) -> list[ReductionClaim]:
    arrivals = [PartnerRecord(p, None, raw, "batch", 0, n) for n, (p, raw) in enumerate(records)]
    found = []
    for outcome in admit_records(arrivals, registry(), now=NOW):
        assert isinstance(outcome, ValidatedBehaviour), outcome
        found.append(quantify_behaviour(outcome, METHODOLOGIES))
    return found


def streamed(claims: list[ReductionClaim], store: StateStore) -> dict[str, Counter[str]]:
    """The claims through the stream's Dedupe, partitioned by dedupe group as quantify
    keys them; each decision posted once (the ledger's idempotency)."""
    dedupe = Dedupe(store, timedelta(days=7), Tallied())
    books: dict[str, Counter[str]] = defaultdict(Counter)
    posted: set[object] = set()
    for c in claims:
        partition = zlib.crc32(dedupe_group(c).encode()) % PARTITIONS
        for decision in dedupe.observe(partition, c).decisions:
            if decision.decision_id not in posted:
                posted.add(decision.decision_id)
                for p in postings_for(decision):
                    books[p.book.value][p.account] += p.content.amount_mg
    return books


def nonzero(book: dict[str, int]) -> dict[str, int]:
    return {a: v for a, v in book.items() if v}


def settled(records: list[tuple[str, bytes]]) -> Settlement:
    return settle(records, registry(), METHODOLOGIES, NOW)


METHODOLOGIES = methodologies()


@pytest.mark.parametrize("seed", range(6))
def test_each_batch_is_credited_once_whoever_reports_it_in_every_order(seed: int) -> None:
    made = reports(seed)
    want = oracle(made)
    assert len(made) > len(want["enterprise"])  # batches really are reported more than once
    records = [r.record() for r in made]
    rng = random.Random(100 + seed)
    for order in range(4):
        shuffled = records + rng.sample(records, len(records) // 4)  # partners' resends
        rng.shuffle(shuffled)
        claims = claims_of(shuffled)
        assert all(c.credited for c in claims)
        batch = settled(shuffled)
        table = ChangelogTable("global-changelog", Settings())
        with table.transaction():
            stream = streamed(claims, ChangelogState(table))
        for book in ("personal", "enterprise"):
            assert nonzero(batch.book(book)) == nonzero(stream[book]) == nonzero(want[book]), (
                seed,
                order,
                book,
            )
        assert nonzero(streamed(claims, MemoryState())["personal"]) == nonzero(want["personal"])
        totals = {b: sum(batch.book(b).values()) for b in ("personal", "enterprise", "government")}
        assert len(set(totals.values())) == 1
        assert batch.outcomes["duplicate"] == len(made) - len({r.batch for r in made})
        assert batch.outcomes["replay"] == len(records) // 4


def test_the_loser_is_a_duplicate_of_another_persons_claim_and_its_credit_is_reversed() -> None:
    first, second = PEOPLE[0], PEOPLE[1]
    weak = claim("green-bank", "weak", 0, 0, rank=10, mg=5_000, subject=first, **RECYCLE)
    strong = claim("recycle-station", "strong", 5, 0, rank=30, mg=6_000, subject=second, **RECYCLE)
    dedupe = Dedupe(MemoryState(), timedelta(days=7), Tallied())
    decide = decisions_of(dedupe)

    @dataclass
    class Consumed:
        partition: int
        key: bytes

    def outputs(c: ReductionClaim) -> list[tuple[bytes, DecisionKind, str]]:
        """(key, kind, event id of the claim it is about) of what the stage sends."""
        found = []
        group = dedupe_group(c).encode()
        for out in decide(Consumed(zlib.crc32(group) % PARTITIONS, group), c):
            assert out.topic == topics.DECISIONS and out.value is not None
            d = json.loads(out.value)
            found.append((out.key, DecisionKind(d["kind"]), d["claim"]["event"]["id"]))
        return found

    assert outputs(weak) == [(first.encode(), DecisionKind.CREDIT, "weak")]
    # The stronger report of the same batch by someone else: the first person's credit
    # is reversed on their own key (it follows their credit in their partition).
    assert outputs(strong) == [
        (first.encode(), DecisionKind.REVERSE, "weak"),
        (first.encode(), DecisionKind.DUPLICATE, "weak"),
        (second.encode(), DecisionKind.CREDIT, "strong"),
    ]
    home = zlib.crc32(dedupe_group(strong).encode()) % PARTITIONS
    again = dedupe.observe(home, strong).decisions  # a replay re-emits what it caused
    assert [d.kind for d in again] == [
        DecisionKind.REVERSE,
        DecisionKind.DUPLICATE,
        DecisionKind.CREDIT,
    ]
    duplicate = again[1]
    assert duplicate.claim.subject == first and duplicate.winner is not None
    assert (duplicate.winner.id, duplicate.winner_claim_id) == ("strong", strong.claim_id)
    assert duplicate.reason_detail and "evidence rank" in duplicate.reason_detail


RECYCLE: dict[str, Any] = {
    "behaviour_type": "recycle.item",
    "activity_class": "recycle",
    "natural_key": "batch-1",
}


def test_a_global_group_is_one_state_entry_beside_the_peoples_unchanged_keys() -> None:
    person = claim("estate-app", "metro-1", 0, 30, subject=PEOPLE[2])
    batch = claim("estate-app", "batch", 40, 0, subject=PEOPLE[2], **RECYCLE)
    table = ChangelogTable("global-changelog", Settings())
    with table.transaction():
        dedupe = Dedupe(ChangelogState(table), timedelta(days=7), Tallied())
        dedupe.observe(1, person)
        dedupe.observe(1, batch)
        mapping = table.current().partition(1)
        assert PEOPLE[2].encode() in mapping  # a person's state key is their subject, as always
        group = b"~global/recycle/batch-1"
        assert group in mapping
        state = decode_person(mapping[group])
        assert state.subject == group.decode() and list(state.claims.values()) == [batch]
        listed = [k for k in mapping if k.startswith(b"~expiry/1/")]
        assert any(b"~global/recycle/batch-1" in mapping[k] for k in listed)


@pytest.mark.parametrize(
    "behaviour_type", sorted(t for t, spec in CATALOGUE.items() if spec.global_key)
)
def test_every_global_key_type_is_grouped_by_its_key_not_its_subject(behaviour_type: str) -> None:
    spec = CATALOGUE[behaviour_type]
    common: dict[str, Any] = {
        "behaviour_type": behaviour_type,
        "activity_class": spec.activity_class,
        "natural_key": "thing-7",
    }
    one = claim("estate-app", "a", 0, 60, subject=PEOPLE[0], **common)
    other = claim("city-app", "b", 0, 60, subject=PEOPLE[1], **common)
    assert has_global_key(behaviour_type)
    assert dedupe_group(one) == dedupe_group(other) == f"~global/{spec.activity_class}/thing-7"
    assert is_global_group(dedupe_group(one)) and same_activity(one, other)
    # Overlapping in time is not enough: another thing is another activity.
    elsewhere = claim("city-app", "c", 0, 60, subject=PEOPLE[1], **{**common, "natural_key": "x"})
    assert dedupe_group(elsewhere) != dedupe_group(one) and not same_activity(one, elsewhere)


def test_ordinary_types_stay_grouped_by_subject() -> None:
    rides = [claim("estate-app", f"r{i}", 0, 30, subject=PEOPLE[i]) for i in range(2)]
    assert [dedupe_group(c) for c in rides] == PEOPLE[:2]
    assert not same_activity(*rides)  # two people's rides at one time are two activities
    assert not has_global_key("travel.metro") and not has_global_key("no.such.type")


def test_postings_say_whose_behaviour_they_are_for() -> None:
    unit = claim("estate-app", "u", 0, 0, subject=PEOPLE[3], **RECYCLE).model_copy(
        update={"subject_kind": SubjectKind.UNIT}
    )
    dedupe = Dedupe(MemoryState(), timedelta(days=7), Tallied())
    (credit,) = dedupe.observe(0, unit).decisions
    posted = postings_for(credit)
    assert {p.book for p in posted} == set(Book)
    assert {p.content.subject_kind for p in posted} == {SubjectKind.UNIT}
    person = claim("estate-app", "p", 0, 30, subject=PEOPLE[4])
    (other,) = dedupe.observe(0, person).decisions
    assert {p.content.subject_kind for p in postings_for(other)} == {SubjectKind.PERSON}


def test_a_units_posting_is_published_as_a_units_and_its_hash_is_the_persons() -> None:
    unit = claim("estate-app", "u", 0, 0, subject=PEOPLE[3], **RECYCLE)
    as_unit = unit.model_copy(update={"subject_kind": SubjectKind.UNIT})
    planned = {
        kind: plan(Dedupe(MemoryState(), timedelta(days=7), Tallied()).observe(0, c).decisions,
                   {}, load_regions())
        for kind, c in (("person", unit), ("unit", as_unit))
    }  # fmt: skip
    chained = planned["unit"].postings
    assert {p.subject_kind for p in chained} == {SubjectKind.UNIT}
    published = [LedgerPosting.model_validate_json(row.payload) for row in planned["unit"].outbox]
    assert {p.subject_kind for p in published} == {SubjectKind.UNIT}
    # The kind is outside the chain's canonical text: the same content, the same hash.
    assert [p.hash for p in chained] == [p.hash for p in planned["person"].postings]
    old = LedgerPosting.model_validate(
        {k: v for k, v in published[0].model_dump(mode="json").items() if k != "subject_kind"}
    )
    assert old.subject_kind is SubjectKind.PERSON  # a posting published before units decodes


def test_settle_reports_units_apart_and_the_three_books_still_agree() -> None:
    made = reports(3)
    unit = made[0].subject  # this reporter is an organisation: subjectkind = unit
    records = []
    for r in made:
        partner, raw = r.record()
        event = json.loads(raw)
        if r.subject == unit:
            event["subjectkind"] = "unit"
        records.append((partner, json.dumps(event).encode()))
    batch = settled(records)
    want = oracle(made)["personal"]
    assert want[unit] > 0 and batch.units == {unit}
    split = batch.personal_by_kind()
    assert split == {"unit": want[unit], "person": sum(want.values()) - want[unit]}
    assert sum(split.values()) == sum(batch.enterprise.values()) == sum(batch.government.values())
    assert batch.as_json()["personal_by_kind"] == split
    assert batch.as_json()["unit_accounts"] == [unit]
    assert nonzero(batch.personal) == nonzero(want)  # a unit's report still competes


def test_quantify_keys_a_claim_by_its_dedupe_group() -> None:
    report = reports(5, batches=1)[0]
    arrivals = [PartnerRecord(report.partner, None, report.record()[1], "batch", 0, 0)]
    (behaviour,) = admit_records(arrivals, registry(), now=NOW)
    assert isinstance(behaviour, ValidatedBehaviour)
    (out,) = quantify_claims_of(METHODOLOGIES)(None, behaviour)
    assert out.topic == topics.CLAIMS and out.key == f"~global/recycle/{report.batch}".encode()
    ride = claims_of([metro_record(PEOPLE[5])])[0]
    assert dedupe_group(ride) == PEOPLE[5]


def metro_record(subject: str) -> tuple[str, bytes]:
    ended = datetime(2026, 10, 14, 8, 30, tzinfo=CST)
    event = {
        "specversion": "1.0",
        "id": "metro-of-a-recycler",
        "source": "estate-app",
        "type": "travel.metro",
        "time": ended.isoformat(),
        "subject": subject,
        "data": {
            "region": "440305",
            "started_at": (ended - timedelta(minutes=25)).isoformat(),
            "ended_at": ended.isoformat(),
            "distance_km": "10.0",
        },
    }
    return "estate-app", json.dumps(event).encode()


def test_a_claim_under_another_key_is_sent_on_under_its_groups_key_not_observed() -> None:
    """A recycling claim published before its key became global (keyed by subject), or
    redriven with its old key, would open a second state for its batch."""
    weak = claim("green-bank", "old-key", 0, 0, rank=10, mg=5_000, subject=PEOPLE[0], **RECYCLE)
    dedupe = Dedupe(MemoryState(), timedelta(days=7), Tallied())

    @dataclass
    class Consumed:
        partition: int
        key: bytes

    (out,) = decisions_of(dedupe)(Consumed(0, PEOPLE[0].encode()), weak)
    assert out.topic == topics.CLAIMS and out.key == dedupe_group(weak).encode()
    assert out.value == weak.to_bytes()
    assert dedupe.store.partition(0).person(dedupe_group(weak)) is None  # not observed
