"""Runs 0007_registry.sql: the carbon asset registry (accounts, issuances, serial
blocks, the hash-chained transactions and the proceeds book)."""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
