"""Methodologies as data, their selection for an event, and the arithmetic.

Selection follows docs/domain.md: the methodology must cover the behaviour type,
its crediting period must contain the behaviour's end as a China Standard Time
date, and of those the most specific region prefix wins. Arithmetic is exact
decimal; the per-event result is rounded down to the milligram.

Formulas are kinds, not code per methodology:
- per_distance: factor (g per person-km) x distance_km;
- per_unit: factor x a quantity field (`per`: steps, kwh, amount_cny, kg, ...),
  or x 1 per event when `per` is unset (per ride, meeting, payment);
- baseline_minus_project: ER = BE - PE with BE = EF_baseline x distance and
  PE = EF_project x distance (DB11/T 3043-2024 skeleton);
- household_electricity: the Shenzhen rule; below the per-person daily baseline
  B, ER = (B - A) x household size x grid factor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from carbonledger.contracts.exact import grams_to_mg_floor
from carbonledger.contracts.methodology import Factor, FormulaKind, Methodology
from carbonledger.contracts.records import FactorUse

KG_TO_G = Decimal(1000)


class NotCredited(StrEnum):
    NO_APPLICABLE_METHODOLOGY = "no_applicable_methodology"
    NO_APPLICABLE_FACTOR = "no_applicable_factor"
    MISSING_INPUT = "missing_input"
    PARAMETER_UNSET = "parameter_unset"
    NEEDS_HOUSEHOLD_HISTORY = "needs_household_history"


@dataclass(frozen=True)
class Quantified:
    reduction_mg: int
    factors: tuple[FactorUse, ...]
    inputs: dict[str, str]
    baseline_mg: int | None = None
    project_mg: int | None = None


@dataclass(frozen=True)
class Unquantified:
    reason: NotCredited
    detail: str
    factors: tuple[FactorUse, ...] = field(default=())


def select(
    methodologies: Iterable[Methodology], behaviour_type: str, region: str, day: date
) -> Methodology | Unquantified:
    """The applicable methodology for an event, or why there is none."""
    covering = [m for m in methodologies if m.active and behaviour_type in m.behaviours]
    in_region = [m for m in covering if region.startswith(m.region_prefix)]
    in_period = [m for m in in_region if m.credits(day)]
    if not in_period:
        why = (
            "no active methodology covers " + behaviour_type
            if not covering
            else f"none covering {behaviour_type} applies to region {region}"
            if not in_region
            else f"no crediting period of one covering {behaviour_type} in {region} contains {day}"
        )
        return Unquantified(NotCredited.NO_APPLICABLE_METHODOLOGY, why)
    return max(
        in_period, key=lambda m: (len(m.region_prefix), m.valid_from, _version_key(m.version))
    )


def _version_key(version: str) -> tuple[int, ...] | tuple[str]:
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (version,)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _factor(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], role: str | None = None
) -> Factor | Unquantified:
    found = next((f for f in m.factors if f.role == role and f.applies(behaviour_type, data)), None)
    if found is None or found.value is None:
        what = f"{role} factor" if role else "factor"
        return Unquantified(
            NotCredited.NO_APPLICABLE_FACTOR,
            f"{m.id}@{m.version} has no {what} for this {behaviour_type}",
        )
    return found


def _per_distance(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any]
) -> Quantified | Unquantified:
    factor = _factor(m, behaviour_type, data)
    if isinstance(factor, Unquantified):
        return factor
    return _times(factor, "distance_km", _decimal(data["distance_km"]))


def _per_unit(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any]
) -> Quantified | Unquantified:
    factor = _factor(m, behaviour_type, data)
    if isinstance(factor, Unquantified):
        return factor
    if factor.per is None:
        return _times(factor, "events", Decimal(1))
    if data.get(factor.per) is None:
        return Unquantified(
            NotCredited.MISSING_INPUT,
            f"{m.id}@{m.version} counts {factor.per}, which the event lacks",
            (factor.use(),),
        )
    return _times(factor, factor.per, _decimal(data[factor.per]))


def _times(factor: Factor, measured: str, quantity: Decimal) -> Quantified:
    """One factor times one measured quantity (distance, units), which the claim's
    inputs record by name."""
    assert factor.value is not None
    return Quantified(
        grams_to_mg_floor(factor.value * quantity),
        (factor.use(),),
        {measured: format(quantity, "f")},
    )


def _baseline_minus_project(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any]
) -> Quantified | Unquantified:
    baseline = _factor(m, behaviour_type, data, "baseline")
    project = _factor(m, behaviour_type, data, "project")
    if isinstance(baseline, Unquantified):
        return baseline
    if isinstance(project, Unquantified):
        return project
    assert baseline.value is not None and project.value is not None
    distance = _decimal(data["distance_km"])
    be, pe = baseline.value * distance, project.value * distance
    return Quantified(
        grams_to_mg_floor(be - pe),
        (baseline.use(), project.use()),
        {"distance_km": format(distance, "f")},
        baseline_mg=grams_to_mg_floor(be),
        project_mg=grams_to_mg_floor(pe),
    )


def _household_electricity(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any]
) -> Quantified | Unquantified:
    baseline = m.parameter("baseline_kwh_per_person_day")
    grid = m.parameter("grid_emission_factor")
    for name, p in (("baseline_kwh_per_person_day", baseline), ("grid_emission_factor", grid)):
        if p is None or p.value is None:
            return Unquantified(
                NotCredited.PARAMETER_UNSET, f"{m.id}@{m.version}: parameter {name} is not set"
            )
    assert baseline is not None and grid is not None
    assert baseline.value is not None and grid.value is not None
    kwh, size = _decimal(data["kwh"]), Decimal(int(data["household_size"]))
    per_person = kwh / size
    inputs = {"kwh": format(kwh, "f"), "household_size": str(size)}
    used = (baseline.use(), grid.use())
    if per_person >= baseline.value:
        return Unquantified(
            NotCredited.NEEDS_HOUSEHOLD_HISTORY,
            "use at or above the baseline is compared with the household's own "
            "7-day average, which this stage does not hold",
            used,
        )
    ef_g_per_kwh = grid.value * KG_TO_G
    be = baseline.value * size * ef_g_per_kwh
    pe = kwh * ef_g_per_kwh
    return Quantified(
        grams_to_mg_floor(be - pe),
        used,
        inputs,
        baseline_mg=grams_to_mg_floor(be),
        project_mg=grams_to_mg_floor(pe),
    )


_FORMULAS = {
    FormulaKind.PER_DISTANCE: _per_distance,
    FormulaKind.PER_UNIT: _per_unit,
    FormulaKind.BASELINE_MINUS_PROJECT: _baseline_minus_project,
    FormulaKind.HOUSEHOLD_ELECTRICITY: _household_electricity,
}


def calculate(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any]
) -> Quantified | Unquantified:
    """Apply a methodology's formula to one event's normalised data."""
    return _FORMULAS[m.formula](m, behaviour_type, data)
