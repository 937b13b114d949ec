"""Runs 0008_statistics.sql (government statistics), then fills the two tables once
from the postings already made, as the writer would have: each government posting
counted in every region its period totals roll it up to (the lineage those rows
already hold), under its behaviour type's category; participants by the total,
category, behaviour type and partner, and their counts.

It follows the registry's 0007.
"""

from __future__ import annotations

import psycopg
from alembic import op

from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

# Postings before this revision, one row per (posting, enclosing region): the
# government book's period totals say which regions a posting region rolls up to.
_POSTED = """
WITH lineage AS (
    SELECT DISTINCT account AS region, region AS posted_in
    FROM period_totals WHERE book = 'government'
), posted AS (
    SELECT p.region AS posted_in, (p.behaviour_time AT TIME ZONE 'Asia/Shanghai')::date AS day,
           p.behaviour_type, p.partner, p.subject_kind, p.amount_mg,
           sign(p.amount_mg)::bigint AS action, d.subject
    FROM postings p JOIN decisions d USING (decision_id)
    WHERE p.book = 'government'
), categories AS (
    SELECT * FROM unnest(%s::text[], %s::text[]) AS c(behaviour_type, category)
)
"""
_FIGURES = f"""{_POSTED}
INSERT INTO region_statistics
SELECT l.region, day, coalesce(c.category, 'other'), behaviour_type, partner, subject_kind,
       sum(amount_mg), sum(action)
FROM posted JOIN lineage l USING (posted_in) LEFT JOIN categories c USING (behaviour_type)
GROUP BY 1, 2, 3, 4, 5, 6
"""
_PARTICIPANTS = f"""{_POSTED}
INSERT INTO region_participants
SELECT l.region, b.period,
       CASE b.period WHEN 'day' THEN day ELSE date_trunc(b.period, day)::date END,
       x.dimension, x.dimension_value, subject, min(subject_kind), sum(action)
FROM posted JOIN lineage l USING (posted_in) LEFT JOIN categories c USING (behaviour_type)
CROSS JOIN (VALUES ('day'), ('month'), ('quarter'), ('year')) AS b(period)
CROSS JOIN LATERAL (VALUES ('total', ''), ('category', coalesce(c.category, 'other')),
                           ('behaviour_type', behaviour_type), ('partner', partner))
    AS x(dimension, dimension_value)
GROUP BY 1, 2, 3, 4, 5, 6
"""
_COUNTS = """
INSERT INTO region_participant_counts
SELECT region, period, period_start, dimension, dimension_value, subject_kind, count(*)
FROM region_participants WHERE actions > 0
GROUP BY 1, 2, 3, 4, 5, 6
"""


def upgrade() -> None:
    run_sql_file(revision)
    types = sorted(CATALOGUE)
    categories = [CATALOGUE[t].category.value for t in types]
    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    driver.execute(_FIGURES, (types, categories))
    driver.execute(_PARTICIPANTS, (types, categories))
    driver.execute(_COUNTS)
