"""How far the platform serves the carbon-inclusion schemes of the seed reports.

`data/seed-schemes.yaml` lists the 35 systems the seeds describe (Shenzhen's
低碳星球, 汉口银行, Ant Forest ...), each behaviour they reward and the catalogue
type its events are sent as, or why no type can carry it. This module judges
every behaviour against the catalogue and the shipped registry with quantify's
own selection, for the system's region and partner id on one representative day:

- served: a methodology applies and has its figures, so the events are credited;
- operator publishes: the type is accepted, recorded and deduplicated, but no
  methodology applies there (or the one that does has a figure unset), so it is
  credited only once an operator publishes one;
- engagement: an engagement event, which earns points and is never credited;
- not representable: no catalogue type carries the behaviour.

docs/coverage.md is rendered from the result (`carbonledger.ops.domain_docs`),
so the page changes whenever the catalogue or the registry does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.methodology import (
    NATIONAL,
    Factor,
    FormulaKind,
    IssuerKind,
    Methodology,
    in_force,
)
from carbonledger.contracts.topics import PARTNER_ID_PATTERN
from carbonledger.services.quantify.domain.methodology import select

SEED_SCHEMES = Path(__file__).parent / "data" / "seed-schemes.yaml"

# `S2:1310` (seed 002, line 1310), `S2:723-727`, or `F:S15` (a source of the
# methodology-factor research that no seed contains).
SeedRef = Annotated[str, StringConstraints(pattern=r"^(S[0-4]:\d+(-\d+)?|F:S\d+)$")]


class SeedBehaviour(BaseModel):
    """One behaviour a scheme rewards, and the catalogue type that carries it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    type: str | None
    refs: tuple[SeedRef, ...] = Field(min_length=1)
    note: str = ""
    why: str = ""  # why no type can carry it; required exactly when `type` is null

    @model_validator(mode="after")
    def _why_iff_unrepresentable(self) -> SeedBehaviour:
        if (self.type is None) != bool(self.why):
            raise ValueError(f"{self.en}: `why` is required exactly when `type` is null")
        return self


class SeedScheme(BaseModel):
    """One carbon-inclusion system of the seeds, as the partner it would be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str = Field(pattern=PARTNER_ID_PATTERN)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    kind: Literal[
        "government",
        "platform",
        "bank",
        "mobility",
        "automaker",
        "logistics",
        "airline",
        "employer",
    ]
    region: str = Field(pattern=r"^(national|\d{2,6})$")
    refs: tuple[SeedRef, ...] = Field(min_length=1)
    behaviours: tuple[SeedBehaviour, ...] = Field(min_length=1)

    @property
    def region_prefix(self) -> str:
        return "" if self.region == NATIONAL else self.region


class Uncounted(BaseModel):
    """A scheme the seeds describe that is not one of the counted systems, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zh: str
    en: str
    refs: tuple[SeedRef, ...]
    why: str


class SeedSchemes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: date
    systems: tuple[SeedScheme, ...]
    not_counted: tuple[Uncounted, ...] = ()

    @model_validator(mode="after")
    def _unique_partners(self) -> SeedSchemes:
        ids = [s.partner for s in self.systems]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"partner ids listed twice: {', '.join(twice)}")
        return self


def load_seed_schemes(path: Path = SEED_SCHEMES) -> SeedSchemes:
    with path.open(encoding="utf-8") as fh:
        return SeedSchemes.model_validate(yaml.safe_load(fh))


def unknown_types(schemes: SeedSchemes) -> list[str]:
    """Types the data names that the catalogue does not accept (must be none)."""
    named = {b.type for s in schemes.systems for b in s.behaviours if b.type is not None}
    return sorted(named - CATALOGUE.keys())


# --- judging a behaviour ------------------------------------------------------


class Coverage(StrEnum):
    SERVED = "served"
    OPERATOR_PUBLISHES = "operator publishes"
    ENGAGEMENT = "engagement"
    NOT_REPRESENTABLE = "not representable"


@dataclass(frozen=True)
class Judged:
    scheme: SeedScheme
    behaviour: SeedBehaviour
    coverage: Coverage
    detail: str  # the crediting methodology and factors, or what is missing


def applicable(
    methodologies: Sequence[Methodology], behaviour_type: str, region: str, day: date, partner: str
) -> Methodology | None:
    """The version quantify would select for this partner's event, or None: the one
    place that calls quantify's selection, so coverage cannot drift from it."""
    chosen = select(methodologies, behaviour_type, region, day, partner)
    return chosen if isinstance(chosen, Methodology) else None


def judge(
    scheme: SeedScheme, behaviour: SeedBehaviour, methodologies: Sequence[Methodology], day: date
) -> Judged:
    if behaviour.type is None:
        return Judged(scheme, behaviour, Coverage.NOT_REPRESENTABLE, behaviour.why)
    if CATALOGUE[behaviour.type].engagement:
        return Judged(scheme, behaviour, Coverage.ENGAGEMENT, "points only, never credited")
    chosen = applicable(methodologies, behaviour.type, scheme.region_prefix, day, scheme.partner)
    if chosen is None:
        elsewhere = _regional_only(methodologies, behaviour.type, scheme, day)
        return Judged(scheme, behaviour, Coverage.OPERATOR_PUBLISHES, elsewhere)
    unset = _unset(chosen, behaviour.type, scheme.region_prefix)
    if unset:
        missing = f"{_version(chosen)} applies with {', '.join(unset)} unset"
        return Judged(scheme, behaviour, Coverage.OPERATOR_PUBLISHES, missing)
    credited = _credited(chosen, behaviour.type, scheme.region_prefix)
    instead = _overridden(methodologies, behaviour.type, scheme, day, chosen)
    detail = f"{credited}; {instead}" if instead else credited
    return Judged(scheme, behaviour, Coverage.SERVED, detail)


