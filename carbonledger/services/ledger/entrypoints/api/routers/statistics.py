"""The government statistics routes (DOMAIN §14): a region's figures as JSON and as
CSV, reported by `api/reports.py` (which the portal's region page shares), read
from the tables the writer keeps in its transaction (adapters/statistics.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from carbonledger.contracts.roles import Reading
from carbonledger.services.ledger.entrypoints.api.auth import reads
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep, Regions
from carbonledger.services.ledger.entrypoints.api.reports import (
    AtQuery,
    FromQuery,
    PeriodQuery,
    RegionStatistics,
    ToQuery,
    region_statistics,
    to_csv,
)

router = APIRouter(prefix="/v1/statistics", tags=["statistics"])


@router.get(
    "/{region}",
    response_model=RegionStatistics,
    dependencies=[reads(Reading.GOVERNMENT, "region")],
)
def statistics_of_region(
    region: str,
    books: BooksDep,
    regions: Regions,
    period: PeriodQuery = None,
    at: AtQuery = None,
    first: FromQuery = None,
    last: ToQuery = None,
) -> RegionStatistics:
    """A region's figures (its whole subtree; 000000 is national) for a period or a
    from–to span of China Standard Time days: tonnes, credited actions, people and
    units (distinct, exact), by category, behaviour type, partner and child region
    (each with its people and units), and by month and quarter. A from–to span that
    is exactly one period is that period. Without a period or dates: this year."""
    return region_statistics(books, regions, region, (period, at, first, last))


@router.get(
    "/{region}/csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the figures as CSV"}},
    dependencies=[reads(Reading.GOVERNMENT, "region")],
)
def statistics_csv(
    region: str,
    books: BooksDep,
    regions: Regions,
    period: PeriodQuery = None,
    at: AtQuery = None,
    first: FromQuery = None,
    last: ToQuery = None,
) -> Response:
    """The same figures as CSV (UTF-8 with BOM, for spreadsheets): one row per figure,
    `section` saying which breakdown it belongs to; amounts in exact milligrams and
    tonnes."""
    found = region_statistics(books, regions, region, (period, at, first, last))
    body = to_csv(found)
    filename = f"statistics-{region}-{found.first_day}-{found.last_day}.csv"
    return Response(
        body.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
