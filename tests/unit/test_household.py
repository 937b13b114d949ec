"""The household-electricity rule above the baseline: the household's own 7-day average."""

from __future__ import annotations

import random
from datetime import datetime

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.records import DecisionKind, ReductionClaim
from tests.unit.test_dedupe import stream
from tests.unit.test_registry import claim, household_method


def reading(day: int, kwh: str, meter: str = "m-1") -> ReductionClaim:
    ended = datetime(2026, 10, day, 23, 0, tzinfo=CST)
    return claim(
        "home.electricity",
        "440304",
        [household_method()],
        ended=ended,
        meter_id=meter,
        date=f"2026-10-{day:02d}",
        kwh=kwh,
        household_size=2,
    )


def week_then(kwh: str) -> list[ReductionClaim]:
    return [reading(day, "10") for day in range(1, 8)] + [reading(8, kwh)]


def test_use_above_the_baseline_is_credited_below_the_households_7_day_average() -> None:
    # Days 1-7: 10 kWh (5 per person, above B = 3). Day 8: 8 kWh, 2 below the average.
    net, decisions = stream(week_then("8"))
    # ER = (70 / 7 - 8) kWh x 386.9 g/kWh = 773.8 g
    assert net == {"every-app/home.electricity-440304-2026-10-08T23:00:00+08:00": 773_800}
    (credit,) = [d for d in decisions if d.kind is DecisionKind.CREDIT]
    assert credit.claim.inputs["household_7day_kwh"] == "70"
    assert credit.claim.baseline_mg == 3_869_000 and credit.claim.project_mg == 3_095_200
    assert {f.name for f in credit.claim.factors} == {
        "baseline_kwh_per_person_day",
        "grid_emission_factor",
    }


def test_the_same_credit_whatever_order_the_week_arrives_in() -> None:
    expected, _ = stream(week_then("8"))
    for seed in range(6):
        shuffled = week_then("8")
        random.Random(seed).shuffle(shuffled)
        assert stream(shuffled)[0] == expected


def test_use_not_below_the_average_or_with_a_missing_day_is_not_credited() -> None:
    net, decisions = stream(week_then("10"))
    assert net == {}
    assert decisions[-1].reason == "no_reduction"
    incomplete = [reading(day, "10") for day in range(2, 8)] + [reading(8, "8")]
    net, decisions = stream(incomplete)
    assert net == {} and decisions[-1].reason == "needs_household_history"


def test_another_meter_is_another_household() -> None:
    claims = [reading(day, "10", meter="m-2") for day in range(1, 8)] + [reading(8, "8")]
    assert stream(claims)[0] == {}
