"""The methodology (方法学) as data: versions, factors with provenance, caps, scope.

The shape every methodology file of the registry has; quantify applies them
(its domain selects one per event and does the arithmetic), and the ledger,
audits and the reference read them.

A file is checked against the behaviour catalogue when it is parsed: a factor or
cap naming a type the methodology does not cover, a condition on a field the type
does not have or a choice value the field does not offer is refused, because it
would silently never apply. `check_registry` adds the checks that need every
version at once (supersedes, ambiguous selection); every loader calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from itertools import combinations
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carbonledger.contracts.catalogue import CATALOGUE, FieldSpec, Kind
from carbonledger.contracts.exact import ExactDecimal
from carbonledger.contracts.records import FactorUse

NATIONAL = "national"
GRID_FACTOR_UNIT = "kgCO2/kWh"  # as the MEE/NBS notices publish them


class FormulaKind(StrEnum):
    PER_DISTANCE = "per_distance"
    PER_UNIT = "per_unit"
    BASELINE_MINUS_PROJECT = "baseline_minus_project"
    PER_EVENT_SHARE = "per_event_share"
    PER_KWH_GRID = "per_kwh_grid"
    BY_CHOICE = "by_choice"
    HOUSEHOLD_ELECTRICITY = "household_electricity"


class IssuerKind(StrEnum):
    """Who published the methodology; decides precedence (government/standard first)."""

    GOVERNMENT = "government"  # a local government's methodology (Shenzhen's)
    STANDARD = "standard"  # a national or group standard, an official research figure
    PARTNER = "partner"  # an enterprise's own algorithm (a bank's, Ant Forest's)

    @property
    def precedence(self) -> int:
        """Lower wins: one published public algorithm per region beats an enterprise's."""
        return 1 if self is IssuerKind.PARTNER else 0


class Factor(BaseModel):
    """A published factor with its provenance; `when` and `at_least` narrow the events
    it applies to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: ExactDecimal | None = None  # None: a parameter the operator has not set
    unit: str
    source: str
    confidence: str = Field(pattern=r"^[VSD]$")
    when: dict[str, Any] = {}
    # Lower bounds on quantity fields (Ant Forest: an offline payment of at least 1 yuan).
    at_least: dict[str, ExactDecimal] = {}
    per: str | None = None  # the data field counted (per_unit, ...); None = per event
    # per_event_share: the count field the factor is shared among (absent = 1).
    shared_by: str | None = None
    role: Literal["baseline", "project"] | None = None

    def applies(self, behaviour_type: str, data: Mapping[str, Any]) -> bool:
        for field_name, expected in self.when.items():
            actual = behaviour_type if field_name == "type" else data.get(field_name)
            if actual != expected:
                return False
        return all(
            data.get(name) is not None and Decimal(str(data[name])) >= bound
            for name, bound in self.at_least.items()
        )

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
    """A per-person limit; applied where the credited total is decided (after dedupe).

    `per_type` counts each behaviour type of the cap apart (Ant Forest: at most 5
    metro rides a day, whatever else the person did)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    behaviours: frozenset[str]
    period: Literal["day", "month"]
    max_g: ExactDecimal | None = None
    max_events: int | None = Field(default=None, ge=1)
    per_type: bool = False


