"""Participants as the writer keeps them (domain/statistics.py): a subject's period row
moves by the batch's deltas, and the counts move by exactly the buckets that cross
zero, so they always equal the subjects above zero, however the decisions are batched."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

from carbonledger.contracts.records import Decision, DecisionKind
from carbonledger.contracts.regions import load_regions
from carbonledger.services.ledger.domain.statistics import (
    Bucket,
    PeriodKey,
    moved,
    participation,
    statistics_deltas,
)
from tests.factories import claim, reversal

REGIONS = load_regions()
PEOPLE = [f"{n:064x}" for n in range(5)]


def credit(n: int, subject: str, behaviour_type: str = "travel.metro") -> Decision:
    c = claim(
        "shenzhen-metro",
        f"st-{n}",
        n % 50,
        subject=subject,
        behaviour_type=behaviour_type,
        day=8 + n % 3,
    )
    return Decision(
        decision_id=uuid.uuid5(c.claim_id, "credit"),
        kind=DecisionKind.CREDIT,
        amount_mg=c.reduction_mg,
        claim=c,
    )


def test_a_first_action_crosses_up_a_second_does_not_and_reversals_take_out() -> None:
    first, crossed = moved({}, {"a": 1, "b": 1})
    assert first == {"a": 1, "b": 1} and crossed == {"a": 1, "b": 1}
    second, crossed = moved(first, {"a": 1})
    assert second == {"a": 2, "b": 1} and crossed == {}
    one_back, crossed = moved(second, {"a": -1})
    assert one_back == {"a": 1, "b": 1} and crossed == {}  # still one action in a
    gone, crossed = moved(one_back, {"a": -1, "b": -1})
    assert gone == {} and crossed == {"a": -1, "b": -1}  # no zero entries kept


def test_a_credit_and_its_reversal_in_one_batch_cross_nothing() -> None:
    made = credit(1, PEOPLE[0])
    _, deltas = statistics_deltas([made, reversal(made)], REGIONS)
    rows, counts = participation({}, deltas)
    assert set(rows) == set(deltas) and all(row == {} for row in rows.values())
    assert counts == {}


def test_one_credit_counts_once_in_every_bucket_of_its_four_periods() -> None:
    _, deltas = statistics_deltas([credit(1, PEOPLE[0])], REGIONS)
    rows, counts = participation({}, deltas)
    assert len(rows) == 4 and all(len(row) == 16 for row in rows.values())
    assert len(counts) == 4 * 16 and set(counts.values()) == {1}


def test_a_redelivered_batch_moves_nothing_by_construction() -> None:
    # The writer plans only fresh decisions; a batch applied before has none.
    held = participation({}, statistics_deltas([credit(1, PEOPLE[0])], REGIONS)[1])[0]
    _, again = statistics_deltas([], REGIONS)
    assert participation(held, again) == ({}, {})


def _fold(
    batches: Sequence[Sequence[Decision]],
) -> tuple[dict[PeriodKey, dict[Bucket, int]], dict[tuple[object, ...], int]]:
    """The rows and counts after applying the batches one after another."""
    held: dict[PeriodKey, dict[Bucket, int]] = {}
    counts: dict[tuple[object, ...], int] = defaultdict(int)
    for batch in batches:
        rows, moves = participation(held, statistics_deltas(batch, REGIONS)[1])
        held.update(rows)
        for key, change in moves.items():
            counts[key] += change
    return held, {k: n for k, n in counts.items() if n}


def _above_zero(held: Mapping[PeriodKey, Mapping[Bucket, int]]) -> dict[tuple[object, ...], int]:
    """Subjects with net actions above zero per (period, start, bucket), counted afresh."""
    counted: dict[tuple[object, ...], int] = defaultdict(int)
    for (period, start, _), row in held.items():
        for bucket, actions in row.items():
            counted[(period, start, bucket)] += actions > 0
    return {k: n for k, n in counted.items() if n}


def test_counts_equal_the_subjects_above_zero_however_the_decisions_are_batched() -> None:
    rng = random.Random(24)
    types = ["travel.metro", "travel.bus", "home.electricity"]
    decisions: list[Decision] = []
    credits: list[Decision] = []
    for n in range(120):
        if credits and rng.random() < 0.3:
            decisions.append(reversal(credits.pop(rng.randrange(len(credits)))))
        else:
            made = credit(n, rng.choice(PEOPLE), rng.choice(types))
            credits.append(made)
            decisions.append(made)
    one_by_one, counts = _fold([[d] for d in decisions])
    assert counts == _above_zero(one_by_one) and counts
    cuts = sorted(rng.sample(range(1, len(decisions)), 9))
    batches = [decisions[a:b] for a, b in zip([0, *cuts], [*cuts, len(decisions)], strict=True)]
    in_batches, batched_counts = _fold(batches)
    assert batched_counts == counts
    assert {k: r for k, r in in_batches.items() if r} == {k: r for k, r in one_by_one.items() if r}
