"""Runs 0004_employer_links.sql: people linked to their employers."""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
