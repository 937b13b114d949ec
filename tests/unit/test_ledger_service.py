"""The ledger's use cases over fake ports: the writer's sink records a batch with its
offsets and counts only what was fresh; the outbox relay leads or stands by, deletes
only what the broker acknowledged, and reports the backlog and the book totals when due."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from carbonledger.contracts import metrics
from carbonledger.contracts.records import Decision, DecisionKind
from carbonledger.contracts.regions import RegionTable, load_regions
from carbonledger.services.ledger.domain.batches import Applied, Offset
from carbonledger.services.ledger.domain.outbox import OutboxPosting, Publish
from carbonledger.services.ledger.service import BACKLOG_SECONDS, OutboxRelay, Postings
from tests.factories import reversal
from tests.unit.test_ledger_planner import A, B, decided

P = ParamSpec("P")
T = TypeVar("T")


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metrics.name(*metric.split(":")), labels) or 0.0


class Inline:
    """The database thread, run inline."""

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(*args, **kwargs)


@dataclass
class FakeBooks:
    """Records every batch once; a redelivered decision is not fresh."""

    regions: RegionTable = field(default_factory=load_regions)
    seen: set[Any] = field(default_factory=set)
    applied: list[tuple[list[Decision], str, list[Offset]]] = field(default_factory=list)

    def apply(
        self, decisions: list[Decision], group_id: str, offsets: list[Offset], accounts: Any = ()
    ) -> Applied:
        self.applied.append((decisions, group_id, offsets))
        fresh = [d for d in decisions if d.decision_id not in self.seen]
        self.seen |= {d.decision_id for d in fresh}
        moving = [d for d in fresh if d.kind in (DecisionKind.CREDIT, DecisionKind.REVERSE)]
        return Applied(3 * len(moving), fresh)

    def offsets(self, group_id: str, topic: str) -> dict[int, int]:
        return {0: 7}


def write(postings: Postings, decisions: list[Decision], offset: int) -> None:
    for d in decisions:
        list(postings.take(None, d))
    asyncio.run(postings.write({TopicPartition("dedupe.decisions", 0): offset}))


def test_a_batch_is_applied_with_its_offsets_and_only_fresh_decisions_count() -> None:
    books = FakeBooks()
    postings = Postings(books, "ledger-writer", Inline())
    credit, other = decided(A, "svc-a1", 0), decided(B, "svc-b1", 1)
    shenzhen = (credit.claim.type, books.regions.province_of(credit.claim.region).code)
    credits_before = sample("ledger:decisions_total", kind="credit")
    grams_before = sample(
        "ledger:credited_reduction_grams_total", behaviour_type=shenzhen[0], province=shenzhen[1]
    )
    postings_before = sample("ledger:postings_total")
    latency_before = sample("ledger:event_to_posting_seconds_count")

    write(postings, [credit, other], 10)
    write(postings, [credit], 11)  # redelivered: applied again, counted once

    assert [(len(d), g, o) for d, g, o in books.applied] == [
        (2, "ledger-writer", [Offset("dedupe.decisions", 0, 10)]),
        (1, "ledger-writer", [Offset("dedupe.decisions", 0, 11)]),
    ]
    assert sample("ledger:decisions_total", kind="credit") - credits_before == 2
    assert sample("ledger:postings_total") - postings_before == 6
    credited = sample(
        "ledger:credited_reduction_grams_total", behaviour_type=shenzhen[0], province=shenzhen[1]
    )
    assert credited - grams_before == pytest.approx(
        metrics.grams(credit.amount_mg + other.amount_mg)
    )
    assert sample("ledger:event_to_posting_seconds_count") - latency_before == 2
    assert asyncio.run(postings.stored("dedupe.decisions")) == {0: 7}


def test_a_reversal_counts_as_reversed_mass_and_is_not_timed() -> None:
    books = FakeBooks()
    postings = Postings(books, "ledger-writer", Inline())
    credit = decided(A, "svc-a2", 0)
    province = books.regions.province_of(credit.claim.region).code
    reversed_before = sample(
        "ledger:reversed_reduction_grams_total", behaviour_type=credit.claim.type, province=province
    )
    write(postings, [credit], 1)
    latency_before = sample("ledger:event_to_posting_seconds_count")
    write(postings, [reversal(credit)], 2)
    reversed_now = sample(
        "ledger:reversed_reduction_grams_total", behaviour_type=credit.claim.type, province=province
    )
    assert reversed_now - reversed_before == pytest.approx(metrics.grams(credit.amount_mg))
    assert sample("ledger:event_to_posting_seconds_count") == latency_before


@dataclass
class FakeOutbox:
    rows: list[OutboxPosting]
    leader: bool = True
    totals: dict[str, int] = field(default_factory=lambda: {"person": 1500, "partner": 1500})
    personal: dict[str, int] = field(default_factory=lambda: {"person": 1000, "unit": 500})
    counted: int = 0
    owed: list[int] = field(default_factory=list)

    def lead(self) -> bool:
        return self.leader

    def publish_oldest(self, limit: int, publish: Publish) -> int:
        taken = self.rows[:limit]
        if taken:
            publish(taken)  # raises: the rows stay
            del self.rows[:limit]
        return len(taken)

    def backlog(self) -> int:
        self.counted += 1
        return len(self.rows)

    def book_totals(self) -> tuple[dict[str, int], dict[str, int]]:
        return self.totals, self.personal

    def registry_shortfalls(self) -> list[int]:
        return self.owed


def rows(n: int) -> list[OutboxPosting]:
    return [OutboxPosting(i, f"person:{i}", b"{}") for i in range(n)]


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_standby_is_ready_and_leads_once_the_lock_is_free() -> None:
    outbox = FakeOutbox(rows(0), leader=False)
    relay = OutboxRelay(outbox, lambda batch: None, 10, 30.0)
    assert relay.readiness() == {"ready": False}
    assert not relay.try_lead()
    assert relay.readiness() == {"ready": True, "role": "standby"}
    assert sample("publisher:active") == 0
    outbox.leader = True
    assert relay.try_lead()
    assert relay.readiness() == {"ready": True, "role": "active"}
    assert sample("publisher:active") == 1


def test_the_relay_sends_the_oldest_batch_and_says_whether_more_waits() -> None:
    sent: list[list[int]] = []
    outbox = FakeOutbox(rows(5))
    relay = OutboxRelay(outbox, lambda batch: sent.append([p.id for p in batch]), 3, 0)
    published = sample("publisher:postings_total")
    assert relay.step() is True  # a full batch: more may wait
    assert relay.step() is False
    assert relay.step() is False  # nothing left
    assert sent == [[0, 1, 2], [3, 4]]
    assert sample("publisher:postings_total") - published == 5


def test_a_failed_send_leaves_the_batch_in_the_outbox() -> None:
    def refuse(batch: list[OutboxPosting]) -> None:
        raise ConnectionError("broker down")

    outbox = FakeOutbox(rows(2))
    with pytest.raises(ConnectionError):
        OutboxRelay(outbox, refuse, 10, 0).step()
    assert [p.id for p in outbox.rows] == [0, 1]


def test_backlog_and_book_totals_are_reported_at_first_then_when_due() -> None:
    clock = Clock()
    outbox = FakeOutbox(rows(4))
    relay = OutboxRelay(outbox, lambda batch: None, 1, 30.0, clock=clock)
    relay.step()
    assert (outbox.counted, sample("publisher:outbox_postings")) == (1, 3)
    assert sample("ledger:book_balance_grams", book="person") == 1.5
    assert sample("ledger:personal_balance_grams", kind="unit") == 0.5
    assert sample("ledger:personal_balance_grams", kind="person") == 1.0
    outbox.totals = {"person": 2500, "partner": 2500}
    clock.now += BACKLOG_SECONDS + 1
    relay.step()
    assert (outbox.counted, sample("publisher:outbox_postings")) == (2, 2)
    assert sample("ledger:book_balance_grams", book="person") == 1.5  # not due yet
    outbox.owed = [2_000, 500]  # two registry series owe 2.5 g of issued units
    clock.now += 30
    relay.step()
    assert sample("ledger:book_balance_grams", book="partner") == 2.5
    assert sample("registry:uncovered_shortfall_grams") == 2.5
    assert sample("registry:shortfall_series") == 2


def test_book_totals_are_not_reported_when_switched_off() -> None:
    outbox = FakeOutbox(rows(1), totals={"switched-off": 1000})
    OutboxRelay(outbox, lambda batch: None, 1, 0).step()
    assert sample("ledger:book_balance_grams", book="switched-off") == 0
