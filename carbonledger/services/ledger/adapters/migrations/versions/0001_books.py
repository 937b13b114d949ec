"""Runs 0001_books.sql: the three books, decisions, balances and the writer's offsets."""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