def judge_all(schemes: SeedSchemes, methodologies: Iterable[Methodology]) -> list[Judged]:
    shipped = list(methodologies)
    return [judge(s, b, shipped, schemes.as_of) for s in schemes.systems for b in s.behaviours]


def _version(m: Methodology) -> str:
    return f"{m.id}@{m.version}"


def _factors_for(m: Methodology, behaviour_type: str, region: str) -> list[Factor]:
    """The factors that can apply to the type's events in `region`: on a per-grid
    methodology, only the factor of the region's grid (all of them nationwide)."""
    factors = [f for f in m.factors if f.when.get("type", behaviour_type) == behaviour_type]
    if m.grid is None or not region:
        return factors
    grid = m.grid.grid_of(region)  # a region on none of its grids has no factor
    return [f for f in factors if grid is not None and f.when.get("grid") == grid.name]


def _unset(m: Methodology, behaviour_type: str, region: str) -> list[str]:
    """Figures an operator must still set: an unset parameter, or a factor for the
    type when none it has is set (the household rule works from parameters alone)."""
    factors = _factors_for(m, behaviour_type, region)
    missing = [p.name for p in m.parameters if p.value is None]
    if m.formula is FormulaKind.HOUSEHOLD_ELECTRICITY:
        return missing
    if not factors:
        return [*missing, f"a factor for {behaviour_type} in {region or 'every region'}"]
    if not any(f.value is not None for f in factors):
        return [*missing, *(f.name for f in factors)]
    return missing


def _factor_text(f: Factor) -> str:
    """A factor as the cell shows it: value, unit, what it multiplies or is shared
    by, the events it is limited to, and its confidence."""
    when = [f"{k} = {str(v).lower()}" for k, v in f.when.items() if k != "type"]
    when += [f"{k} ≥ {format(v, 'f')}" for k, v in f.at_least.items()]
    role = f"{f.role} " if f.role else ""
    per = f" × {f.per}" if f.per else ""
    shared = f" ÷ {f.shared_by}" if f.shared_by else ""
    value = "unset" if f.value is None else format(f.value, "f")
    conditions = f" when {' and '.join(when)}" if when else ""
    return f"{role}{f.name} {value} {f.unit}{per}{shared}{conditions}, {f.confidence}"


def _credited(m: Methodology, behaviour_type: str, region: str) -> str:
    figures = "; ".join(_factor_text(f) for f in _factors_for(m, behaviour_type, region))
    own = ", the partner's own figures" if m.issuer_kind is IssuerKind.PARTNER else ""
    return f"{_version(m)}{own} ({figures})" if figures else f"{_version(m)}{own}"


def _overridden(
    methodologies: Sequence[Methodology],
    behaviour_type: str,
    scheme: SeedScheme,
    day: date,
    chosen: Methodology,
) -> str:
    """Where inside the scheme's region another version is selected instead (a
    Shenzhen methodology for Ant Forest's Shenzhen metro rides: government first)."""
    found = [
        (region, other)
        for region in _regions_covering(methodologies, behaviour_type)
        if region.startswith(scheme.region_prefix) and region != scheme.region_prefix
        if (other := applicable(methodologies, behaviour_type, region, day, scheme.partner))
        and other is not chosen
    ]
    return "; ".join(f"in {region} {_version(m)} applies instead" for region, m in found)


def _regions_covering(methodologies: Sequence[Methodology], behaviour_type: str) -> list[str]:
    covering = (m for m in in_force(methodologies) if behaviour_type in m.behaviours)
    return sorted({m.region_prefix for m in covering} - {""})


def _regional_only(
    methodologies: Sequence[Methodology], behaviour_type: str, scheme: SeedScheme, day: date
) -> str:
    """Where a national scheme's events would be credited although nothing applies
    nationwide: the regional versions that quantify would select in their own region."""
    if scheme.region != NATIONAL:
        return ""
    found = [
        (region, chosen)
        for region in _regions_covering(methodologies, behaviour_type)
        if (chosen := applicable(methodologies, behaviour_type, region, day, scheme.partner))
    ]
    return "; ".join(f"{_version(m)} in {region}" for region, m in found)


# --- totals --------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    systems: int
    behaviours: int
    types: int
    counts: dict[Coverage, int]


def totals(schemes: SeedSchemes, judged: Sequence[Judged]) -> Totals:
    counts = {c: sum(1 for j in judged if j.coverage is c) for c in Coverage}
    types = {j.behaviour.type for j in judged if j.behaviour.type is not None}
    return Totals(len(schemes.systems), len(judged), len(types), counts)