class GridRegion(BaseModel):
    """One regional power grid and the admin-code prefixes (provinces, or cities
    where a province is split) it serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z_]*$")
    name_zh: str
    prefixes: tuple[str, ...] = Field(min_length=1)


class GridDivision(BaseModel):
    """Which region belongs to which grid, as data with its source (per_kwh_grid)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    regions: tuple[GridRegion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _each_prefix_once(self) -> GridDivision:
        prefixes = [p for r in self.regions for p in r.prefixes]
        repeated = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if repeated:
            raise ValueError(f"grid prefixes listed twice: {', '.join(repeated)}")
        if bad := [p for p in prefixes if not (p.isdigit() and 2 <= len(p) <= 6)]:
            raise ValueError(f"grid prefixes are admin-code prefixes: {bad}")
        return self

    def grid_of(self, region: str) -> GridRegion | None:
        """The grid whose longest prefix matches the region (a split province's cities
        before the province)."""
        matches = [(len(p), r) for r in self.regions for p in r.prefixes if region.startswith(p)]
        return max(matches, key=lambda m: m[0])[1] if matches else None


class Methodology(BaseModel):
    """One immutable version of a methodology (方法学)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    version: str = Field(min_length=1)
    title: str
    title_zh: str
    issuer: str
    issuer_kind: IssuerKind = IssuerKind.GOVERNMENT
    # The partner ids a partner methodology applies to (only events from them).
    partners: frozenset[str] = frozenset()
    # Earlier versions of this id this one makes inactive (their files stay as published).
    supersedes: frozenset[str] = frozenset()
    issued: date | None = None
    region: str = Field(pattern=r"^(national|\d{2,6})$")
    valid_from: date
    valid_to: date | None = None
    gases: str = Field(pattern=r"^(CO2|CO2e)$")
    behaviours: frozenset[str]
    formula: FormulaKind
    choice: str | None = None  # by_choice: the choice field whose value picks the factor
    grid: GridDivision | None = None  # per_kwh_grid: which region is on which grid
    factors: tuple[Factor, ...]
    parameters: tuple[Factor, ...] = ()
    caps: tuple[Cap, ...] = ()
    active: bool = True
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Methodology:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        _check_scope(self)
        _check_catalogue(self)
        _check_formula(self)
        _check_caps(self)
        return self

    @property
    def region_prefix(self) -> str:
        return "" if self.region == NATIONAL else self.region

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def credits(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def in_scope(self, partner: str) -> bool:
        """Whether events from `partner` may be credited by it (no list: any partner)."""
        return not self.partners or partner in self.partners

    def parameter(self, name: str) -> Factor | None:
        return next((p for p in self.parameters if p.name == name), None)


# --- checks of one file ---------------------------------------------------------


def _check_scope(m: Methodology) -> None:
    if m.issuer_kind is IssuerKind.PARTNER and not m.partners:
        # An enterprise's own figures for every partner's events is the error §10 fixes.
        raise ValueError("a partner methodology lists the partner ids it applies to (partners)")
    if m.issuer_kind is not IssuerKind.PARTNER and m.partners:
        raise ValueError(f"partners is for issuer_kind partner, not {m.issuer_kind.value}")
    if m.version in m.supersedes:
        raise ValueError(f"version {m.version} cannot supersede itself")


def _types_of(m: Methodology, factor: Factor) -> list[str]:
    named = factor.when.get("type")
    return [named] if isinstance(named, str) else sorted(m.behaviours)


def _catalogue_field(behaviour_type: str, name: str, what: str) -> FieldSpec:
    spec = CATALOGUE[behaviour_type].field(name)
    if spec is None:
        raise ValueError(f"{what}: {behaviour_type} has no field {name!r}")
    return spec


def _check_condition(behaviour_type: str, name: str, expected: Any, what: str) -> None:
    spec = _catalogue_field(behaviour_type, name, what)
    if spec.kind is Kind.CHOICE and expected not in spec.choices:
        offered = ", ".join(spec.choices)
        raise ValueError(
            f"{what}: {expected!r} is not a choice of {behaviour_type}.{name} ({offered})"
        )
    if spec.kind is Kind.BOOLEAN and not isinstance(expected, bool):
        raise ValueError(f"{what}: {behaviour_type}.{name} is true or false, not {expected!r}")


def _check_catalogue(m: Methodology) -> None:
    unknown = sorted(b for b in m.behaviours if b not in CATALOGUE)
    if unknown:
        raise ValueError(f"behaviour types not in the catalogue: {', '.join(unknown)}")
    if engagement := sorted(b for b in m.behaviours if CATALOGUE[b].engagement):
        # Sign-ins, quizzes and volunteering earn points, never a reduction.
        raise ValueError(f"engagement types are never quantified: {', '.join(engagement)}")
    for factor in m.factors:
        what = f"factor {factor.name}"
        named = factor.when.get("type")
        if named is not None and named not in m.behaviours:
            raise ValueError(f"{what} names {named!r}, which the methodology does not cover")
        for behaviour_type in _types_of(m, factor):
            for name, expected in factor.when.items():
                if name != "type" and not (name == "grid" and m.grid is not None):
                    _check_condition(behaviour_type, name, expected, what)
            counted = [*factor.at_least, factor.per, factor.shared_by]
            for quantity in (q for q in counted if q is not None):
                _check_quantity(behaviour_type, quantity, what)


def _check_quantity(behaviour_type: str, name: str, what: str) -> None:
    spec = _catalogue_field(behaviour_type, name, what)
    if spec.kind not in (Kind.DECIMAL, Kind.INTEGER):
        raise ValueError(f"{what}: {behaviour_type}.{name} is not a quantity")


def _check_formula(m: Methodology) -> None:
    if m.formula is FormulaKind.BY_CHOICE:
        _check_by_choice(m)
    elif m.choice is not None:
        raise ValueError("choice is for the by_choice formula")
    if m.formula is FormulaKind.PER_KWH_GRID:
        _check_grid(m)
    elif m.grid is not None:
        raise ValueError("grid is for the per_kwh_grid formula")
    if m.formula is FormulaKind.PER_EVENT_SHARE:
        if missing := [f.name for f in m.factors if f.shared_by is None]:
            raise ValueError(f"per_event_share factors need shared_by: {', '.join(missing)}")
    elif shared := [f.name for f in m.factors if f.shared_by is not None]:
        raise ValueError(f"shared_by is for the per_event_share formula: {', '.join(shared)}")
    if m.formula is FormulaKind.BASELINE_MINUS_PROJECT:
        _check_baseline_minus_project(m)


def _check_by_choice(m: Methodology) -> None:
    if m.choice is None:
        raise ValueError("a by_choice methodology names its choice field (choice)")
    for behaviour_type in sorted(m.behaviours):
        if _catalogue_field(behaviour_type, m.choice, "choice").kind is not Kind.CHOICE:
            raise ValueError(f"choice: {behaviour_type}.{m.choice} is not a choice field")
    if unnamed := [f.name for f in m.factors if m.choice not in f.when]:
        raise ValueError(f"by_choice factors name a value of {m.choice}: {', '.join(unnamed)}")


def _check_grid(m: Methodology) -> None:
    if m.grid is None:
        raise ValueError("a per_kwh_grid methodology carries its grid division (grid)")
    grids = {r.name for r in m.grid.regions}
    for factor in m.factors:
        if factor.unit != GRID_FACTOR_UNIT:
            raise ValueError(f"grid factor {factor.name} is in {GRID_FACTOR_UNIT}")
        if factor.per is None:
            raise ValueError(f"grid factor {factor.name} names its kWh field (per)")
        if factor.when.get("grid") not in grids:
            raise ValueError(f"grid factor {factor.name} names one of the grids {sorted(grids)}")


def _check_baseline_minus_project(m: Methodology) -> None:
    for behaviour_type in sorted(m.behaviours):
        counted = {f.per for f in m.factors if behaviour_type in _types_of(m, f)}
        if len(counted) > 1:
            # ER = BE - PE only makes sense over one measured quantity.
            raise ValueError(f"baseline and project factors of {behaviour_type} count one field")


def _check_caps(m: Methodology) -> None:
    for n, cap in enumerate(m.caps):
        if outside := sorted(cap.behaviours - m.behaviours):
            raise ValueError(f"cap #{n} counts types the methodology does not cover: {outside}")
        if global_keyed := sorted(b for b in cap.behaviours if CATALOGUE[b].global_key):
            # Their claims are decided per key, across people: a per-person cap cannot
            # see them (the dedupe group of a global-key claim is not the person).
            raise ValueError(
                f"cap #{n} counts global-key types {global_keyed}: a per-person cap "
                "cannot apply to claims decided per key"
            )
        if cap.max_g is None and cap.max_events is None:
            raise ValueError(f"cap #{n} limits nothing (set max_g or max_events)")


# --- checks of the whole registry ---------------------------------------------


class AmbiguousRegistry(ValueError):
    """Two versions could both be selected for one event: the registry is refused."""


def superseded(methodologies: Iterable[Methodology]) -> frozenset[tuple[str, str]]:
    """(id, version) of every version a later one of the same id makes inactive."""
    return frozenset((m.id, v) for m in methodologies for v in m.supersedes)


def in_force(methodologies: Iterable[Methodology]) -> list[Methodology]:
    """The versions selection may choose: active and not superseded."""
    chosen = list(methodologies)
    retired = superseded(chosen)
    return [m for m in chosen if m.active and (m.id, m.version) not in retired]


def _overlap(a: Methodology, b: Methodology) -> bool:
    a_end, b_end = a.valid_to or date.max, b.valid_to or date.max
    return a.valid_from <= b_end and b.valid_from <= a_end


def _scopes_meet(a: Methodology, b: Methodology) -> bool:
    return not a.partners or not b.partners or bool(a.partners & b.partners)


def ambiguous(a: Methodology, b: Methodology) -> bool:
    """Whether one event could find both applicable with neither preferred.

    Versions of one id are no exception: a new version either supersedes the old
    one or has a crediting period apart from it (to hand over from a date, publish
    the old factors anew with a `valid_to`, superseding the open-ended version)."""
    return (
        a.issuer_kind.precedence == b.issuer_kind.precedence
        and bool(a.behaviours & b.behaviours)
        and a.region_prefix == b.region_prefix
        and _overlap(a, b)
        and _scopes_meet(a, b)
    )


def check_registry(methodologies: Iterable[Methodology]) -> None:
    """Refuse a registry whose supersedes name nothing or whose selection can tie."""
    chosen = list(methodologies)
    versions = {(m.id, m.version) for m in chosen}
    for m in chosen:
        if missing := sorted(v for v in m.supersedes if (m.id, v) not in versions):
            raise ValueError(f"{m.ref} supersedes versions not in the registry: {missing}")
    for a, b in combinations(in_force(chosen), 2):
        if ambiguous(a, b):
            common = ", ".join(sorted(a.behaviours & b.behaviours))
            raise AmbiguousRegistry(
                f"{a.ref} and {b.ref} are ambiguous: both {a.issuer_kind.value}/"
                f"{b.issuer_kind.value}-kind, region {a.region}, overlapping crediting "
                f"periods, partner scopes that meet, both covering {common}; publish a "
                "version that supersedes one, narrows its region, period or partners"
            )
