"""Reading the tables issue 22 added: the government statistics (domain/statistics.py),
a region's figures for a span of days, never from postings; and partners' rejections.

Tonnes and actions sum the day rows of the span (bounded by days x behaviour types
x partners). Participants (in total, by category, behaviour type and partner) are
the counts the writer keeps when the span is exactly a day, month, quarter or year;
distinct subjects over the span's day rows for any other from–to span. Every read
runs under a statement timeout.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
# The trend: amount and actions by month or quarter of the span.
_TREND = """
SELECT date_trunc(%s, day)::date AS start, sum(amount_mg)::bigint AS amount_mg,
       sum(actions)::bigint AS actions
FROM region_statistics
WHERE region = %s AND day BETWEEN %s AND %s
GROUP BY 1 ORDER BY 1
"""
# A span that is one period: its counts, one row per bucket (region, dimension, kind);
# the children only by their total.
_PERIOD_PARTICIPANTS = """
SELECT b.region, b.dimension, b.dimension_value, b.subject_kind, c.participants
FROM participant_buckets b
JOIN participant_counts c ON c.bucket = b.bucket AND c.period = %s AND c.period_start = %s
WHERE b.region = ANY(%s) AND (b.region = %s OR b.dimension = 'total') AND c.participants > 0
"""
# A span that is no single period: distinct subjects with net actions on its days, in
# each bucket asked for. (A credit and its reversal share the behaviour's day, so a
# day row nets them.)
_SPAN_PARTICIPANTS = """
WITH asked AS (
    SELECT bucket, region, dimension, dimension_value, subject_kind FROM participant_buckets
    WHERE region = ANY(%s) AND (region = %s OR dimension = 'total')
)
SELECT a.region, a.dimension, a.dimension_value, a.subject_kind, count(DISTINCT p.subject)
FROM participant_periods p
CROSS JOIN LATERAL unnest(p.buckets, p.actions) AS u(bucket, actions)
JOIN asked a ON a.bucket = u.bucket
WHERE p.period = 'day' AND p.period_start BETWEEN %s AND %s AND u.actions > 0
GROUP BY 1, 2, 3, 4
"""
# No statistics read holds a connection longer than this (a 503 then, not a queue).
STATEMENT_TIMEOUT = "10s"
# (region, dimension, dimension value, subject kind)
Counted = dict[tuple[str, str, str, str], int]


@contextmanager
def bounded(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The reads inside run in one transaction under the statement timeout."""
    with conn.transaction():
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (STATEMENT_TIMEOUT,))
        yield conn


def figures(
    conn: psycopg.Connection, regions: Sequence[str], first: date, last: date
) -> list[Mapping[str, Any]]:
    """Amount and actions per region, category, type, partner and subject kind."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(_FIGURES, (list(regions), first, last)).fetchall())


def trend(
    conn: psycopg.Connection, region: str, step: str, first: date, last: date
) -> list[Mapping[str, Any]]:
    """The region's amount and actions by `step` ("month" or "quarter") of the span."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(_TREND, (step, region, first, last)).fetchall())


def participants(
    conn: psycopg.Connection,
    region: str,
    children: Sequence[str],
    span: tuple[date, date],
    period: str | None,
) -> Counted:
    """Distinct subjects with credited actions, per (region, dimension, value, kind):
    the region's by every dimension, its children's in total. From the period's
    counts when the span is one period, else over its days."""
    codes = [region, *children]
    first, last = span
    if period is not None:
        asked: tuple[Any, ...] = (period, first, codes, region)
        rows = conn.execute(_PERIOD_PARTICIPANTS, asked).fetchall()
    else:
        rows = conn.execute(_SPAN_PARTICIPANTS, (codes, region, first, last)).fetchall()
    return {(str(r).strip(), str(d), str(v), str(k)): int(n) for r, d, v, k, n in rows}


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
