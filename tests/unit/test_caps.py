"""The shipped caps, applied after dedupe (Hankou Bank: steps 200 g per person per day)."""

from __future__ import annotations

from datetime import date, datetime

from carbonledger.contracts.calendar import CST, local_date
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.records import ReductionClaim
from carbonledger.services.dedupe.domain.resolve import cap_period, cap_period_end
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


def _steps_scheme(valid_from: date) -> Methodology:
    """A per-step methodology with a daily and a monthly cap, crediting from `valid_from`."""
    return Methodology.model_validate(
        {
            "id": "steps-test",
            "version": "1",
            "title": "Steps",
            "title_zh": "步数",
            "issuer": "test",
            "region": "4201",
            "valid_from": valid_from,
            "gases": "CO2",
            "behaviours": ["steps.daily"],
            "formula": "per_unit",
            "factors": [
                {
                    "name": "per_step",
                    "value": "0.02",
                    "unit": "gCO2/step",
                    "source": "test",
                    "confidence": "V",
                    "per": "steps",
                }
            ],
            "caps": [
                {"behaviours": ["steps.daily"], "period": "day", "max_g": "200"},
                {"behaviours": ["steps.daily"], "period": "month", "max_events": 31},
            ],
        }
    )


def test_a_days_behaviour_is_credited_on_its_own_cst_date() -> None:
    """A `date` is a whole CST day: its interval ends inside it, so the crediting
    period sees the day itself (before, the next midnight made it the next day)."""
    scheme = [_steps_scheme(date(2022, 8, 25))]
    eve = claim("steps.daily", "420102", scheme, date="2022-08-24", steps=5_000)
    first = claim("steps.daily", "420102", scheme, date="2022-08-25", steps=5_000)
    assert (eve.credited, eve.reason) == (False, "no_applicable_methodology")
    assert (first.credited, first.reduction_mg) == (True, 100_000)
    assert local_date(first.started_at) == local_date(first.ended_at) == date(2022, 8, 25)


def test_caps_count_a_day_on_that_day_and_month() -> None:
    scheme = [_steps_scheme(date(2022, 8, 25))]
    reported = datetime(2026, 10, 2, 9, 0, tzinfo=CST)  # each event its own id
    last_of_month = claim(
        "steps.daily", "420102", scheme, ended=reported, date="2026-09-30", steps=20_000
    )
    daily, monthly = last_of_month.caps
    assert cap_period(daily, last_of_month) == "2026-09-30"
    assert cap_period(monthly, last_of_month) == "2026-09"
    assert cap_period_end(monthly, last_of_month) == date(2026, 9, 30)
    next_day = claim(
        "steps.daily",
        "420102",
        scheme,
        ended=reported.replace(hour=10),
        date="2026-10-01",
        steps=20_000,
    )
    net, _ = stream([last_of_month, next_day])
    assert sorted(net.values()) == [200_000, 200_000]  # two days, each capped at 200 g
