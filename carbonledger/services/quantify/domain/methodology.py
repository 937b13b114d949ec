"""Methodologies as data, their selection for an event, and the arithmetic.

Selection follows docs/methodologies.md. Applicable are the versions in force
(active, not superseded by a later version of their id) that cover the behaviour
type, whose crediting period contains the behaviour's end as a China Standard
Time date, whose region is a prefix of the event's region and whose partner scope
holds the event's source partner. Of those a government or standard methodology
beats a partner's own, and within a kind the most specific region prefix wins; a
remaining tie cannot happen, because the registry refuses it at load
(`check_registry`). Arithmetic is exact decimal; the per-event result is rounded
down to the milligram.

Formulas are kinds, not code per methodology:
- per_distance: factor (g per person-km) x distance_km;
- per_unit: factor x a quantity field (`per`: steps, kwh, amount_cny, kg, ...),
  or x 1 per event when `per` is unset (per ride, meeting, payment);
- baseline_minus_project: ER = BE - PE with BE = EF_baseline x q and
  PE = EF_project x q, q the distance or the factors' `per` field (DB11/T
  3043-2024 skeleton);
- per_event_share: factor / the `shared_by` count field (absent = 1): a figure
  per meeting shared among the participants who report it;
- per_kwh_grid: kWh x the grid emission factor (kgCO2/kWh) of the grid the
  event's region is on, from the methodology's grid division;
- by_choice: the factor of the event's value of the `choice` field (recycled
  material, appliance, packaging action), x its `per` field or per event;
- household_electricity: the Shenzhen rule; below the per-person daily baseline
  B, ER = (B - A) x household size x grid factor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from carbonledger.contracts.exact import MG_PER_G, grams_to_mg_floor
from carbonledger.contracts.methodology import (
    Factor,
    FormulaKind,
    Methodology,
    in_force,
)
from carbonledger.contracts.records import CapUse, FactorUse

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
    methodologies: Iterable[Methodology],
    behaviour_type: str,
    region: str,
    day: date,
    partner: str,
) -> Methodology | Unquantified:
    """The applicable methodology for an event from `partner`, or what was missing."""
    covering = [m for m in in_force(methodologies) if behaviour_type in m.behaviours]
    in_region = [m for m in covering if region.startswith(m.region_prefix)]
    in_period = [m for m in in_region if m.credits(day)]
    in_scope = [m for m in in_period if m.in_scope(partner)]
    if not in_scope:
        return Unquantified(
            NotCredited.NO_APPLICABLE_METHODOLOGY,
            _missing(behaviour_type, region, day, partner, covering, in_region, in_period),
        )
    # Ties past the region are refused at load; the rest of the key only makes a
    # list nobody checked (a test's) choose deterministically.
    return max(
        in_scope,
        key=lambda m: (
            -m.issuer_kind.precedence,
            len(m.region_prefix),
            m.valid_from,
            _version_key(m.version),
        ),
    )


# Keys a Selection remembers before it starts afresh: a day's (type, region, partner)
# combinations are some thousands; the bound only keeps a long run's memory flat.
MAX_REMEMBERED = 65_536
SelectionKey = tuple[str, str, date, str]


class Selection(Sequence[Methodology]):
    """A registry's methodologies that remember what `select` chose for each
    (type, region, day, partner) and each methodology's caps for a type.

    Selection is a function of those four and of the (immutable) methodologies alone,
    so remembering it changes no claim; it is what quantify spent most on per record.
    A Selection is a Sequence: wherever a list of methodologies is taken it can be."""

    def __init__(self, methodologies: Iterable[Methodology]) -> None:
        self._methodologies = tuple(methodologies)
        self._chosen: dict[SelectionKey, Methodology | Unquantified] = {}
        self._caps: dict[tuple[int, str], tuple[Methodology, tuple[CapUse, ...]]] = {}

    def __len__(self) -> int:
        return len(self._methodologies)

    def __getitem__(self, index: int) -> Methodology:  # type: ignore[override]
        return self._methodologies[index]

    def __iter__(self) -> Iterator[Methodology]:
        return iter(self._methodologies)

    def select(
        self, behaviour_type: str, region: str, day: date, partner: str
    ) -> Methodology | Unquantified:
        key = (behaviour_type, region, day, partner)
        found = self._chosen.get(key)
        if found is None:
            if len(self._chosen) >= MAX_REMEMBERED:
                self._chosen.clear()
            found = self._chosen[key] = select(
                self._methodologies, behaviour_type, region, day, partner
            )
        return found

    def caps(self, m: Methodology, behaviour_type: str) -> tuple[CapUse, ...]:
        """`caps_for(m, behaviour_type)`, made once per pair (the records are frozen)."""
        key = (id(m), behaviour_type)
        found = self._caps.get(key)
        if found is None or found[0] is not m:  # an id outlives its object only if freed
            found = self._caps[key] = (m, caps_for(m, behaviour_type))
        return found[1]


def caps_for(m: Methodology, behaviour_type: str) -> tuple[CapUse, ...]:
    """The methodology's per-person caps that count this behaviour type."""
    return tuple(
        CapUse(
            key=f"{m.id}#{n}",
            period=cap.period,
            max_mg=grams_to_mg_floor(cap.max_g) if cap.max_g is not None else None,
            max_events=cap.max_events,
            per_type=cap.per_type,
        )
        for n, cap in enumerate(m.caps)
        if behaviour_type in cap.behaviours
    )


