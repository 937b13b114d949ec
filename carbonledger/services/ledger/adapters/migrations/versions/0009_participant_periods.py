"""Runs 0009_participant_periods.sql: participants as one row per subject and period
(bucket ids and net actions as arrays, the buckets in a small dictionary), converted
from 0008's region_participants and region_participant_counts, which it drops.

It follows the statistics' 0008.
"""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
