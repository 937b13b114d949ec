"""Ledger settings beyond the shared ones."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from carbonledger.contracts.settings import Settings


class LedgerSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="CARBON_", env_ignore_empty=True, extra="ignore")

    ledger_group: str = "carbon-ledger-writer"
    ledger_batch_max: int = 2000
    ledger_poll_ms: int = 200
    ledger_writer_metrics_port: int = 6100
    # The outbox publisher: postings per produce batch, and its idle poll.
    publisher_batch_max: int = 2000
    publisher_poll_ms: int = 200
    publisher_metrics_port: int = 6105
    ledger_api_host: str = "127.0.0.1"
    ledger_api_port: int = 8000
