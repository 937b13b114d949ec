"""Runs 0006_accounts.sql: the consent history, family links, and unit balances apart."""

from __future__ import annotations

from carbonledger.services.ledger.adapters.migrations import run_sql_file

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file(revision)