def selection(methodologies: Sequence[Methodology]) -> Selection:
    """The methodologies as a Selection (itself, if it is one already)."""
    return methodologies if isinstance(methodologies, Selection) else Selection(methodologies)


def _missing(
    behaviour_type: str,
    region: str,
    day: date,
    partner: str,
    covering: list[Methodology],
    in_region: list[Methodology],
    in_period: list[Methodology],
) -> str:
    if not covering:
        return f"no methodology in force covers {behaviour_type}"
    if not in_region:
        return f"none covering {behaviour_type} applies to region {region}"
    if not in_period:
        return f"no crediting period of one covering {behaviour_type} in {region} contains {day}"
    scoped = ", ".join(f"{m.ref} (partners {', '.join(sorted(m.partners))})" for m in in_period)
    return f"{behaviour_type} in {region} from partner {partner} is out of partner scope: {scoped}"


def _version_key(version: str) -> tuple[int, ...] | tuple[str]:
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (version,)


# Each factor's FactorUse, made once: a claim records the same factor the same way
# every time, and building the record was a fifth of a calculation. By id, with the
# factor kept so that the id cannot be reused while remembered.
_USES: dict[int, tuple[Factor, FactorUse]] = {}


def _use(factor: Factor) -> FactorUse:
    found = _USES.get(id(factor))
    if found is None or found[0] is not factor:
        if len(_USES) >= MAX_REMEMBERED:
            _USES.clear()
        found = _USES[id(factor)] = (factor, factor.use())
    return found[1]


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
            f"{m.ref} has no {what} for this {behaviour_type}",
        )
    return found


