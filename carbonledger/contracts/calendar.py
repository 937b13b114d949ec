"""China Standard Time, the scheme's calendar: every date-based rule (crediting
periods, caps, period totals, expiry days) uses the CST date of a behaviour's end."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
# The same zone by name, for SQL (`AT TIME ZONE`): China has kept UTC+8 since 1991.
CST_ZONE_NAME = "Asia/Shanghai"


def local_date(moment: datetime) -> date:
    """The China Standard Time date of a moment; ValueError (never OverflowError)
    for a moment whose CST date is outside the calendar (year 1 at +14:00, year
    9999 at -12:00). Ingest refuses those times; this guards every other caller."""
    try:
        return moment.astimezone(CST).date()
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} has no date in China Standard Time") from None
