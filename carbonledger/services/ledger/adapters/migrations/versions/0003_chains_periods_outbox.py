"""Runs 0003_chains_periods_outbox.sql: hash chains, period totals and the postings outbox."""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
