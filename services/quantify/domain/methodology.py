"""Methodologies as data, their selection for an event, and the arithmetic.

Selection follows DOMAIN.md §4: the methodology must cover the behaviour type,
its crediting period must contain the behaviour's end as a China Standard Time
date, and of those the most specific region prefix wins. Arithmetic is exact
decimal; the per-event result is rounded down to the milligram.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carbonledger.contracts.catalogue import CST
from carbonledger.contracts.exact import ExactDecimal, grams_to_mg_floor
from carbonledger.contracts.records import FactorUse

NATIONAL = "national"


class FormulaKind(StrEnum):
    PER_DISTANCE = "per_distance"


class Factor(BaseModel):
    """A published factor with its provenance; `when` narrows the events it applies to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: ExactDecimal
    unit: str
    source: str
    confidence: str = Field(pattern=r"^[VSD]$")
    when: dict[str, Any] = {}

    def applies(self, behaviour_type: str, data: Mapping[str, Any]) -> bool:
        for field_name, expected in self.when.items():
            actual = behaviour_type if field_name == "type" else data.get(field_name)
            if actual != expected:
                return False
        return True

    def use(self) -> FactorUse:
        return FactorUse(
            name=self.name,
            value=self.value,
            unit=self.unit,
            source=self.source,
            confidence=self.confidence,
        )


class Methodology(BaseModel):
    """One immutable version of a methodology (方法学)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    version: str = Field(min_length=1)
    title: str
    title_zh: str
    issuer: str
    issued: date | None = None
    region: str = Field(pattern=r"^(national|\d{2,6})$")
    valid_from: date
    valid_to: date | None = None
    gases: str = Field(pattern=r"^(CO2|CO2e)$")
    behaviours: frozenset[str]
    formula: FormulaKind
    factors: tuple[Factor, ...]
    active: bool = True
    notes: str = ""

    @model_validator(mode="after")
    def _period_ordered(self) -> Methodology:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self

    @property
    def region_prefix(self) -> str:
        return "" if self.region == NATIONAL else self.region

    def credits(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class NotCredited(StrEnum):
    NO_APPLICABLE_METHODOLOGY = "no_applicable_methodology"
    NO_APPLICABLE_FACTOR = "no_applicable_factor"


@dataclass(frozen=True)
class Quantified:
    reduction_mg: int
    factors: tuple[FactorUse, ...]
    inputs: dict[str, str]


@dataclass(frozen=True)
class Unquantified:
    reason: NotCredited
    detail: str


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


def _per_distance(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any]
) -> Quantified | Unquantified:
    factor = next((f for f in m.factors if f.applies(behaviour_type, data)), None)
    if factor is None:
        return Unquantified(
            NotCredited.NO_APPLICABLE_FACTOR,
            f"{m.id}@{m.version} has no factor for this {behaviour_type}",
        )
    distance = Decimal(str(data["distance_km"]))
    grams = factor.value * distance
    return Quantified(
        grams_to_mg_floor(grams), (factor.use(),), {"distance_km": format(distance, "f")}
    )


def calculate(
    m: Methodology, behaviour_type: str, data: Mapping[str, Any]
) -> Quantified | Unquantified:
    """Apply a methodology's formula to one event's normalised data."""
    if m.formula is FormulaKind.PER_DISTANCE:
        return _per_distance(m, behaviour_type, data)
    raise AssertionError(f"unhandled formula {m.formula}")


def local_date(moment: Any) -> date:
    """The China Standard Time date of a moment (crediting periods and caps use it)."""
    return moment.astimezone(CST).date()  # type: ignore[no-any-return]
