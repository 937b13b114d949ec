"""Government statistics (DOMAIN §14), kept beside the postings as the books move.

Four tables move in the posting transaction (migrations 0008 and 0009, docs/ledger.md):

- `region_statistics`: per region (every level of the behaviour region's lineage,
  up to the nation), China Standard Time day, category, behaviour type, partner and
  subject kind: the amount and the credited actions (a credit +1, its reversal -1).
  A period's tonnes and actions are a sum over its days' rows, whose number is
  bounded by days × behaviour types × partners, never by people or postings.
- `participant_buckets`: the dictionary of buckets, each a (region, dimension,
  dimension value, subject kind) with a small integer id: the dimension is the
  total (value ""), one category, behaviour type or partner. A few thousand at most.
- `participant_periods`: per period (day, month, quarter, year), its first day and
  subject, one row holding the subject's net credited actions in each bucket it
  acted in then, as two parallel arrays (bucket ids, actions; no zero entries). A
  credit touches at most four rows (one per period), most of them updates.
- `participant_counts`: per period, period start and bucket, how many subjects hold
  it above zero. The writer reads the batch's rows (locked), `moved` says the new
  arrays and which buckets crossed zero (+1 up, -1 back down: a reversed credit
  takes its subject out again), and the counts move by exactly those crossings. A
  period's participants are one indexed read of them, never a count of people; a
  from–to span that is no single period counts distinct subjects over the day rows
  of its days.

All are keyed by deterministic values and only ever moved by the postings the
batch actually made, so a redelivered batch moves none of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from datetime import date
from typing import TypeVar

from carbonledger.contracts.calendar import local_date
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.records import Decision
from carbonledger.contracts.regions import NATIONAL, RegionTable
from carbonledger.services.ledger.domain.postings import moves_books

PERIODS = ("day", "month", "quarter", "year")
# (region, day, category, behaviour_type, partner, subject_kind)
FigureKey = tuple[str, date, str, str, str, str]
# (region, dimension, dimension_value, subject_kind): what a participant counts in.
Bucket = tuple[str, str, str, str]
# (period, period_start, subject): one participant_periods row.
PeriodKey = tuple[str, date, str]
TOTAL = "total"
# The breakdowns participants are counted by, beside the total (value "").
DIMENSIONS = ("category", "behaviour_type", "partner")

B = TypeVar("B", bound=Hashable)


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
) -> tuple[dict[FigureKey, tuple[int, int]], dict[PeriodKey, dict[Bucket, int]]]:
    """How fresh decisions move the statistics: amount and actions per figure key;
    per subject's period row, net actions per bucket. Only decisions that post count."""
    figures: dict[FigureKey, list[int]] = defaultdict(lambda: [0, 0])
    participants: dict[PeriodKey, dict[Bucket, int]] = defaultdict(lambda: defaultdict(int))
    # What many credits of a batch share, made once: a day's period starts, and the
    # lineage and buckets of a (region, type, partner, subject kind).
    starts: dict[date, list[tuple[str, date]]] = {}
    where: dict[tuple[str, str, str, str], tuple[tuple[str, ...], str, list[Bucket]]] = {}
    for decision in decisions:
        if not moves_books(decision):
            continue
        claim = decision.claim
        action = 1 if decision.amount_mg > 0 else -1
        day = local_date(claim.ended_at)
        kind, partner = claim.subject_kind.value, claim.event.source
        shared = (claim.region, claim.type, partner, kind)
        if shared not in where:
            lineage = _lineage(claim.region, regions)
            dimensions = _dimensions(claim.type, partner)
            # The same buckets in each period's row.
            buckets = [(region, d, v, kind) for region in lineage for d, v in dimensions]
            where[shared] = (lineage, category_of(claim.type), buckets)
        lineage, category, buckets = where[shared]
        for region in lineage:
            key = (region, day, category, claim.type, partner, kind)
            figures[key][0] += decision.amount_mg
            figures[key][1] += action
        if day not in starts:
            starts[day] = [(period, period_start(period, day)) for period in PERIODS]
        for period, start in starts[day]:
            row = participants[(period, start, claim.subject)]
            for bucket in buckets:
                row[bucket] += action
    return (
        {k: (a, n) for k, (a, n) in figures.items()},
        {k: dict(v) for k, v in participants.items()},
    )


def moved(held: Mapping[B, int], delta: Mapping[B, int]) -> tuple[dict[B, int], dict[B, int]]:
    """A subject's period row after `delta`: its net actions per bucket (no zero
    entries), and the buckets it crossed zero in, +1 where it went from zero or less
    to above zero (it now participates), -1 where it went back (a reversal took its
    only action out)."""
    after = dict(held)
    crossed: dict[B, int] = {}
    for bucket, change in delta.items():
        before = after.get(bucket, 0)
        now = before + change
        if before <= 0 < now:
            crossed[bucket] = 1
        elif now <= 0 < before:
            crossed[bucket] = -1
        if now:
            after[bucket] = now
        else:
            after.pop(bucket, None)
    return after, crossed


def participation(
    held: Mapping[PeriodKey, Mapping[B, int]], deltas: Mapping[PeriodKey, Mapping[B, int]]
) -> tuple[dict[PeriodKey, dict[B, int]], dict[tuple[str, date, B], int]]:
    """The batch's period rows moved: every row `deltas` names, as it ends (rows not
    held start empty), and how each (period, period start, bucket) count moves (only
    non-zero moves)."""
    rows: dict[PeriodKey, dict[B, int]] = {}
    counts: dict[tuple[str, date, B], int] = defaultdict(int)
    for key, delta in deltas.items():
        rows[key], crossed = moved(held.get(key, {}), delta)
        period, start, _ = key
        for bucket, change in crossed.items():
            counts[(period, start, bucket)] += change
    return rows, {k: n for k, n in counts.items() if n}


def _dimensions(behaviour_type: str, partner: str) -> tuple[tuple[str, str], ...]:
    return (
        (TOTAL, ""),
        ("category", category_of(behaviour_type)),
        ("behaviour_type", behaviour_type),
        ("partner", partner),
    )
