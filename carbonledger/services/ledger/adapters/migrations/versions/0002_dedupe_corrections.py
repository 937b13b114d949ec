"""Runs 0002_dedupe_corrections.sql: several decisions per claim, in order, with their reasons."""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