def _per_distance(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    factor = _factor(m, behaviour_type, data)
    if isinstance(factor, Unquantified):
        return factor
    return _times(factor, "distance_km", _decimal(data["distance_km"]))


def _per_unit(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    factor = _factor(m, behaviour_type, data)
    if isinstance(factor, Unquantified):
        return factor
    return _counted(m, factor, data)


def _counted(m: Methodology, factor: Factor, data: Mapping[str, Any]) -> Quantified | Unquantified:
    """The factor times its `per` field, or once per event when it has none."""
    if factor.per is None:
        return _times(factor, "events", Decimal(1))
    if data.get(factor.per) is None:
        return Unquantified(
            NotCredited.MISSING_INPUT,
            f"{m.ref} counts {factor.per}, which the event lacks",
            (_use(factor),),
        )
    return _times(factor, factor.per, _decimal(data[factor.per]))


def _times(factor: Factor, measured: str, quantity: Decimal) -> Quantified:
    """One factor times one measured quantity (distance, units), which the claim's
    inputs record by name."""
    assert factor.value is not None
    return Quantified(
        grams_to_mg_floor(factor.value * quantity),
        (_use(factor),),
        {measured: format(quantity, "f")},
    )


def _by_choice(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    assert m.choice is not None  # the model refuses a by_choice file without one
    factor = _factor(m, behaviour_type, data)
    if isinstance(factor, Unquantified):
        return Unquantified(
            NotCredited.NO_APPLICABLE_FACTOR,
            f"{m.ref} has no factor for {behaviour_type} with {m.choice} = {data.get(m.choice)}",
        )
    result = _counted(m, factor, data)
    if isinstance(result, Unquantified):
        return result
    return replace(result, inputs={**result.inputs, m.choice: str(data[m.choice])})


def _per_event_share(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    factor = _factor(m, behaviour_type, data)
    if isinstance(factor, Unquantified):
        return factor
    assert factor.value is not None and factor.shared_by is not None
    # One report per event by default (the host's); when every participant reports,
    # the shares sum to at most the published per-event figure.
    count = int(data.get(factor.shared_by) or 1)
    # Exact: divide-integer of the milligrams rounds down without a rounded quotient.
    mg = int((factor.value * MG_PER_G) // count)
    return Quantified(mg, (_use(factor),), {"events": "1", factor.shared_by: str(count)})


def _per_kwh_grid(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    assert m.grid is not None  # the model refuses a per_kwh_grid file without one
    grid = m.grid.grid_of(region)
    if grid is None:
        return Unquantified(
            NotCredited.NO_APPLICABLE_FACTOR,
            f"{m.ref}: region {region} is on none of its grids ({m.grid.source})",
        )
    factor = _factor(m, behaviour_type, {**data, "grid": grid.name})
    if isinstance(factor, Unquantified):
        return factor
    assert factor.value is not None and factor.per is not None
    if data.get(factor.per) is None:
        return _counted(m, factor, data)  # says which input is missing
    kwh = _decimal(data[factor.per])
    return Quantified(
        grams_to_mg_floor(kwh * factor.value * KG_TO_G),  # kgCO2/kWh -> g
        (_use(factor),),
        {factor.per: format(kwh, "f"), "grid": grid.name},
    )


def _baseline_minus_project(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    baseline = _factor(m, behaviour_type, data, "baseline")
    project = _factor(m, behaviour_type, data, "project")
    if isinstance(baseline, Unquantified):
        return baseline
    if isinstance(project, Unquantified):
        return project
    assert baseline.value is not None and project.value is not None
    # Per distance, or per the quantity both factors count (the model checks they agree).
    measured = baseline.per or "distance_km"
    if data.get(measured) is None:
        return Unquantified(
            NotCredited.MISSING_INPUT,
            f"{m.ref} counts {measured}, which the event lacks",
            (_use(baseline), _use(project)),
        )
    quantity = _decimal(data[measured])
    be, pe = baseline.value * quantity, project.value * quantity
    return Quantified(
        grams_to_mg_floor(be - pe),
        (_use(baseline), _use(project)),
        {measured: format(quantity, "f")},
        baseline_mg=grams_to_mg_floor(be),
        project_mg=grams_to_mg_floor(pe),
    )


def _household_electricity(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    baseline = m.parameter("baseline_kwh_per_person_day")
    grid = m.parameter("grid_emission_factor")
    for name, p in (("baseline_kwh_per_person_day", baseline), ("grid_emission_factor", grid)):
        if p is None or p.value is None:
            return Unquantified(
                NotCredited.PARAMETER_UNSET, f"{m.ref}: parameter {name} is not set"
            )
    assert baseline is not None and grid is not None
    assert baseline.value is not None and grid.value is not None
    kwh, size = _decimal(data["kwh"]), Decimal(int(data["household_size"]))
    per_person = kwh / size
    inputs = {"kwh": format(kwh, "f"), "household_size": str(size)}
    used = (_use(baseline), _use(grid))
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


Formula = Callable[[Methodology, str, Mapping[str, Any], str], Quantified | Unquantified]

_FORMULAS: dict[FormulaKind, Formula] = {
    FormulaKind.PER_DISTANCE: _per_distance,
    FormulaKind.PER_UNIT: _per_unit,
    FormulaKind.BASELINE_MINUS_PROJECT: _baseline_minus_project,
    FormulaKind.PER_EVENT_SHARE: _per_event_share,
    FormulaKind.PER_KWH_GRID: _per_kwh_grid,
    FormulaKind.BY_CHOICE: _by_choice,
    FormulaKind.HOUSEHOLD_ELECTRICITY: _household_electricity,
}


def calculate(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any], region: str
) -> Quantified | Unquantified:
    """Apply a methodology's formula to one event's normalised data (`region` picks a
    grid factor)."""
    return _FORMULAS[m.formula](m, behaviour_type, data, region)
