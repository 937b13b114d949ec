"""Ingest settings beyond the shared ones."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from carbonledger.contracts import services
from carbonledger.contracts.settings import Settings


class IngestSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="CARBON_", env_ignore_empty=True, extra="ignore")

    ingest_max_record_bytes: int = 1_048_576
    ingest_web_port: int = services.INGEST.base_port
    gateway_max_events: int = 500
    gateway_max_bytes: int = 5 * 1024 * 1024
    gateway_replay_window_seconds: int = 300
