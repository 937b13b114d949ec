"""Ledger settings beyond the shared ones."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from carbonledger.contracts import services
from carbonledger.contracts.settings import Settings


class LedgerSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="CARBON_", env_ignore_empty=True, extra="ignore")

    ledger_group: str = services.LEDGER_WRITER.app_id
    ledger_batch_max: int = 2000
    ledger_poll_ms: int = 200
    # How long the writer's fetches may wait to gather ledger_fetch_min_bytes (the
    # stream stages wait 50 ms for 64 KB). Its PostgreSQL transaction updates the
    # shared rows (enterprise and government balances, period totals, statistics)
    # once per batch, so at moderate load a longer wait buys larger batches and fewer
    # of those updates per decision: at half capacity the writer and PostgreSQL took
    # 0.35-0.45 ms less per record (docs/performance.md).
    ledger_fetch_max_wait_ms: int = 150
    ledger_fetch_min_bytes: int = 262_144
    ledger_writer_metrics_port: int = services.LEDGER_WRITER.base_port
    # The outbox publisher: postings per produce batch, and its idle poll.
    publisher_batch_max: int = 2000
    publisher_poll_ms: int = 200
    publisher_metrics_port: int = services.LEDGER_PUBLISHER.base_port
    # How often the active publisher sums each book for carbon_ledger_book_balance_grams
    # (a scan of the balances table: raise it at national scale, 0 turns it off).
    book_totals_seconds: float = 30.0
    # The ledger API's connections to PostgreSQL (per API process), how long a request
    # waits for one before it is answered 503, and the Retry-After that 503 carries
    # (docs/operations.md, "API capacity").
    api_db_connections: int = 16
    api_db_wait_seconds: float = 3.0
    api_retry_after_seconds: int = 5
    # The carbon asset registry's unit type for this scheme (DOMAIN.md §13: PHCER in
    # Guangdong, CDCER in Chengdu); `registry issue --unit-type` overrides it.
    registry_unit_type: str = "CIER"
