"""China Standard Time, the scheme's calendar: every date-based rule (crediting
periods, caps, period totals, expiry days) uses the CST date of a behaviour's end."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
# The same zone by name, for SQL (`AT TIME ZONE`): China has kept UTC+8 since 1991.
CST_ZONE_NAME = "Asia/Shanghai"


def local_date(moment: datetime) -> date:
    """The China Standard Time date of a moment."""
    return moment.astimezone(CST).date()
