"""The shipped caps, applied after dedupe (Hankou Bank: steps 200 g per person per day)."""

from __future__ import annotations

from datetime import datetime

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.records import ReductionClaim
from tests.unit.test_dedupe import stream
from tests.unit.test_registry import claim


def steps(count: int, day: int) -> ReductionClaim:
    ended = datetime(2026, 10, day, 23, 0, tzinfo=CST)
    return claim(
        "steps.daily",
        "420102",
        partner="hankou-bank",
        ended=ended,
        date=f"2026-10-{day:02d}",
        steps=count,
    )


def test_quantify_carries_the_cap_and_dedupe_applies_it_at_the_edge() -> None:
    at_cap, above = steps(10_000, 10), steps(10_001, 11)
    assert at_cap.reduction_mg == 200_000 and above.reduction_mg == 200_020  # 0.02 g/step
    assert [c.key for c in above.caps] == ["hankou-bank-2022#0"]
    assert (above.caps[0].period, above.caps[0].max_mg) == ("day", 200_000)
    net, _ = stream([at_cap, above])
    assert sorted(net.values()) == [200_000, 200_000]  # each day at most 200 g


def test_a_days_cap_is_reached_once_whatever_the_order() -> None:
    small = claim(
        "steps.daily",
        "420102",
        partner="hankou-bank",
        ended=datetime(2026, 10, 12, 22, 59, tzinfo=CST),  # another event id
        date="2026-10-12",
        steps=3_000,
    )
    assert small.reduction_mg == 60_000
    big = steps(25_000, 12)  # the same person and date: one activity, by natural key
    for order in ([small, big], [big, small]):
        net, _ = stream(order)
        assert sum(net.values()) == 60_000  # the smaller reduction wins; under the cap
