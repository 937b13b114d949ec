"""Government statistics (DOMAIN §14), as the API's routes and the portal's region
page both report them: a region's tonnes, credited actions and participants for a
day, month, quarter, year or from–to span, by category, behaviour type, partner and
child region (every one, zeros included), with the trend by month and quarter; and
the same as CSV.

Read from the tables the writer keeps in its transaction (adapters/statistics.py),
so a province's year is a bounded read, never a scan of its postings.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Query
from pydantic import BaseModel, Field

from carbonledger.contracts.calendar import local_date
from carbonledger.contracts.regions import NATIONAL, RegionTable
from carbonledger.services.ledger.adapters import statistics
from carbonledger.services.ledger.domain.statistics import TOTAL, period_start
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep
from carbonledger.services.ledger.entrypoints.api.schemas import Amount

Period = Literal["day", "month", "quarter", "year"]
MAX_SPAN_DAYS = 3700  # ten years and a little: a bound on one request's rows


class TrendFigure(BaseModel):
    key: str = Field(description="the month (2026-05) or quarter (2026-Q2)")
    amount: Amount
    actions: int = Field(description="credited actions (credits less reversals)")


class Figure(BaseModel):
    key: str
    amount: Amount
    actions: int = Field(description="credited actions (credits less reversals)")
    people: int = Field(description="distinct people with a credited action here, exactly")
    units: int = Field(description="distinct participating units here, exactly")


class ChildFigures(BaseModel):
    code: str
    name: str
    level: str
    amount: Amount
    actions: int
    people: int
    units: int


class RegionStatistics(BaseModel):
    region: str
    name: str
    level: str
    period: Period | None = Field(description="the period, or null for a from–to span")
    first_day: date
    last_day: date
    amount: Amount
    actions: int
    people: int = Field(description="distinct people with a credited action, exactly")
    units: int = Field(description="distinct participating units, exactly")
    by_category: list[Figure]
    by_behaviour_type: list[Figure]
    by_partner: list[Figure]
    by_month: list[TrendFigure]
    by_quarter: list[TrendFigure]
    children: list[ChildFigures] = Field(description="every child region, zeros included")


def span(
    period: Period | None, at: date | None, first: date | None, last: date | None
) -> tuple[Period | None, date, date]:
    """The days asked for: a period holding `at` (default: this year), or from–to."""
    if first is not None or last is not None:
        if first is None or last is None or period is not None or at is not None:
            raise HTTPException(422, "give both from and to, without period or at")
        if last < first or (last - first).days > MAX_SPAN_DAYS:
            raise HTTPException(422, f"to must be after from, at most {MAX_SPAN_DAYS} days on")
        return _one_period(first, last), first, last
    chosen: Period = period or "year"
    start = period_start(chosen, at or local_date_now())
    return chosen, start, _period_end(chosen, start)


def _one_period(first: date, last: date) -> Period | None:
    """The period a from–to span is exactly (read from its counts), if any."""
    for period in ("day", "month", "quarter", "year"):
        if period_start(period, first) == first and _period_end(period, first) == last:
            return period
    return None


def local_date_now() -> date:
    from datetime import UTC, datetime

    return local_date(datetime.now(UTC))


def _period_end(period: Period, start: date) -> date:
    if period == "day":
        return start
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _named(regions: RegionTable, code: str) -> tuple[str, str]:
    if code == NATIONAL:
        return "中华人民共和国", "national"
    unit = regions.get(code)
    if unit is None:
        raise HTTPException(404, "not a GB/T 2260 code in the shipped table")
    return unit.name, str(unit.level)


def _figures(
    rows: Iterable[Mapping[str, Any]], field: str, counted: Mapping[tuple[str, str], int]
) -> list[Figure]:
    """Figures by `field`, with the participants counted for each of its values."""
    summed: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        summed[str(r[field])][0] += int(r["amount_mg"])
        summed[str(r[field])][1] += int(r["actions"])
    ordered = sorted(summed.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [
        Figure(
            key=k,
            amount=Amount.of(a),
            actions=n,
            people=counted.get((k, "person"), 0),
            units=counted.get((k, "unit"), 0),
        )
        for k, (a, n) in ordered
    ]


def _by(counted: statistics.Counted, region: str, dimension: str) -> dict[tuple[str, str], int]:
    return {(v, k): n for (r, d, v, k), n in counted.items() if (r, d) == (region, dimension)}


def _trend(rows: Iterable[Mapping[str, Any]], step: str) -> list[TrendFigure]:
    def key(start: date) -> str:
        if step == "quarter":
            return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        return start.strftime("%Y-%m")

    return [
        TrendFigure(
            key=key(m["start"]), amount=Amount.of(int(m["amount_mg"])), actions=int(m["actions"])
        )
        for m in rows
    ]


SpanQuery = tuple[Period | None, date | None, date | None, date | None]


def region_statistics(
    books: BooksDep, regions: RegionTable, region: str, asked: SpanQuery
) -> RegionStatistics:
    name, level = _named(regions, region)
    period, first, last = span(*asked)
    children = regions.children(region)
    codes = [region, *(c.code for c in children)]
    with books.reading() as conn, statistics.bounded(conn):
        rows = statistics.figures(conn, codes, first, last)
        months = statistics.trend(conn, region, "month", first, last)
        quarters = statistics.trend(conn, region, "quarter", first, last)
        counted = statistics.participants(conn, region, codes[1:], (first, last), period)
    own = [r for r in rows if r["region"].strip() == region]
    by_child = {c.code: [r for r in rows if r["region"].strip() == c.code] for c in children}
    total = _by(counted, region, TOTAL)
    return RegionStatistics(
        region=region,
        name=name,
        level=level,
        period=period,
        first_day=first,
        last_day=last,
        amount=Amount.of(sum(int(r["amount_mg"]) for r in own)),
        actions=sum(int(r["actions"]) for r in own),
        people=total.get(("", "person"), 0),
        units=total.get(("", "unit"), 0),
        by_category=_figures(own, "category", _by(counted, region, "category")),
        by_behaviour_type=_figures(own, "behaviour_type", _by(counted, region, "behaviour_type")),
        by_partner=_figures(own, "partner", _by(counted, region, "partner")),
        by_month=_trend(months, "month"),
        by_quarter=_trend(quarters, "quarter"),
        children=[
            ChildFigures(
                code=c.code,
                name=c.name,
                level=str(c.level),
                amount=Amount.of(sum(int(r["amount_mg"]) for r in by_child[c.code])),
                actions=sum(int(r["actions"]) for r in by_child[c.code]),
                people=counted.get((c.code, TOTAL, "", "person"), 0),
                units=counted.get((c.code, TOTAL, "", "unit"), 0),
            )
            for c in children
        ],
    )


PeriodQuery = Annotated[Period | None, Query(description="day, month, quarter or year")]
AtQuery = Annotated[date | None, Query(description="a day in the period (default today)")]
FromQuery = Annotated[date | None, Query(alias="from", description="first day (with to)")]
ToQuery = Annotated[date | None, Query(alias="to", description="last day, inclusive")]


def to_csv(found: RegionStatistics) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "key", "name", "amount_mg", "tonnes", "actions", "people", "units"])
    w.writerow(
        [
            "total",
            found.region,
            found.name,
            found.amount.mg,
            found.amount.t,
            found.actions,
            found.people,
            found.units,
        ]
    )
    for section, figures in (
        ("category", found.by_category),
        ("behaviour_type", found.by_behaviour_type),
        ("partner", found.by_partner),
    ):
        for f in figures:
            w.writerow([section, f.key, "", f.amount.mg, f.amount.t, f.actions, f.people, f.units])
    for section, trend in (("month", found.by_month), ("quarter", found.by_quarter)):
        for t in trend:
            w.writerow([section, t.key, "", t.amount.mg, t.amount.t, t.actions, "", ""])
    for c in found.children:
        w.writerow(
            ["child_region", c.code, c.name, c.amount.mg, c.amount.t, c.actions, c.people, c.units]
        )
    return out.getvalue()
