"""Government statistics (DOMAIN §14), kept beside the postings as the books move.

Two tables move in the posting transaction (migration 0008, docs/ledger.md):

- `region_statistics`: per region (every level of the behaviour region's lineage,
  up to the nation), China Standard Time day, category, behaviour type, partner and
  subject kind: the amount and the credited actions (a credit +1, its reversal -1).
  A period's tonnes and actions are a sum over its days' rows, whose number is
  bounded by days × behaviour types × partners, never by people or postings.
- `region_participants`: per region, period (day, month, quarter, year), dimension
  (the total, or one category, behaviour type or partner) and subject: the
  subject's net credited actions there then. A reversed credit takes its row back
  to zero.
- `region_participant_counts`: per region, period, dimension and subject kind: how
  many of those rows are above zero, bumped by the upsert that takes a row from
  zero to above it (+1) or back (-1). A period's participants are one indexed read
  of it, never a count of people; a from–to span that is no single period counts
  distinct subjects over the day rows of its days.

Both are keyed by deterministic values and only ever added to by the postings the
batch actually made, so a redelivered batch moves neither.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from carbonledger.contracts.calendar import local_date
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.records import Decision
from carbonledger.contracts.regions import NATIONAL, RegionTable
from carbonledger.services.ledger.domain.postings import moves_books

PERIODS = ("day", "month", "quarter", "year")
# (region, day, category, behaviour_type, partner, subject_kind)
FigureKey = tuple[str, date, str, str, str, str]
# (region, period, period_start, dimension, dimension_value, subject, subject_kind)
ParticipantKey = tuple[str, str, date, str, str, str, str]
TOTAL = "total"
# The breakdowns participants are counted by, beside the total (value "").
DIMENSIONS = ("category", "behaviour_type", "partner")


def period_start(period: str, day: date) -> date:
    """The first day of the day, month, quarter or year holding `day`."""
    if period == "day":
        return day
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if period == "year":
        return date(day.year, 1, 1)
    raise ValueError(f"not a period: {period}")


def category_of(behaviour_type: str) -> str:
    spec = CATALOGUE.get(behaviour_type)
    return spec.category.value if spec else "other"


def _lineage(region: str, regions: RegionTable) -> tuple[str, ...]:
    return regions.rollup_keys(region) if region in regions else (region, NATIONAL)


def statistics_deltas(
    decisions: Iterable[Decision], regions: RegionTable
) -> tuple[dict[FigureKey, tuple[int, int]], dict[ParticipantKey, int]]:
    """How fresh decisions move the two tables: amount and actions per figure key,
    net actions per participant key. Only decisions that post count."""
    figures: dict[FigureKey, list[int]] = defaultdict(lambda: [0, 0])
    participants: dict[ParticipantKey, int] = defaultdict(int)
    for decision in decisions:
        if not moves_books(decision):
            continue
        claim = decision.claim
        action = 1 if decision.amount_mg > 0 else -1
        day = local_date(claim.ended_at)
        kind = claim.subject_kind.value
        for region in _lineage(claim.region, regions):
            key = (region, day, category_of(claim.type), claim.type, claim.event.source, kind)
            figures[key][0] += decision.amount_mg
            figures[key][1] += action
            for period in PERIODS:
                start = period_start(period, day)
                for dimension, value in _dimensions(claim.type, claim.event.source):
                    who = (region, period, start, dimension, value, claim.subject, kind)
                    participants[who] += action
    return {k: (a, n) for k, (a, n) in figures.items()}, dict(participants)


def _dimensions(behaviour_type: str, partner: str) -> tuple[tuple[str, str], ...]:
    return (
        (TOTAL, ""),
        ("category", category_of(behaviour_type)),
        ("behaviour_type", behaviour_type),
        ("partner", partner),
    )
