"""Issuance arithmetic and the period rules.

An issuance covers one (region, methodology, period). Its vintage is the period's
year (a period lies in one calendar year). It issues ⌊available ÷ 10^9⌋ units,
where

    available = net of the period + remainder carried from the series' last issuance
                + adjustments of the series' earlier vintages

and what is left (0 <= carried < 10^9, or below 0 while a shortfall is not covered)
is carried to the next issuance of the same (region, methodology): the series.

Adjustments: issued units are never edited. When an earlier vintage's net, recomputed
now, is below what the series has accounted for it, the difference is deducted
(a shortfall); if it later comes back (a re-credit after a reversal), what was
deducted is given back, never more than the vintage's net at its own issuance (late
credits to an issued period are not issued: its verification did not cover them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from carbonledger.services.ledger.domain.registry.serials import UNIT_MG


@dataclass(frozen=True, order=True)
class Period:
    """Behaviour days first..last (China Standard Time, both included)."""

    first: date
    last: date

    def problem(self) -> str | None:
        """Why this cannot be an issuance's period, or None."""
        if self.first > self.last:
            return f"the period ends ({self.last}) before it starts ({self.first})"
        if self.first.year != self.last.year:
            return f"a vintage is one calendar year: {self.first} .. {self.last} spans two"
        return None

    @property
    def vintage(self) -> int:
        return self.first.year

    def overlaps(self, other: Period) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return f"{self.first} .. {self.last}"


@dataclass(frozen=True)
class Issued:
    """An issuance already made, as the period rules read it."""

    issuance: UUID
    region: str
    methodology: str
    period: Period


def period_refused(
    region: str,
    methodology: str,
    period: Period,
    issued: Iterable[Issued],
    nested: Mapping[str, frozenset[str]],
) -> str | None:
    """Why this issuance may not be made, or None: a period that repeats or overlaps
    an issued one of the same methodology in the same region, or in a region nested
    with it (a city's issuance and its district's would issue the same tonnes twice).
    `nested[r]` holds every region enclosing or enclosed by r (r included)."""
    if (why := period.problem()) is not None:
        return why
    near = nested.get(region, frozenset({region}))
    for done in issued:
        if done.methodology != methodology or done.region not in near:
            continue
        if done.period == period and done.region == region:
            return f"{region} {methodology} {period} is already issued (issuance {done.issuance})"
        if done.period.overlaps(period):
            return (
                f"{period} overlaps {done.period} of {done.region} {methodology}"
                f" (issuance {done.issuance})"
            )
    return None


@dataclass(frozen=True)
class Vintage:
    """An earlier issuance of the series: its net when issued, and what the series has
    accounted for it since (lower after a deducted shortfall)."""

    issuance: UUID
    net_mg: int
    accounted_mg: int


def adjustment(vintage: Vintage, current_mg: int) -> int:
    """How much the series' account of this vintage moves now its net is `current_mg`:
    negative deducts a shortfall, positive gives back what was deducted (up to its
    net at issuance)."""
    return min(current_mg, vintage.net_mg) - vintage.accounted_mg


@dataclass(frozen=True)
class Units:
    """The issuance arithmetic: every figure in mg, and the units issued."""

    net_mg: int
    carried_in_mg: int
    adjusted_mg: int  # sum of the earlier vintages' adjustments (negative: deducted)
    units: int
    carried_mg: int  # to the next issuance of the series; negative: an uncovered shortfall

    @property
    def available_mg(self) -> int:
        return self.net_mg + self.carried_in_mg + self.adjusted_mg

    @property
    def shortfall_mg(self) -> int:
        """What the series still owes after this issuance (0 when covered)."""
        return max(0, -self.carried_mg)


def units_of(net_mg: int, carried_in_mg: int, adjusted_mg: int) -> Units:
    available = net_mg + carried_in_mg + adjusted_mg
    units = available // UNIT_MG if available > 0 else 0
    return Units(net_mg, carried_in_mg, adjusted_mg, units, available - units * UNIT_MG)


def outstanding_shortfall(carried_mg: int, adjustments: Iterable[int]) -> int:
    """A series' shortfall now, between issuances: what its last carried remainder and
    the adjustments its vintages' current nets would make leave owing (0 if none)."""
    return max(0, -(carried_mg + sum(adjustments)))


def rows_digest(rows: Iterable[Iterable[object]]) -> str:
    """SHA-256 (hex) of rows written `a|b|c`, sorted, one a line: what an issue
    transaction's details record of the rows beside it (its contributions, its
    adjustments), so `carbonledger verify` finds one altered, added or removed."""
    lines = sorted("|".join(str(v) for v in row) for row in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
