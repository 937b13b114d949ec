"""Runs 0005_subject_kinds.sql: postings record whether their subject is a person or a unit."""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
