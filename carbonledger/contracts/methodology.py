"""The methodology (方法学) as data: versions, factors with provenance, caps.

The shape every methodology file of the registry has; quantify applies them
(its domain selects one per event and does the arithmetic), and the ledger,
audits and the reference read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carbonledger.contracts.exact import ExactDecimal
from carbonledger.contracts.records import FactorUse

NATIONAL = "national"


class FormulaKind(StrEnum):
    PER_DISTANCE = "per_distance"
    PER_UNIT = "per_unit"
    BASELINE_MINUS_PROJECT = "baseline_minus_project"
    HOUSEHOLD_ELECTRICITY = "household_electricity"


class Factor(BaseModel):
    """A published factor with its provenance; `when` narrows the events it applies to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: ExactDecimal | None = None  # None: a parameter the operator has not set
    unit: str
    source: str
    confidence: str = Field(pattern=r"^[VSD]$")
    when: dict[str, Any] = {}
    per: str | None = None  # per_unit: the data field counted; None = per event
    role: Literal["baseline", "project"] | None = None

    def applies(self, behaviour_type: str, data: Mapping[str, Any]) -> bool:
        for field_name, expected in self.when.items():
            actual = behaviour_type if field_name == "type" else data.get(field_name)
            if actual != expected:
                return False
        return True

    def use(self) -> FactorUse:
        assert self.value is not None
        return FactorUse(
            name=self.name,
            value=self.value,
            unit=self.unit,
            source=self.source,
            confidence=self.confidence,
        )


class Cap(BaseModel):
    """A per-person limit; applied where the credited total is decided (after dedupe)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    behaviours: frozenset[str]
    period: Literal["day", "month"]
    max_g: ExactDecimal | None = None
    max_events: int | None = Field(default=None, ge=1)


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
    parameters: tuple[Factor, ...] = ()
    caps: tuple[Cap, ...] = ()
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

    def parameter(self, name: str) -> Factor | None:
        return next((p for p in self.parameters if p.name == name), None)
