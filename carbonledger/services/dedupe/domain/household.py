"""The Shenzhen household-electricity rule, completed where the household's history is.

Quantify credits a day's use A below the per-person baseline B on its own. Use at
or above B is compared with the household's own average over the seven previous
days (docs/factors.md): ER = (average − A) × grid factor when A is below it. That
needs the household's other readings, which only dedupe holds (a person's claims
meet in one partition), so the rule is finished here, over the claims in the
window, like every other rule: a reading that arrives late makes the day's
credit appear then, by the same compensating decisions. Conservative choices:
all seven previous days must be known, and where partners disagree on a day's
reading the smallest counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor

from carbonledger.contracts import ids
from carbonledger.contracts.records import ReductionClaim
from carbonledger.services.dedupe.domain.activities import event_key

HISTORY_DAYS = 7
NEEDS_HISTORY = "needs_household_history"
NO_REDUCTION = "no_reduction"
GRID_FACTOR = "grid_emission_factor"
MG_PER_KG = 1_000_000


def _reading(claim: ReductionClaim) -> tuple[str, date, Decimal]:
    data = claim.data
    return str(data["meter_id"]), date.fromisoformat(str(data["date"])), Decimal(str(data["kwh"]))


def completed(claims: Iterable[ReductionClaim]) -> dict[str, ReductionClaim]:
    """Claims waiting for household history, decided where the seven days are known."""
    readings: dict[str, dict[date, Decimal]] = defaultdict(dict)
    waiting = []
    for claim in claims:
        if claim.type != "home.electricity" or not claim.data:
            continue
        meter, day, kwh = _reading(claim)
        known = readings[meter].get(day)
        readings[meter][day] = kwh if known is None else min(known, kwh)
        if claim.reason == NEEDS_HISTORY:
            waiting.append(claim)
    decided = {}
    for claim in waiting:
        meter, day, kwh = _reading(claim)
        days = [day - timedelta(days=n) for n in range(1, HISTORY_DAYS + 1)]
        if all(d in readings[meter] for d in days):
            total = sum((readings[meter][d] for d in days), Decimal(0))
            decided[event_key(claim)] = _against_history(claim, kwh, total)
    return decided


def _against_history(claim: ReductionClaim, kwh: Decimal, week_kwh: Decimal) -> ReductionClaim:
    grid = next((f for f in claim.factors if f.name == GRID_FACTOR), None)
    average = Fraction(week_kwh) / HISTORY_DAYS
    if grid is None or Fraction(kwh) >= average:
        return claim.model_copy(
            update={
                "reason": NO_REDUCTION,
                "reason_detail": f"{kwh} kWh is not below the household's 7-day average "
                f"of {week_kwh} kWh / 7",
            }
        )
    factor = Fraction(grid.value) * MG_PER_KG  # mg CO2 per kWh
    assert claim.methodology is not None
    version = f"{claim.methodology.version}+7d:{week_kwh}"
    return claim.model_copy(
        update={
            "claim_id": ids.claim_id(claim.event_id, claim.methodology.id, version),
            "credited": True,
            "reduction_mg": floor((average - Fraction(kwh)) * factor),
            "reason": None,
            "reason_detail": None,
            "inputs": {
                "kwh": format(kwh, "f"),
                "household_7day_kwh": format(week_kwh, "f"),
                "household_7day_average_kwh": f"{week_kwh}/7",
            },
            "baseline_mg": floor(average * factor),
            "project_mg": floor(Fraction(kwh) * factor),
        }
    )
