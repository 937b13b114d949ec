"""Reading the tables issue 22 added: the government statistics (domain/statistics.py),
a region's figures for a span of days, never from postings; and partners' rejections.

Tonnes and actions sum the day rows of the span (bounded by days x behaviour types
x partners). Participants count the subjects with net credited actions: one
indexed count of the period's rows when the span is exactly a day, month, quarter
or year; distinct subjects over the span's day rows for any other from–to span.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

_FIGURES = """
SELECT region, category, behaviour_type, partner, subject_kind,
       sum(amount_mg)::bigint AS amount_mg, sum(actions)::bigint AS actions
FROM region_statistics
WHERE region = ANY(%s) AND day BETWEEN %s AND %s
GROUP BY region, category, behaviour_type, partner, subject_kind
"""
_MONTHS = """
SELECT date_trunc('month', day)::date AS month, sum(amount_mg)::bigint AS amount_mg,
       sum(actions)::bigint AS actions
FROM region_statistics
WHERE region = %s AND day BETWEEN %s AND %s
GROUP BY 1 ORDER BY 1
"""
_PERIOD_PARTICIPANTS = """
SELECT region, subject_kind, count(*) AS participants
FROM region_participants
WHERE region = ANY(%s) AND period = %s AND period_start = %s AND actions > 0
GROUP BY region, subject_kind
"""
# A span that is no single period: distinct subjects with net actions on its days.
# (A credit and its reversal share the behaviour's day, so a day row nets them.)
_SPAN_PARTICIPANTS = """
SELECT region, subject_kind, count(DISTINCT subject) AS participants
FROM region_participants
WHERE region = ANY(%s) AND period = 'day' AND period_start BETWEEN %s AND %s AND actions > 0
GROUP BY region, subject_kind
"""


def figures(
    conn: psycopg.Connection, regions: Sequence[str], first: date, last: date
) -> list[Mapping[str, Any]]:
    """Amount and actions per region, category, type, partner and subject kind."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(_FIGURES, (list(regions), first, last)).fetchall())


def months(
    conn: psycopg.Connection, region: str, first: date, last: date
) -> list[Mapping[str, Any]]:
    """The region's amount and actions by month of the span (the trend)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(_MONTHS, (region, first, last)).fetchall())


def participants(
    conn: psycopg.Connection,
    regions: Sequence[str],
    first: date,
    last: date,
    period: str | None,
) -> dict[tuple[str, str], int]:
    """Distinct subjects with credited actions, per (region, subject kind): from the
    period's own rows when the span is one period, else over its days."""
    if period is not None:
        rows = conn.execute(_PERIOD_PARTICIPANTS, (list(regions), period, first)).fetchall()
    else:
        rows = conn.execute(_SPAN_PARTICIPANTS, (list(regions), first, last)).fetchall()
    return {(str(r), str(k)): int(n) for r, k, n in rows}


_REJECTIONS = """
SELECT seq, dead_letter_id, stage, reason, message, topic, partition, record_offset,
       original, received_at
FROM partner_rejections
WHERE partner = %s AND (%s::bigint IS NULL OR seq < %s)
ORDER BY seq DESC LIMIT %s
"""


def rejections(
    conn: psycopg.Connection, partner: str, limit: int, before: int | None
) -> list[Mapping[str, Any]]:
    """A page of the partner's rejections, newest first (partner_rejections)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(_REJECTIONS, (partner, before, before, limit)).fetchall())
